import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../../api';
import { useApi } from '../../hooks';
import { ConfirmButton, ErrorNote, ErrorSummary, Loading, Notice, Page, Panel, SelectField, TextField, fmtDate } from '../../components/ui';
import { list } from '../../shapes';

export interface SiteView { code: string; name: string; region: string; sharesData: boolean; splitMode: 'training' | 'validation' | 'percent'; trainingPercent: number; rule: string; createdAt: string; updatedAt: string }

const SPLIT_OPTIONS = [
  { value: 'percent', label: 'Split by percentage' },
  { value: 'training', label: 'All to training' },
  { value: 'validation', label: 'All to validation' },
];
const LABELS = { code: 'Site code', name: 'Name', region: 'Region', splitMode: 'Split rule', trainingPercent: 'Training share', sharesData: 'Shares data', form: '' };

function TokenOnce({ site, token, onDone }: { site: string; token: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <Panel title={`Upload token for ${site}`}>
      <div className="note note-wait" role="status">This token is shown once. Copy it into the site node's configuration now (<code>site.hubToken</code>); the hub keeps only its hash.</div>
      <p className="secret" data-testid="site-token">{token}</p>
      <div className="row-actions">
        <button type="button" className="btn btn-secondary" onClick={() => void navigator.clipboard?.writeText(token).then(() => setCopied(true), () => undefined)}>{copied ? 'Copied' : 'Copy token'}</button>
        <button type="button" className="btn" onClick={onDone}>I have stored it</button>
      </div>
    </Panel>
  );
}

function EditSite({ s, onSaved }: { s: SiteView; onSaved: (m: string) => void }) {
  const [mode, setMode] = useState(s.splitMode);
  const [pct, setPct] = useState(String(s.trainingPercent));
  const [shares, setShares] = useState(s.sharesData);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    try {
      await api.patch(`/api/hub/v1/sites/${encodeURIComponent(s.code)}`, { splitMode: mode, trainingPercent: Number(pct), sharesData: shares });
      onSaved(`Saved ${s.code}: ${mode === 'percent' ? `${pct}% training` : `all ${mode}`}${shares ? ', shares data (never in validation)' : ''}.`);
    } catch (err) {
      setErrors(err instanceof ApiError && err.issues.length ? err.fieldErrors() : { form: (err as Error).message });
    }
  };
  return (
    <form onSubmit={save} className="filters" aria-label={`Split rule and sharing for ${s.code}`}>
      <SelectField label="Split rule" name={`${s.code}-splitMode`} value={mode} onChange={(e) => setMode(e.target.value as SiteView['splitMode'])} options={SPLIT_OPTIONS} error={errors.splitMode} />
      {mode === 'percent' ? <TextField label="Training share" unit="%" name={`${s.code}-trainingPercent`} type="number" min={0} max={100} value={pct} onChange={(e) => setPct(e.target.value)} error={errors.trainingPercent} /> : null}
      <div className="checkbox field"><input id={`f-${s.code}-shares`} type="checkbox" checked={shares} onChange={(e) => setShares(e.target.checked)} /><label htmlFor={`f-${s.code}-shares`}>Shares data with other parties</label></div>
      <div className="filters-actions"><button className="btn btn-secondary" type="submit">Save</button></div>
      {errors.form ? <p className="field-error" role="alert">{errors.form}</p> : null}
    </form>
  );
}

export function HubSites(_props: { params: Record<string, string> }) {
  const sites = useApi<unknown>('/api/hub/v1/sites');
  const rows = list<SiteView>(sites.data, 'sites');
  const [form, setForm] = useState({ code: '', name: '', region: '', splitMode: 'percent', trainingPercent: '80', sharesData: false });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [token, setToken] = useState<{ site: string; token: string } | null>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);

  const register = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string> = {};
    if (!/^[A-Z0-9_-]{2,32}$/.test(form.code)) local.code = 'Use 2 to 32 capital letters, digits, - or _';
    if (!form.name.trim()) local.name = 'Enter the site name';
    if (!form.region.trim()) local.region = 'Enter the region';
    const pct = Number(form.trainingPercent);
    if (form.splitMode === 'percent' && !(pct >= 0 && pct <= 100)) local.trainingPercent = 'Enter a percentage from 0 to 100';
    setErrors(local);
    if (Object.keys(local).length) return;
    try {
      const r = await api.post<{ site: SiteView; token: string }>('/api/hub/v1/sites', {
        code: form.code, name: form.name.trim(), region: form.region.trim(), splitMode: form.splitMode, trainingPercent: pct, sharesData: form.sharesData,
      });
      setToken({ site: r.site.code, token: r.token });
      setMsg(`Registered ${r.site.code}.`);
      setForm({ code: '', name: '', region: '', splitMode: 'percent', trainingPercent: '80', sharesData: false });
      sites.reload();
    } catch (err) {
      setErrors(err instanceof ApiError && err.issues.length ? err.fieldErrors() : { form: (err as Error).message });
    }
  };

  const issue = async (code: string, revokeOthers: boolean) => {
    const r = await api.post<{ token: string; revoked: number }>(`/api/hub/v1/sites/${encodeURIComponent(code)}/tokens`, { revokeOthers });
    setToken({ site: code, token: r.token });
    setMsg(revokeOthers ? `Issued a new token for ${code} and revoked ${r.revoked} earlier token(s).` : `Issued a new token for ${code}.`);
  };

  const revoke = async (code: string) => {
    const r = await api.del<{ revoked: number }>(`/api/hub/v1/sites/${encodeURIComponent(code)}/tokens`);
    setToken(null);
    setMsg(`Revoked ${r.revoked} token(s) of ${code}. No new token was issued; ${code} cannot upload until you issue one.`);
  };

  return (
    <Page title="Sites" intro="Hospitals that contribute to the warehouse. Each site uploads with its own token and can write only as itself. The split rule decides, per patient and for good, whether their data is for training or validation.">
      <Notice text={msg} />
      {token ? <TokenOnce site={token.site} token={token.token} onDone={() => setToken(null)} /> : null}
      <Panel title="Registered sites">
        <ErrorNote error={sites.error} what="Sites" />
        {sites.loading && !sites.data ? <Loading /> : null}
        {sites.data ? (
          <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
            <table className="table" data-testid="sites-table">
              <caption className="sr-only">Registered sites</caption>
              <thead><tr><th scope="col">Code</th><th scope="col">Name</th><th scope="col">Region</th><th scope="col">Split rule</th><th scope="col">Shares data</th><th scope="col">Registered</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {rows.map((s) => (
                  <tr key={s.code}>
                    <td><strong>{s.code}</strong></td><td>{s.name}</td><td>{s.region}</td><td>{s.rule}</td><td>{s.sharesData ? 'Yes' : 'No'}</td><td>{fmtDate(s.createdAt)}</td>
                    <td>
                      <div className="row-actions">
                        <button type="button" className="btn btn-secondary btn-small" aria-expanded={editing === s.code} onClick={() => setEditing(editing === s.code ? null : s.code)}>Edit rule</button>
                        <ConfirmButton label="Issue token" className="btn btn-secondary btn-small" title={`Issue a token for ${s.code}?`} body={<p>A new upload token is created and shown once. Earlier tokens keep working until you revoke them.</p>} confirmLabel="Issue token" onConfirm={() => issue(s.code, false)} />
                        <ConfirmButton label="Revoke and reissue" danger className="btn btn-danger btn-small" title={`Revoke every token of ${s.code}?`} body={<p>Every earlier token of this site stops working at once, and one new token is issued and shown once. The site cannot upload until it is configured with the new token.</p>} confirmLabel="Revoke and reissue" onConfirm={() => issue(s.code, true)} />
                        <ConfirmButton label="Revoke" danger className="btn btn-danger btn-small" title={`Revoke every token of ${s.code}?`} body={<p>Every token of this site stops working at once, and no new token is issued. The site cannot upload until you issue it a new token.</p>} confirmLabel="Revoke tokens" onConfirm={() => revoke(s.code)} />
                      </div>
                      {editing === s.code ? <EditSite s={s} onSaved={(m) => { setMsg(m); setEditing(null); sites.reload(); }} /> : null}
                    </td>
                  </tr>
                ))}
                {!rows.length ? <tr><td colSpan={7}>No sites yet.</td></tr> : null}
              </tbody>
            </table>
          </div>
        ) : null}
      </Panel>
      <Panel title="Register a site">
        <ErrorSummary errors={errors} labels={LABELS} />
        <form onSubmit={register} noValidate aria-label="Register a site">
          <div className="form-grid">
            <TextField label="Site code" name="code" hint="Capital letters and digits, e.g. RXH01" value={form.code} onChange={(e) => setForm({ ...form, code: e.target.value.toUpperCase() })} error={errors.code} />
            <TextField label="Name" name="name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} error={errors.name} />
            <TextField label="Region" name="region" value={form.region} onChange={(e) => setForm({ ...form, region: e.target.value })} error={errors.region} />
            <SelectField label="Split rule" name="splitMode" value={form.splitMode} onChange={(e) => setForm({ ...form, splitMode: e.target.value })} options={SPLIT_OPTIONS} error={errors.splitMode} />
            {form.splitMode === 'percent' ? <TextField label="Training share" unit="%" hint="0 to 100; the rest goes to validation" name="trainingPercent" type="number" min={0} max={100} value={form.trainingPercent} onChange={(e) => setForm({ ...form, trainingPercent: e.target.value })} error={errors.trainingPercent} /> : null}
          </div>
          <div className="checkbox field"><input id="f-sharesData" type="checkbox" checked={form.sharesData} onChange={(e) => setForm({ ...form, sharesData: e.target.checked })} /><label htmlFor="f-sharesData">This site shares its data with other parties (its patients never enter validation)</label></div>
          <button className="btn" type="submit">Register site</button>
        </form>
      </Panel>
    </Page>
  );
}
