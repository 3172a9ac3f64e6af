import { useMemo, useState } from 'react';
import { useApi, isMissingEndpoint } from '../../hooks';
import { Link, useLocation } from '../../router';
import { ErrorNote, Loading, Page, Panel, TextField, fmtDate } from '../../components/ui';
import { list } from '../../shapes';
import { ALL_FIELDS, completeness, getPath } from '../../clinical-fields';

const P = '/api/site/v1';

interface Stored { id: string; pseudonym: string; kind: string; state: string; templateVersion: string; record: Record<string, unknown>; updatedAt: string; uploadedAt: string | null; reason: string | null }
/** The expected case summary from the site API (GET /api/site/v1/cases). */
interface CaseRow { pseudonym: string; studies: number; instances: number; modalities?: string[]; lastReceivedAt?: string | null; clinical: { kind: string; state: string; completeness: number } | null }

function Completeness({ v }: { v: number }) {
  const pct = Math.round(v * 100);
  return (
    <span style={{ display: 'inline-flex', alignItems: 'center', gap: '0.5rem' }}>
      <span className="bar" style={{ width: 90 }} role="img" aria-label={`${pct}% complete`}><span style={{ width: `${pct}%` }} /></span>{pct}%
    </span>
  );
}

function fromClinical(items: Stored[]): CaseRow[] {
  const by = new Map<string, CaseRow>();
  for (const c of items) {
    const cur = by.get(c.pseudonym);
    // A data record wins over a status record, as at the hub.
    if (cur?.clinical && cur.clinical.kind === 'data' && c.kind !== 'data') continue;
    by.set(c.pseudonym, { pseudonym: c.pseudonym, studies: NaN, instances: NaN, lastReceivedAt: c.updatedAt, clinical: { kind: c.kind, state: c.state, completeness: completeness(c.record) } });
  }
  return [...by.values()];
}

export function SiteCases(_props: { params: Record<string, string> }) {
  const [q, setQ] = useState('');
  const cases = useApi<unknown>(`${P}/cases`, { query: { q: q.trim() || undefined } });
  const missing = isMissingEndpoint(cases.error);
  const clinical = useApi<unknown>(missing ? `${P}/clinical` : null, { query: { limit: 1000 } });
  const rows: CaseRow[] = useMemo(() => {
    const r = missing ? fromClinical(list<Stored>(clinical.data, 'items')) : list<CaseRow>(cases.data, 'items', 'cases');
    const needle = q.trim().toUpperCase();
    return needle ? r.filter((c) => c.pseudonym.toUpperCase().includes(needle)) : r;
  }, [cases.data, clinical.data, missing, q]);
  const loading = (cases.loading && !cases.data && !missing) || (missing && clinical.loading && !clinical.data);

  return (
    <Page title="Cases" intro="Patients at this site, by pseudonym. The site never shows the original identifiers here." actions={<Link className="btn" to="/site/clinical/new">Enter clinical data</Link>}>
      <Panel title="Find a case">
        <form role="search" onSubmit={(e) => e.preventDefault()} className="filters">
          <TextField label="Pseudonym" name="q" placeholder="IMG-…" value={q} onChange={(e) => setQ(e.target.value)} autoComplete="off" />
        </form>
        {missing ? <p className="note note-wait" role="status">This site does not list cases with their studies yet; the list below shows the patients that have clinical records.</p> : <ErrorNote error={cases.error} />}
        <ErrorNote error={clinical.error} />
        {loading ? <Loading /> : (
          <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
            <table className="table" data-testid="cases-table">
              <caption className="sr-only">Cases</caption>
              <thead><tr><th scope="col">Pseudonym</th><th scope="col" className="num">Studies</th><th scope="col">Clinical data</th><th scope="col">Complete</th><th scope="col">Last change</th></tr></thead>
              <tbody>
                {rows.map((c) => (
                  <tr key={c.pseudonym}>
                    <td><Link to={`/site/cases/${encodeURIComponent(c.pseudonym)}`}><code>{c.pseudonym}</code></Link></td>
                    <td className="num">{Number.isNaN(c.studies) ? '—' : c.studies}</td>
                    <td>{c.clinical ? <><span className={`badge badge-${c.clinical.state === 'uploaded' ? 'ok' : c.clinical.state === 'parked' ? 'error' : 'pending'}`}>{c.clinical.state}</span> <span className="muted">{c.clinical.kind}</span></> : <span className="badge badge-error">none</span>}</td>
                    <td>{c.clinical ? <Completeness v={c.clinical.completeness} /> : '—'}</td>
                    <td>{fmtDate(c.lastReceivedAt ?? null)}</td>
                  </tr>
                ))}
                {!rows.length ? <tr><td colSpan={5}>No cases{q ? ' match this search' : ' yet'}.</td></tr> : null}
              </tbody>
            </table>
          </div>
        )}
      </Panel>
    </Page>
  );
}

export function SiteCase({ params }: { params: Record<string, string> }) {
  const { query } = useLocation();
  const pseudonym = params.pseudonym!;
  const recs = useApi<unknown>(`${P}/clinical`, { query: { pseudonym } });
  const items = list<Stored>(recs.data, 'items');
  return (
    <Page title={`Case ${pseudonym}`} intro="Clinical records held at this site for this patient." actions={<Link className="btn btn-secondary" to="/site/cases">All cases</Link>}>
      {query.get('saved') ? <div className="note note-ok" role="status" data-testid="saved-note">Clinical record saved. It will be uploaded to the hub with the next queue run.</div> : null}
      <ErrorNote error={recs.error} />
      {recs.loading && !recs.data ? <Loading /> : null}
      {items.map((c) => (
        <Panel key={c.id} title={`${c.kind === 'data' ? 'Data record (positive case)' : 'Status record'} — ${c.state}`}
          actions={c.state === 'draft' ? <Link className="btn btn-small" to={`/site/clinical/new?from=${encodeURIComponent(c.id)}`}>Continue draft</Link> : undefined}>
          <dl className="kv" data-testid="clinical-record">
            <dt>Template</dt><dd>{c.templateVersion}</dd>
            <dt>Updated</dt><dd>{fmtDate(c.updatedAt)}</dd>
            <dt>Uploaded</dt><dd>{fmtDate(c.uploadedAt)}</dd>
            {c.reason ? <><dt>Reason</dt><dd>{c.reason}</dd></> : null}
            <dt>Complete</dt><dd><Completeness v={completeness(c.record)} /></dd>
            {ALL_FIELDS.filter((f) => getPath(c.record, f.path) !== undefined).map((f) => {
              const v = getPath(c.record, f.path);
              return <div key={f.path} style={{ display: 'contents' }}><dt>{f.label}</dt><dd data-field={f.path}>{v === null ? <span className="muted">not recorded</span> : typeof v === 'boolean' ? (v ? 'Yes' : 'No') : `${String(v)}${f.unit && f.kind === 'number' ? ` ${f.unit}` : ''}`}</dd></div>;
            })}
          </dl>
        </Panel>
      ))}
      {recs.data && !items.length ? <Panel title="No clinical data"><p>No clinical record yet for this patient. <Link to="/site/clinical/new">Enter clinical data</Link>.</p></Panel> : null}
    </Page>
  );
}
