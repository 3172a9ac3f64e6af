import { useState } from 'react';
import { useApi } from '../../hooks';
import { Link, useLocation } from '../../router';
import { ErrorNote, Loading, Page, Panel, TextField, fmtDate } from '../../components/ui';
import { list } from '../../shapes';
import { ALL_FIELDS, completeness, getPath } from '../../clinical-fields';

const P = '/api/site/v1';

interface Stored { id: string; pseudonym: string; kind: string; state: string; templateVersion: string; record: Record<string, unknown>; updatedAt: string; uploadedAt: string | null; reason: string | null }
/** One patient from GET /api/site/v1/cases. */
interface CaseRow {
  pseudonym: string;
  studies: number;
  studyList: Array<{ uid: string | null; modality: string | null; firstReceivedAt: string; lastReceivedAt: string; instances: number; estimated: boolean }>;
  instances: number;
  instancesByState: Record<string, number>;
  modalities: string[];
  firstReceivedAt: string | null;
  lastReceivedAt: string | null;
  clinical: { id: string; kind: string; state: string; templateVersion: string; completeness: number; updatedAt: string; records: number } | null;
}
interface CasesPage { items: CaseRow[]; total: number; limit: number; offset: number }

const PAGE = 50;

function Completeness({ v }: { v: number }) {
  const pct = Math.round(v * 100);
  return (
    <span style={{ display: 'inline-flex', alignItems: 'center', gap: '0.5rem' }}>
      <span className="bar" style={{ width: 90 }} role="img" aria-label={`${pct}% complete`}><span style={{ width: `${pct}%` }} /></span>{pct}%
    </span>
  );
}

const STATE_LABEL: Record<string, string> = { uploaded: 'uploaded', outbox: 'waiting', received: 'received', checked: 'checked', quarantine: 'in quarantine', parked: 'parked', duplicate: 'duplicate', rejected: 'rejected' };

function Instances({ c }: { c: CaseRow }) {
  const parts = Object.entries(c.instancesByState).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${v} ${STATE_LABEL[k] ?? k}`);
  return <span title={parts.join(', ')}>{c.instances}{parts.length && !(parts.length === 1 && c.instancesByState.uploaded) ? <span className="muted"> ({parts.join(', ')})</span> : null}</span>;
}

export function SiteCases(_props: { params: Record<string, string> }) {
  const [q, setQ] = useState('');
  const [offset, setOffset] = useState(0);
  const cases = useApi<CasesPage>(`${P}/cases`, { query: { q: q.trim() || undefined, limit: PAGE, offset } });
  const rows: CaseRow[] = cases.data?.items ?? [];
  const total = cases.data?.total ?? 0;
  const estimated = rows.some((c) => c.studyList.some((s) => s.estimated));

  return (
    <Page title="Cases" intro="Patients at this site, by pseudonym, with their studies and clinical data. The site never shows the original identifiers here." actions={<Link className="btn" to="/site/clinical/new">Enter clinical data</Link>}>
      <Panel title="Find a case">
        <form role="search" onSubmit={(e) => e.preventDefault()} className="filters">
          <TextField label="Pseudonym starts with" name="q" placeholder="IMG-…" value={q} onChange={(e) => { setQ(e.target.value); setOffset(0); }} autoComplete="off" />
        </form>
        <ErrorNote error={cases.error} what="Cases" />
        {cases.loading && !cases.data ? <Loading /> : (
          <>
            <p className="muted" role="status" data-testid="cases-count">{total === 0 ? 'No cases' : `${offset + 1}–${offset + rows.length} of ${total} case${total === 1 ? '' : 's'}`}{q.trim() ? ' matching this search' : ''}.</p>
            <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
              <table className="table" data-testid="cases-table">
                <caption className="sr-only">Cases</caption>
                <thead><tr><th scope="col">Pseudonym</th><th scope="col" className="num">Studies</th><th scope="col">Modalities</th><th scope="col" className="num">Instances</th><th scope="col">Clinical data</th><th scope="col">Complete</th><th scope="col">Last received</th></tr></thead>
                <tbody>
                  {rows.map((c) => (
                    <tr key={c.pseudonym} data-testid="case-row" data-pseudonym={c.pseudonym}>
                      <td><Link to={`/site/cases/${encodeURIComponent(c.pseudonym)}`}><code>{c.pseudonym}</code></Link></td>
                      <td className="num" data-testid="case-studies">{c.studies}</td>
                      <td>{c.modalities.join(', ') || '—'}</td>
                      <td className="num"><Instances c={c} /></td>
                      <td>{c.clinical ? <><span className={`badge badge-${c.clinical.state === 'uploaded' ? 'ok' : c.clinical.state === 'parked' ? 'error' : 'pending'}`}>{c.clinical.state}</span> <span className="muted">{c.clinical.kind}</span></> : <span className="badge badge-error">none</span>}</td>
                      <td>{c.clinical ? <Completeness v={c.clinical.completeness} /> : '—'}</td>
                      <td>{fmtDate(c.lastReceivedAt ?? c.clinical?.updatedAt ?? null)}</td>
                    </tr>
                  ))}
                  {!rows.length ? <tr><td colSpan={7}>No cases{q ? ' match this search' : ' yet'}.</td></tr> : null}
                </tbody>
              </table>
            </div>
            {estimated ? <p className="muted">Studies are counted by modality and day received: this site node does not record Study Instance UIDs yet.</p> : null}
            {total > PAGE ? (
              <div className="row-actions">
                <button type="button" className="btn btn-secondary btn-small" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Previous</button>
                <button type="button" className="btn btn-secondary btn-small" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Next</button>
              </div>
            ) : null}
          </>
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
