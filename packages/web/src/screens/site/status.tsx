import { useState } from 'react';
import { api } from '../../api';
import { useApi } from '../../hooks';
import { ErrorNote, Loading, Notice, Page, Panel, Stat, fmtDate, fmtNum } from '../../components/ui';
import { sum } from '../../shapes';

export interface SiteStatusView {
  site: string;
  hub: string | null;
  instances: Record<string, number>;
  clinical: Record<string, number>;
  purges: Record<string, number>;
  oldestWaiting: { id: string; state: string; since: string; ageSeconds: number } | null;
  lastSuccessfulUpload: string | null;
  parked: Array<{ kind: 'instance' | 'clinical'; id: string; reason: string | null; since: string; attempts: number }>;
  droppedOptOut: { instances: number; clinical: number };
}

/** GET /api/site/v1/hub-link: the site pings the hub with its own token (cached a few seconds on the server). */
export interface HubLinkView { configured: boolean; reachable: boolean; latencyMs: number | null; checkedAt: string | null; hub?: string | null; error?: string }

/** Pipeline stages in the order an instance passes through them. */
const STAGES: Array<{ key: string; label: string }> = [
  { key: 'received', label: 'Received' },
  { key: 'checked', label: 'Opt-out checked' },
  { key: 'outbox', label: 'De-identified, waiting to upload' },
  { key: 'uploaded', label: 'Uploaded' },
  { key: 'quarantine', label: 'In quarantine' },
  { key: 'parked', label: 'Parked' },
  { key: 'dropped-opt-out', label: 'Dropped (opted out)' },
  { key: 'duplicate', label: 'Duplicate' },
  { key: 'rejected', label: 'Rejected at review' },
];
const QUEUE = ['received', 'checked', 'outbox', 'uploaded', 'parked'];

function age(s: number): string {
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

export function SiteStatus(_props: { params: Record<string, string> }) {
  const st = useApi<SiteStatusView>('/api/site/v1/status', { pollMs: 3000 });
  const [msg, setMsg] = useState<{ text: string; kind: 'ok' | 'error' } | null>(null);
  const [busy, setBusy] = useState(false);
  const link = useApi<HubLinkView>('/api/site/v1/hub-link', { pollMs: 10_000 });
  const s = st.data;
  const h = link.data;

  const retry = async (ids?: string[]) => {
    setBusy(true);
    try {
      const r = await api.post<{ retried?: number }>('/api/site/v1/queue/retry-parked', ids ? { ids } : {});
      setMsg({ text: `Put ${r?.retried ?? (ids?.length ?? 'all')} parked item(s) back in the upload queue.`, kind: 'ok' });
      st.reload();
    } catch (e) {
      setMsg({ text: (e as Error).message, kind: 'error' });
    } finally {
      setBusy(false);
    }
  };

  const queueTotal = s ? sum(s.instances, QUEUE) : 0;
  const uploaded = s?.instances.uploaded ?? 0;
  const pct = queueTotal ? Math.round((uploaded / queueTotal) * 100) : 100;

  return (
    <Page title="Site status" intro={s ? `Site ${s.site}. Refreshes every few seconds${st.at ? `; last updated ${st.at.toLocaleTimeString('en-GB')}` : ''}.` : 'The site node pipeline, live.'}>
      <ErrorNote error={st.error} what="Site status" />
      {!s && st.loading ? <Loading /> : null}
      {s ? (
        <>
          <div className="stats" data-testid="site-stats">
            <Stat label="Instances received" value={fmtNum(sum(s.instances))} />
            <Stat label="Uploaded to the hub" value={fmtNum(uploaded)} />
            <Stat label="In quarantine" value={fmtNum(s.instances.quarantine ?? 0)} />
            <Stat label="Parked" value={fmtNum(s.parked.length)} />
            <Stat label="Dropped by opt-out" value={fmtNum(s.droppedOptOut.instances + s.droppedOptOut.clinical)} hint={`${s.droppedOptOut.instances} instances, ${s.droppedOptOut.clinical} clinical`} />
          </div>
          <div className="grid-2">
            <Panel title="Upload queue">
              <p><strong>{pct}%</strong> of queued instances uploaded ({fmtNum(uploaded)} of {fmtNum(queueTotal)}).</p>
              <div className="bar" role="progressbar" aria-label="Upload queue progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}><span style={{ width: `${pct}%` }} /></div>
              <dl className="kv" style={{ marginTop: '0.75rem' }}>
                <dt>Last upload</dt><dd data-testid="last-upload">{fmtDate(s.lastSuccessfulUpload)}</dd>
                <dt>Oldest waiting</dt><dd>{s.oldestWaiting ? `${s.oldestWaiting.state}, waiting ${age(s.oldestWaiting.ageSeconds)}` : 'Nothing waiting'}</dd>
                <dt>Clinical records</dt><dd>{Object.entries(s.clinical).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}</dd>
                <dt>Purge requests</dt><dd>{Object.entries(s.purges).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}</dd>
              </dl>
            </Panel>
            <Panel title="Connection to the hub">
              <ErrorNote error={link.error} what="Hub link check" />
              {s.hub ? (
                <dl className="kv" data-testid="hub-connection">
                  <dt>Hub</dt><dd><code>{s.hub}</code></dd>
                  <dt>State</dt>
                  <dd data-testid="hub-link-state">
                    {h ? <span className={`badge badge-${h.reachable ? 'ok' : 'error'}`}>{h.reachable ? 'Reachable' : 'Not reachable'}</span> : link.error ? <span className="badge badge-pending">Unknown</span> : <span className="muted">Checking…</span>}
                  </dd>
                  {h?.reachable && h.latencyMs !== null ? <><dt>Round trip</dt><dd data-testid="hub-link-latency">{h.latencyMs} ms</dd></> : null}
                  {h?.checkedAt ? <><dt>Checked</dt><dd>{fmtDate(h.checkedAt)}</dd></> : null}
                  {h?.error ? <><dt>Error</dt><dd data-testid="hub-link-error">{h.error}</dd></> : null}
                  <dt>Last successful upload</dt><dd>{fmtDate(s.lastSuccessfulUpload)}</dd>
                </dl>
              ) : <p data-testid="hub-connection">No hub is configured for this site node; nothing leaves the site.</p>}
            </Panel>
          </div>
          <Panel title="Pipeline stages">
            <table className="table" data-testid="stage-table">
              <caption className="sr-only">Instances per pipeline stage</caption>
              <thead><tr><th scope="col">Stage</th><th scope="col" className="num">Instances</th></tr></thead>
              <tbody>{STAGES.map((g) => <tr key={g.key}><th scope="row">{g.label}</th><td className="num" data-stage={g.key}>{fmtNum(s.instances[g.key] ?? 0)}</td></tr>)}</tbody>
            </table>
          </Panel>
          <Panel title="Parked items" actions={s.parked.length ? <button type="button" className="btn btn-secondary" disabled={busy} onClick={() => void retry()}>Retry all</button> : undefined}>
            <Notice text={msg?.text ?? null} kind={msg?.kind} />
            {s.parked.length ? (
              <table className="table" data-testid="parked-table">
                <caption className="sr-only">Items the queue has parked, with the reason</caption>
                <thead><tr><th scope="col">Kind</th><th scope="col">Item</th><th scope="col">Reason</th><th scope="col">Since</th><th scope="col" className="num">Attempts</th><th scope="col"><span className="sr-only">Action</span></th></tr></thead>
                <tbody>
                  {s.parked.map((p) => (
                    <tr key={`${p.kind}:${p.id}`}>
                      <td>{p.kind}</td><td><code>{p.id.slice(0, 12)}</code></td><td>{p.reason ?? '—'}</td><td>{fmtDate(p.since)}</td><td className="num">{p.attempts}</td>
                      <td>{p.kind === 'instance' ? <button type="button" className="btn btn-small" disabled={busy} onClick={() => void retry([p.id])} aria-label={`Retry ${p.kind} ${p.id.slice(0, 12)}`}>Retry</button> : null}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : <p>No parked items. Failures the queue cannot resolve by itself appear here with their reason.</p>}
          </Panel>
        </>
      ) : null}
    </Page>
  );
}
