import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../../api';
import { useApi } from '../../hooks';
import { ErrorNote, ErrorSummary, Loading, Notice, Page, Panel, TextField, fmtBytes, fmtDate, fmtNum } from '../../components/ui';
import { list } from '../../shapes';

interface ReleaseView {
  id: string; version: number; identifier: string; title: string; description: string; contentHash: string;
  trainingHash?: string; validationHash?: string; createdBy?: string; createdAt: string;
  counts: { groups?: Record<string, { patients: number; studies: number; instances: number; clinicalRecords: number; bytes: number }>; excludedForSplitConflict?: number } & Record<string, unknown>;
  withheld?: { applied: boolean; items: number; byGroup: Record<string, number> };
  datasheet?: unknown; datasheetMarkdown?: string;
}

function GroupCounts({ d }: { d: ReleaseView }) {
  const g = d.counts.groups;
  if (!g) return <Counts counts={d.counts} />;
  const cols = ['patients', 'studies', 'instances', 'clinicalRecords'] as const;
  return (
    <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page"><table className="table" data-testid="release-counts">
      <caption className="sr-only">Release contents per group</caption>
      <thead><tr><th scope="col">Group</th>{cols.map((c) => <th scope="col" className="num" key={c}>{c === 'clinicalRecords' ? 'clinical records' : c}</th>)}<th scope="col" className="num">size</th><th scope="col"><span className="sr-only">Manifest</span></th></tr></thead>
      <tbody>{Object.entries(g).map(([grp, c]) => (
        <tr key={grp} data-group={grp}><th scope="row">{grp}</th>{cols.map((k) => <td className="num" data-col={k} key={k}>{fmtNum(c[k])}</td>)}<td className="num">{fmtBytes(c.bytes)}</td>
          <td><a href={`/api/hub/v1/releases/${encodeURIComponent(d.id)}/manifest?group=${grp}`} download={`${d.identifier.replace(/[^A-Za-z0-9._-]/g, '_')}-${grp}-manifest.json`}>Download {grp} manifest</a></td></tr>
      ))}</tbody>
    </table></div>
  );
}

function Counts({ counts }: { counts: Record<string, unknown> }) {
  const flat = Object.entries(counts).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v as Record<string, unknown>).map(([k2, v2]) => [`${k} ${k2}`, v2] as const) : [[k, v] as const]));
  return (
    <dl className="kv">{flat.filter(([, v]) => typeof v === 'number' || typeof v === 'string').map(([k, v]) => <div key={k} style={{ display: 'contents' }}><dt>{k}</dt><dd>{typeof v === 'number' ? fmtNum(v) : String(v)}</dd></div>)}</dl>
  );
}

function ReleaseDetail({ id }: { id: string }) {
  const r = useApi<ReleaseView>(`/api/hub/v1/releases/${encodeURIComponent(id)}`);
  if (r.error) return <ErrorNote error={r.error} />;
  if (!r.data) return <Loading />;
  const d = r.data;
  return (
    <div data-testid="release-detail">
      <div className="stack">
        <div>
          <h3>Manifest summary</h3>
          <dl className="kv">
            <dt>Identifier</dt><dd><code>{d.identifier}</code></dd>
            <dt>Content hash</dt><dd><code>{d.contentHash}</code></dd>
            {d.trainingHash ? <><dt>Training hash</dt><dd><code>{d.trainingHash}</code></dd></> : null}
            {d.validationHash ? <><dt>Validation hash</dt><dd><code>{d.validationHash}</code></dd></> : null}
          </dl>
          <h3>Contents</h3>
          <GroupCounts d={d} />
          {d.counts.excludedForSplitConflict ? <p className="muted">{d.counts.excludedForSplitConflict} patient(s) left out because of a split conflict.</p> : null}
          {d.withheld?.items ? <p className="note note-wait">{d.withheld.items} item(s) are now withheld because their patients were purged after the release was cut.</p> : null}
        </div>
        <div>
          <h3>Datasheet</h3>
          {d.datasheetMarkdown ? <pre className="block" tabIndex={0} aria-label="Datasheet">{d.datasheetMarkdown}</pre>
            : d.datasheet ? <pre className="block" tabIndex={0} aria-label="Datasheet">{JSON.stringify(d.datasheet, null, 2)}</pre> : <p className="muted">No datasheet.</p>}
        </div>
      </div>
    </div>
  );
}

export function HubReleases(_props: { params: Record<string, string> }) {
  const rel = useApi<unknown>('/api/hub/v1/releases');
  const rows = list<ReleaseView>(rel.data, 'releases');
  const [form, setForm] = useState({ title: '', description: '' });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [msg, setMsg] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string> = {};
    if (!form.title.trim()) local.title = 'Enter a title';
    if (!form.description.trim()) local.description = 'Describe what the release is for';
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      const r = await api.post<ReleaseView | { release: ReleaseView }>('/api/hub/v1/releases', { title: form.title.trim(), description: form.description.trim() });
      const created = 'release' in r ? r.release : r;
      setMsg(`Created release ${created.identifier ?? created.version}.`);
      setForm({ title: '', description: '' });
      setOpen(created.id);
      rel.reload();
    } catch (err) {
      setErrors(err instanceof ApiError && err.issues.length ? err.fieldErrors() : { form: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Releases" intro="Immutable, versioned snapshots of the warehouse with a manifest, checksums and a citable identifier. Validation data is kept apart from training data in every release.">
      <Notice text={msg} />
      <Panel title="Releases">
        <ErrorNote error={rel.error} what="Releases" />
        {rel.loading && !rel.data ? <Loading /> : null}
        {rel.data ? (
          <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
            <table className="table" data-testid="releases-table">
              <caption className="sr-only">Releases</caption>
              <thead><tr><th scope="col">Version</th><th scope="col">Title</th><th scope="col">Identifier</th><th scope="col">Created</th><th scope="col">Content hash</th><th scope="col"><span className="sr-only">Details</span></th></tr></thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.id}>
                    <td>v{r.version}</td><td>{r.title}</td><td><code>{r.identifier}</code></td><td>{fmtDate(r.createdAt)}</td><td><code>{r.contentHash?.slice(0, 16)}…</code></td>
                    <td><button type="button" className="btn btn-secondary btn-small" aria-expanded={open === r.id} onClick={() => setOpen(open === r.id ? null : r.id)}>{open === r.id ? 'Hide' : 'Datasheet and manifest'}</button></td>
                  </tr>
                ))}
                {!rows.length ? <tr><td colSpan={6}>No releases yet.</td></tr> : null}
              </tbody>
            </table>
          </div>
        ) : null}
      </Panel>
      {open ? <Panel title="Release details"><ReleaseDetail id={open} /></Panel> : null}
      <Panel title="Create a release">
        <ErrorSummary errors={errors} labels={{ title: 'Title', description: 'Description', form: '' }} />
        <form onSubmit={create} noValidate aria-label="Create a release">
          <TextField label="Title" name="title" value={form.title} onChange={(e) => setForm({ ...form, title: e.target.value })} error={errors.title} />
          <div className={`field${errors.description ? ' field-invalid' : ''}`}>
            <label htmlFor="f-description">Description</label>
            {errors.description ? <p className="field-error" id="f-description-error"><span className="sr-only">Error: </span>{errors.description}</p> : null}
            <textarea id="f-description" rows={3} value={form.description} aria-invalid={errors.description ? true : undefined} aria-describedby={errors.description ? 'f-description-error' : undefined} onChange={(e) => setForm({ ...form, description: e.target.value })} />
          </div>
          <button className="btn" type="submit" disabled={busy}>{busy ? 'Cutting the release…' : 'Create release'}</button>
        </form>
      </Panel>
    </Page>
  );
}
