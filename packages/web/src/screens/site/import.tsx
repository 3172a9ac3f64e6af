import { useMemo, useState } from 'react';
import { api, ApiError, errorText } from '../../api';
import { LABELS } from '../../clinical-fields';
import { Notice, Page, Panel } from '../../components/ui';

const P = '/api/site/v1';

/** RFC 4180 CSV for the preview (the site parses the file again, authoritatively). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let q = false;
  const s = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === '"' && s[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.some((x) => x.trim())) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((x) => x.trim())) rows.push(row);
  return rows;
}

interface Issue { path: string; message: string }
interface Result { stored: number; unchanged: number; droppedOptOut: number }

/** Group issues by the row (CSV line) or resource they name. */
function byRow(issues: Issue[]): Map<string, Issue[]> {
  const m = new Map<string, Issue[]>();
  for (const i of issues) {
    const r = /^row (\d+)\.?(.*)$/.exec(i.path);
    const key = r ? `Row ${r[1]}` : i.path.split('.')[0] ?? i.path;
    const field = r ? r[2]! : i.path.split('.').slice(1).join('.');
    m.set(key, [...(m.get(key) ?? []), { path: field, message: i.message }]);
  }
  return m;
}

export function ClinicalImport(_props: { params: Record<string, string> }) {
  const [format, setFormat] = useState<'csv' | 'fhir'>('csv');
  const [file, setFile] = useState<{ name: string; text: string } | null>(null);
  const [issues, setIssues] = useState<Issue[] | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const preview = useMemo(() => {
    if (!file) return null;
    if (format === 'csv') {
      const rows = parseCsv(file.text);
      return { kind: 'csv' as const, header: rows[0] ?? [], rows: rows.slice(1) };
    }
    try {
      const b = JSON.parse(file.text) as { resourceType?: string; entry?: Array<{ resource?: { resourceType?: string } }> };
      const counts: Record<string, number> = {};
      for (const e of b.entry ?? []) counts[e.resource?.resourceType ?? 'unknown'] = (counts[e.resource?.resourceType ?? 'unknown'] ?? 0) + 1;
      return { kind: 'fhir' as const, type: b.resourceType ?? 'unknown', counts };
    } catch {
      return { kind: 'fhir' as const, type: 'not JSON', counts: {} as Record<string, number> };
    }
  }, [file, format]);
  const rowErrors = useMemo(() => (issues ? byRow(issues) : null), [issues]);

  const choose = async (f: File | undefined) => {
    setIssues(null);
    setResult(null);
    setError(null);
    setFile(f ? { name: f.name, text: await f.text() } : null);
  };

  const commit = async () => {
    if (!file) return;
    setBusy(true);
    setIssues(null);
    setResult(null);
    setError(null);
    try {
      const r = await api.post<Result>(`${P}/clinical/import/${format}`, undefined, { raw: { body: file.text, contentType: format === 'csv' ? 'text/csv' : 'application/fhir+json' } });
      setResult(r);
    } catch (e) {
      if (e instanceof ApiError && e.issues.length) setIssues(e.issues);
      else setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Clinical import" intro="Import many patients' clinical data at once from the NCCID CSV template or a FHIR R4 Bundle. The site checks every row first and stores nothing unless every row is valid.">
      <Panel title="1. Choose a file">
        <fieldset>
          <legend>Format</legend>
          <div className="checkbox"><input type="radio" id="fmt-csv" name="format" checked={format === 'csv'} onChange={() => { setFormat('csv'); void choose(undefined); }} /><label htmlFor="fmt-csv">CSV (NCCID template)</label></div>
          <div className="checkbox"><input type="radio" id="fmt-fhir" name="format" checked={format === 'fhir'} onChange={() => { setFormat('fhir'); void choose(undefined); }} /><label htmlFor="fmt-fhir">FHIR R4 Bundle (JSON)</label></div>
        </fieldset>
        <div className="field">
          <label htmlFor="f-import-file">{format === 'csv' ? 'CSV file' : 'FHIR Bundle file'}</label>
          {format === 'csv' ? <p className="hint" id="f-import-hint">One row per patient. <a href={`${P}/clinical/template.csv`} download>Download the CSV template</a>.</p> : <p className="hint" id="f-import-hint">Patient, Observation (LOINC), Condition (SNOMED CT), Encounter and Procedure resources.</p>}
          <input key={format} id="f-import-file" type="file" accept={format === 'csv' ? '.csv,text/csv' : '.json,application/json,application/fhir+json'} aria-describedby="f-import-hint" onChange={(e) => void choose(e.target.files?.[0])} />
        </div>
      </Panel>

      {preview ? (
        <Panel title={`2. Preview: ${file?.name}`}>
          {preview.kind === 'csv' ? (
            <>
              <p>{preview.rows.length} data row(s), {preview.header.length} column(s).{rowErrors ? ` ${rowErrors.size} row(s) have errors, marked below.` : ''}</p>
              <div className="table-wrap" tabIndex={0} role="group" aria-label="Rows in the file" style={{ maxHeight: 360, overflow: 'auto' }}>
                <table className="table" data-testid="import-preview">
                  <caption className="sr-only">Rows in the file</caption>
                  <thead><tr><th scope="col">Row</th><th scope="col">Check</th>{preview.header.map((h, i) => <th scope="col" key={i}>{h}</th>)}</tr></thead>
                  <tbody>{preview.rows.slice(0, 200).map((r, i) => {
                    const errs = rowErrors?.get(`Row ${i + 2}`);
                    return (
                      <tr key={i} data-row={i + 2} className={errs ? 'row-error' : undefined}>
                        <th scope="row">{i + 2}</th>
                        <td>{errs ? <span className="badge badge-error">{errs.length} error(s)</span> : issues ? <span className="badge badge-ok">ok</span> : ''}</td>
                        {preview.header.map((_, j) => <td key={j}>{r[j] ?? ''}</td>)}
                      </tr>
                    );
                  })}</tbody>
                </table>
              </div>
            </>
          ) : (
            <dl className="kv"><dt>Resource</dt><dd>{preview.type}</dd>{Object.entries(preview.counts).map(([k, v]) => <div key={k} style={{ display: 'contents' }}><dt>{k}</dt><dd>{v}</dd></div>)}</dl>
          )}
          <div className="form-actions"><button type="button" className="btn" disabled={busy} onClick={() => void commit()}>{busy ? 'Checking…' : 'Check and import'}</button></div>
        </Panel>
      ) : null}

      {rowErrors ? (
        <div className="error-summary" role="alert" tabIndex={-1} data-testid="import-errors" ref={(el) => el?.focus()}>
          <h2>Nothing was imported: {issues!.length} error(s) in {rowErrors.size} row(s)</h2>
          <p>Correct these rows in the file and import it again.</p>
          <ul>
            {[...rowErrors.entries()].map(([row, errs]) => (
              <li key={row}><strong>{row}</strong>: {errs.map((e) => `${LABELS[e.path] ?? e.path} ${e.message}`).join('; ')}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <Notice text={error} kind="error" />
      {result ? (
        <div className="note note-ok" role="status" data-testid="import-result">
          Imported: {result.stored} record(s) stored, {result.unchanged} unchanged, {result.droppedOptOut} dropped because the patient opted out.
        </div>
      ) : null}
    </Page>
  );
}
