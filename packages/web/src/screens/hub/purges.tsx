import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../../api';
import { useApi } from '../../hooks';
import { ConfirmButton, ErrorNote, ErrorSummary, Loading, Notice, Page, Panel, TextField, fmtDate } from '../../components/ui';
import { list } from '../../shapes';

interface PurgeView { id: string; site: string | null; requestedBy: string; requestId: string | null; reason?: string | null; counts: Record<string, number>; instancesDigest: string; auditEventId: string; purgedAt: string }

const PSEUDONYM_RE = /^IMG-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/;

export function HubPurges(_props: { params: Record<string, string> }) {
  const p = useApi<unknown>('/api/hub/v1/purges');
  const rows = list<PurgeView>(p.data, 'purges');
  const [pseudonym, setPseudonym] = useState('');
  const [reason, setReason] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [msg, setMsg] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const validate = (e?: FormEvent) => {
    e?.preventDefault();
    const local: Record<string, string> = {};
    if (!PSEUDONYM_RE.test(pseudonym.trim())) local.pseudonym = 'Enter a pseudonym like IMG-XXXX-XXXX-XXXX-XXXX';
    if (!reason.trim()) local.reason = 'Say why (for example: national opt-out registered)';
    setErrors(local);
    return !Object.keys(local).length;
  };
  const run = async () => {
    try {
      const r = await api.post<{ status: string; evidenceId: string; counts: Record<string, number> }>('/api/hub/v1/purges', { pseudonym: pseudonym.trim(), reason: reason.trim() });
      setMsg(r.status === 'already-purged' ? `Nothing left to purge for this patient; evidence ${r.evidenceId}.` : `Purged: ${Object.entries(r.counts).map(([k, v]) => `${v} ${k}`).join(', ')}. Evidence ${r.evidenceId}.`);
      setPseudonym('');
      setReason('');
      p.reload();
    } catch (err) {
      if (err instanceof ApiError && err.issues.length) setErrors(err.fieldErrors());
      throw err;
    }
  };

  return (
    <Page title="Purges" intro="Everything the hub holds for a patient is removed everywhere (index, images, thumbnails, clinical and linked data, release items) and evidence is kept: counts, a digest of the instances removed and the audit event. The pseudonym itself is not kept.">
      <Notice text={msg} />
      <Panel title="Request a purge">
        <ErrorSummary errors={errors} labels={{ pseudonym: 'Pseudonym', reason: 'Reason' }} />
        <form onSubmit={validate} noValidate className="form-grid" aria-label="Request a purge">
          <TextField label="Pseudonym" name="pseudonym" autoComplete="off" value={pseudonym} onChange={(e) => setPseudonym(e.target.value.toUpperCase())} error={errors.pseudonym} />
          <TextField label="Reason" name="reason" value={reason} onChange={(e) => setReason(e.target.value)} error={errors.reason} />
        </form>
        <ConfirmButton label="Purge this patient" danger title="Purge this patient everywhere?" disabled={!pseudonym || !reason}
          body={<p>Every instance, study, clinical record and release item held for <code>{pseudonym}</code> is deleted from the hub. Releases keep only a hash of what was withheld. This cannot be undone.</p>}
          confirmLabel="Purge" onConfirm={async () => { if (validate()) await run(); }} />
      </Panel>
      <Panel title="Purges carried out">
        <ErrorNote error={p.error} what="Purges" />
        {p.loading && !p.data ? <Loading /> : null}
        {p.data ? (
          <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
            <table className="table" data-testid="purges-table">
              <caption className="sr-only">Purges with their evidence</caption>
              <thead><tr><th scope="col">When</th><th scope="col">Requested by</th><th scope="col">Site</th><th scope="col">Removed</th><th scope="col">Evidence</th></tr></thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.id}>
                    <td>{fmtDate(r.purgedAt)}</td>
                    <td>{r.requestedBy}{r.reason ? <div className="muted">{r.reason}</div> : null}</td>
                    <td>{r.site ?? 'hub'}</td>
                    <td>{Object.entries(r.counts).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(', ') || 'nothing held'}</td>
                    <td>
                      <button type="button" className="btn btn-secondary btn-small" aria-expanded={open === r.id} onClick={() => setOpen(open === r.id ? null : r.id)}>Evidence</button>
                      {open === r.id ? (
                        <dl className="kv" style={{ marginTop: '0.5rem' }}>
                          <dt>Purge id</dt><dd><code>{r.id}</code></dd>
                          <dt>Instances digest</dt><dd><code>{r.instancesDigest}</code></dd>
                          <dt>Audit event</dt><dd><code>{r.auditEventId}</code></dd>
                          {r.requestId ? <><dt>Site request</dt><dd><code>{r.requestId}</code></dd></> : null}
                        </dl>
                      ) : null}
                    </td>
                  </tr>
                ))}
                {!rows.length ? <tr><td colSpan={5}>No purges yet.</td></tr> : null}
              </tbody>
            </table>
          </div>
        ) : null}
      </Panel>
    </Page>
  );
}
