import { useState, type FormEvent } from 'react';
import { useApi } from '../../hooks';
import { ErrorNote, Loading, Page, Panel, SelectField, TextField } from '../../components/ui';
import { SeriesViewer } from '../../components/viewer';

const DW = '/api/hub/v1/dicomweb';
type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;
const val = (j: DicomJson, tag: string): string => {
  const v = j[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && 'Alphabetic' in (v as Record<string, unknown>)) return String((v as { Alphabetic: string }).Alphabetic);
  return String(v);
};
const vals = (j: DicomJson, tag: string): string => (j[tag]?.Value ?? []).map(String).join(', ');
const fmtDa = (s: string) => (s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6)}` : s || '—');
const PAGE = 20;

function Series({ study }: { study: string }) {
  const series = useApi<DicomJson[]>(`${DW}/studies/${study}/series`);
  const [open, setOpen] = useState<string | null>(null);
  const insts = useApi<DicomJson[]>(open ? `${DW}/studies/${study}/series/${open}/instances` : null);
  const instances = (insts.data ?? [])
    .map((i) => ({ uid: val(i, '00080018'), n: Number(val(i, '00200013')) || 0 }))
    .sort((a, b) => a.n - b.n)
    .map((i) => ({ url: `${DW}/studies/${study}/series/${open}/instances/${i.uid}`, label: `#${i.n} ${i.uid.slice(-12)}` }));
  return (
    <div>
      <ErrorNote error={series.error} />
      {series.loading && !series.data ? <Loading /> : null}
      <div className="thumbs" data-testid="series-list">
        {(series.data ?? []).map((s) => {
          const uid = val(s, '0020000E');
          return (
            <article className="thumb-card" key={uid} aria-label={`Series ${val(s, '00200011')}`}>
              <img src={`${DW}/studies/${study}/series/${uid}/thumbnail`} alt={`First image of series ${val(s, '00200011')} (${val(s, '00080060')})`} loading="lazy" />
              <strong>{val(s, '00080060')} series {val(s, '00200011')}</strong>
              <span className="muted">{val(s, '0008103E') || 'No description'} · {val(s, '00201209')} image(s)</span>
              <button type="button" className="btn btn-small" aria-expanded={open === uid} onClick={() => setOpen(open === uid ? null : uid)}>{open === uid ? 'Close viewer' : 'View series'}</button>
            </article>
          );
        })}
      </div>
      {open ? (
        <Panel title="Viewer">
          <ErrorNote error={insts.error} />
          {insts.data ? <SeriesViewer title="Series" instances={instances} /> : <Loading />}
        </Panel>
      ) : null}
    </div>
  );
}

export function HubStudies(_props: { params: Record<string, string> }) {
  const [form, setForm] = useState({ PatientID: '', ModalitiesInStudy: '' });
  const [filters, setFilters] = useState(form);
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const studies = useApi<DicomJson[]>(`${DW}/studies`, { query: { ...filters, limit: PAGE + 1, offset, includefield: '00081030,00201208,00080061' } });
  const rows = (studies.data ?? []).slice(0, PAGE);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters(form);
    setOffset(0);
  };
  return (
    <Page title="Study browser" intro="Studies held by the warehouse, through its DICOMweb API (QIDO-RS and WADO-RS). Patients appear only by pseudonym.">
      <Panel title="Search">
        <form className="filters" onSubmit={apply} aria-label="Search studies">
          <TextField label="Pseudonym" name="PatientID" placeholder="IMG-…" autoComplete="off" value={form.PatientID} onChange={(e) => setForm({ ...form, PatientID: e.target.value.toUpperCase() })} />
          <SelectField label="Modality" name="ModalitiesInStudy" value={form.ModalitiesInStudy} onChange={(e) => setForm({ ...form, ModalitiesInStudy: e.target.value })}
            options={[{ value: '', label: 'Any' }, ...['CR', 'DX', 'CT', 'MR', 'US', 'SC', 'OT'].map((m) => ({ value: m, label: m }))]} />
          <div className="filters-actions"><button className="btn" type="submit">Search</button></div>
        </form>
        <ErrorNote error={studies.error} what="Studies" />
        {studies.loading && !studies.data ? <Loading /> : null}
        {studies.data ? (
          <>
            <div className="table-wrap" tabIndex={0} role="group" aria-label="Table; scroll sideways if it is wider than the page">
              <table className="table" data-testid="studies-table">
                <caption className="sr-only">Studies</caption>
                <thead><tr><th scope="col">Pseudonym</th><th scope="col">Date</th><th scope="col">Modalities</th><th scope="col">Description</th><th scope="col" className="num">Instances</th><th scope="col"><span className="sr-only">Open</span></th></tr></thead>
                <tbody>
                  {rows.map((s) => {
                    const uid = val(s, '0020000D');
                    return (
                      <tr key={uid}>
                        <td><code>{val(s, '00100020')}</code></td><td>{fmtDa(val(s, '00080020'))}</td><td>{vals(s, '00080061')}</td><td>{val(s, '00081030') || '—'}</td><td className="num">{val(s, '00201208')}</td>
                        <td><button type="button" className="btn btn-secondary btn-small" aria-expanded={open === uid} onClick={() => setOpen(open === uid ? null : uid)}>{open === uid ? 'Hide series' : 'Series'}</button></td>
                      </tr>
                    );
                  })}
                  {!rows.length ? <tr><td colSpan={6}>No studies match.</td></tr> : null}
                </tbody>
              </table>
            </div>
            <nav className="pager" aria-label="Study pages">
              <button className="btn btn-secondary" type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Previous</button>
              <span>Studies {rows.length ? offset + 1 : 0}–{offset + rows.length}</span>
              <button className="btn btn-secondary" type="button" disabled={(studies.data?.length ?? 0) <= PAGE} onClick={() => setOffset(offset + PAGE)}>Next</button>
            </nav>
          </>
        ) : null}
      </Panel>
      {open ? <Panel title="Series in this study"><Series study={open} /></Panel> : null}
    </Page>
  );
}
