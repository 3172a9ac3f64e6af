import { useState, type FormEvent } from 'react';
import { useApi } from '../hooks';
import { ErrorNote, Loading, Page, Panel, SelectField, TextField, fmtDate, fmtNum } from '../components/ui';

interface AuditEventView {
  seq: number; id: string; at: string; actorId: string; actorName: string; actorRole: string | null; action: string;
  code: string; codeDisplay: string; resourceType: string; resourceId: string | null; outcome: string; sourceIp: string | null;
  detail: unknown; hash: string;
}
interface EventsPage { events: AuditEventView[]; nextBefore: number | null; total: number }
interface Verify { ok: boolean; checked: number; head: string | null; broken: { seq: number; reason: string } | null; verifiedAt: string }

const PAGE = 25;

export function AuditLogScreen() {
  const [form, setForm] = useState({ action: '', outcome: '', actor: '' });
  const [filters, setFilters] = useState(form);
  const [cursors, setCursors] = useState<Array<number | undefined>>([undefined]);
  const before = cursors[cursors.length - 1];
  const events = useApi<EventsPage>('/api/audit/events', { query: { limit: PAGE, before, ...filters } });
  const verify = useApi<Verify>('/api/audit/verify');

  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters(form);
    setCursors([undefined]);
  };

  return (
    <Page title="Audit log" intro="The append-only, hash-chained record of who did what. Reading it is itself recorded.">
      <Panel title="Chain verification" actions={<button className="btn btn-secondary" type="button" onClick={verify.reload}>Verify again</button>}>
        {verify.loading && !verify.data ? <Loading label="Verifying the chain…" /> : null}
        <ErrorNote error={verify.error} />
        {verify.data ? (
          <div className={`chain ${verify.data.ok ? 'chain-ok' : 'chain-broken'}`} data-testid="chain-status" role="status">
            <strong>{verify.data.ok ? 'Chain intact' : 'Chain broken'}</strong>
            {verify.data.ok
              ? <> — {fmtNum(verify.data.checked)} events verified at {fmtDate(verify.data.verifiedAt)}; head <code title={verify.data.head ?? ''}>{verify.data.head?.slice(0, 16)}…</code></>
              : <> at event {verify.data.broken?.seq}: {verify.data.broken?.reason} ({fmtNum(verify.data.checked)} events verified before it)</>}
          </div>
        ) : null}
      </Panel>

      <Panel title="Events">
        <form className="filters" onSubmit={apply} aria-label="Filter audit events">
          <TextField label="Action starts with" name="action" placeholder="e.g. hub.release" value={form.action} onChange={(e) => setForm({ ...form, action: e.target.value })} />
          <SelectField label="Outcome" name="outcome" value={form.outcome} onChange={(e) => setForm({ ...form, outcome: e.target.value })}
            options={[{ value: '', label: 'Any' }, { value: 'success', label: 'Success' }, { value: 'failure', label: 'Failure' }, { value: 'denied', label: 'Denied' }]} />
          <TextField label="Actor (name or id)" name="actor" value={form.actor} onChange={(e) => setForm({ ...form, actor: e.target.value })} />
          <div className="filters-actions"><button className="btn" type="submit">Apply filters</button></div>
        </form>
        <ErrorNote error={events.error} />
        {events.data ? (
          <>
            <p className="muted" aria-live="polite">{fmtNum(events.data.total)} events in the log; showing {events.data.events.length} on this page, newest first.</p>
            <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
              <table className="table" data-testid="audit-table">
                <caption className="sr-only">Audit events</caption>
                <thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Event code</th><th scope="col">Resource</th><th scope="col">Outcome</th></tr></thead>
                <tbody>
                  {events.data.events.map((e) => (
                    <tr key={e.seq}>
                      <td>{e.seq}</td>
                      <td>{fmtDate(e.at)}</td>
                      <td>{e.actorName}{e.actorRole ? <span className="muted"> ({e.actorRole})</span> : null}</td>
                      <td><code>{e.action}</code></td>
                      <td>{e.codeDisplay}</td>
                      <td>
                        {e.resourceType}{e.resourceId ? <span className="muted"> {e.resourceId.slice(0, 12)}</span> : null}
                        <details>
                          <summary>Details<span className="sr-only"> of event {e.seq}</span></summary>
                          <dl className="kv">
                            <dt>Actor id</dt><dd><code>{e.actorId}</code></dd>
                            {e.sourceIp ? <><dt>From</dt><dd>{e.sourceIp}</dd></> : null}
                            {e.resourceId ? <><dt>Resource</dt><dd><code>{e.resourceId}</code></dd></> : null}
                            <dt>Hash</dt><dd><code>{e.hash}</code></dd>
                          </dl>
                          {e.detail ? <pre className="block">{JSON.stringify(e.detail, null, 2)}</pre> : null}
                        </details>
                      </td>
                      <td><span className={`badge badge-${e.outcome}`}>{e.outcome}</span></td>
                    </tr>
                  ))}
                  {!events.data.events.length ? <tr><td colSpan={7}>No events match these filters.</td></tr> : null}
                </tbody>
              </table>
            </div>
            <nav className="pager" aria-label="Audit log pages">
              <button className="btn btn-secondary" type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>Newer</button>
              <span>Page {cursors.length}</span>
              <button className="btn btn-secondary" type="button" disabled={events.data.nextBefore === null} onClick={() => setCursors([...cursors, events.data!.nextBefore!])}>Older</button>
            </nav>
          </>
        ) : events.loading ? <Loading /> : null}
      </Panel>
    </Page>
  );
}
