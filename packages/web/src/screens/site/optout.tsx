import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../../api';
import { useApi } from '../../hooks';
import { ErrorNote, ErrorSummary, Loading, Notice, Page, Panel, Stat, TextField, fmtNum } from '../../components/ui';

interface OptoutSummary { count: number; droppedInstances: number; droppedClinical: number }
interface AddResult { added: number; already: number; purgesRequested: number; rejected?: Array<{ row: number; reason: string }> }

/**
 * The national data opt-out list. The page shows counts only: the list is
 * never shown back, not even as hashes.
 */
export function OptOut(_props: { params: Record<string, string> }) {
  const s = useApi<OptoutSummary>('/api/site/v1/optouts', { query: { limit: 0 } });
  const [id, setId] = useState('');
  const [issuer, setIssuer] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [msg, setMsg] = useState<string | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);

  const report = (r: AddResult) => `${r.added} added, ${r.already} already on the list, ${r.purgesRequested} purge request(s) sent for data uploaded earlier${r.rejected?.length ? `; ${r.rejected.length} row(s) rejected` : ''}.`;

  const addOne = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    if (!id.trim()) return setErrors({ patientId: 'Enter the patient identifier (for example the NHS number)' });
    setBusy(true);
    try {
      const r = await api.post<AddResult>('/api/site/v1/optouts', { entries: [{ patientId: id.trim(), issuer: issuer.trim() || undefined }] });
      setMsg(report(r));
      setId('');
      s.reload();
    } catch (err) {
      if (err instanceof ApiError && err.issues.length) setErrors(Object.fromEntries(Object.entries(err.fieldErrors()).map(([k, v]) => [k.replace(/^entries\.\d+\./, ''), v])));
      else setErrors({ form: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };

  const upload = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    if (!file) return setErrors({ csv: 'Choose a CSV file' });
    setBusy(true);
    try {
      const r = await api.post<AddResult>('/api/site/v1/optouts/import', undefined, { raw: { body: file, contentType: 'text/csv' } });
      setMsg(`From ${file.name}: ${report(r)}`);
      setFile(null);
      (e.target as HTMLFormElement).reset();
      s.reload();
    } catch (err) {
      setErrors({ csv: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Opt-out list" intro="Patients who have opted out of data sharing. The site checks every instance and clinical record against this list before anything leaves, and asks the hub to purge anything sent earlier. Identifiers are kept only as keyed hashes and are never shown back.">
      <ErrorNote error={s.error} what="Opt-out list" />
      {s.loading && !s.data ? <Loading /> : null}
      {s.data ? (
        <div className="stats" data-testid="optout-stats">
          <Stat label="Patients on the list" value={fmtNum(s.data.count)} />
          <Stat label="Instances dropped" value={fmtNum(s.data.droppedInstances)} />
          <Stat label="Clinical records dropped" value={fmtNum(s.data.droppedClinical)} />
        </div>
      ) : null}
      <Notice text={msg} />
      <ErrorSummary errors={errors} labels={{ patientId: 'Patient identifier', issuer: 'Issuer', csv: 'CSV file', form: '' }} />
      <div className="grid-2">
        <Panel title="Add one patient">
          <form onSubmit={addOne} noValidate>
            <TextField label="Patient identifier" name="patientId" hint="As held in PACS, for example the NHS number." autoComplete="off" value={id} onChange={(e) => setId(e.target.value)} error={errors.patientId} />
            <TextField label="Issuer of the identifier (optional)" name="issuer" autoComplete="off" value={issuer} onChange={(e) => setIssuer(e.target.value)} error={errors.issuer} />
            <button className="btn" type="submit" disabled={busy}>Add to the opt-out list</button>
          </form>
        </Panel>
        <Panel title="Upload a CSV">
          <form onSubmit={upload} noValidate>
            <div className={`field${errors.csv ? ' field-invalid' : ''}`}>
              <label htmlFor="f-csv">CSV file</label>
              <p className="hint" id="f-csv-hint">One row per patient, with a <code>patientId</code> column and an optional <code>issuer</code> column. The file is read on the site node and not kept.</p>
              {errors.csv ? <p className="field-error" id="f-csv-error"><span className="sr-only">Error: </span>{errors.csv}</p> : null}
              <input id="f-csv" type="file" accept=".csv,text/csv" aria-describedby={`f-csv-hint${errors.csv ? ' f-csv-error' : ''}`} onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
            </div>
            <button className="btn" type="submit" disabled={busy}>Upload and apply</button>
          </form>
        </Panel>
      </div>
    </Page>
  );
}
