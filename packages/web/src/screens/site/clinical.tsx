import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError } from '../../api';
import { useAuth } from '../../auth';
import { useDraft } from '../../drafts';
import { useApi } from '../../hooks';
import { siteOrg } from '../../nav';
import { navigate, useLocation } from '../../router';
import { ErrorNote, ErrorSummary, Notice, Page, SelectField, TextField } from '../../components/ui';
import { LABELS, SECTIONS, fromRecord, toRecord, type FieldDef, type FormValues } from '../../clinical-fields';

interface Stored { id: string; pseudonym: string; kind: string; state: string; record: Record<string, unknown>; updatedAt: string }
interface FormState { values: FormValues; draftId: string | null }

const P = '/api/site/v1';
const EMPTY: FormState = { values: {}, draftId: null };

function Field({ f, value, error, onChange }: { f: FieldDef; value: string; error?: string | undefined; onChange: (v: string) => void }) {
  const hint = f.kind === 'number' && f.min !== undefined ? `From ${f.min} to ${f.max}${f.unit && f.unit !== 'fraction' ? ` ${f.unit}` : ''}` : undefined;
  if (f.kind === 'select' || f.kind === 'yesno') {
    const options = f.kind === 'yesno' ? [{ value: '', label: 'Not recorded' }, { value: 'yes', label: 'Yes' }, { value: 'no', label: 'No' }] : f.options!;
    return <SelectField label={f.label} name={f.path} value={value} error={error} options={options} onChange={(e) => onChange(e.target.value)} />;
  }
  return (
    <TextField label={f.label} name={f.path} unit={f.unit} hint={hint} value={value} error={error}
      type={f.kind === 'date' ? 'date' : 'text'} inputMode={f.kind === 'number' ? 'decimal' : undefined} autoComplete="off"
      onChange={(e) => onChange(e.target.value)} />
  );
}

/**
 * Enter or complete one patient's NCCID clinical record. The site validates
 * every save and answers with field-level messages. Unsaved values are kept
 * in this tab (see drafts.ts) so an expired session loses nothing.
 */
export function ClinicalForm(_props: { params: Record<string, string> }) {
  const { user } = useAuth();
  const { query } = useLocation();
  const from = query.get('from');
  const [state, setState, clearState, restored] = useDraft<FormState>(`clinical-form${from ? `:${from}` : ''}`, EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [msg, setMsg] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const status = useApi<{ site: string }>(`${P}/status`);
  const site = status.data?.site ?? siteOrg(user ?? null) ?? '';
  const fromDraft = useApi<Stored>(from && !restored ? `${P}/clinical/${encodeURIComponent(from)}` : null);

  useEffect(() => {
    if (fromDraft.data) setState({ values: fromRecord(fromDraft.data.record), draftId: fromDraft.data.id });
  }, [fromDraft.data]);

  const v = state.values;
  const set = (k: string, val: string) => setState((s) => ({ ...s, values: { ...s.values, [k]: val } }));
  const isData = v.swabStatus !== 'negative';

  const record = () => toRecord(v, site);
  const body = () => ({ record: record(), issuer: v.issuer?.trim() || null });
  const fail = (err: unknown) => {
    if (err instanceof ApiError && err.issues.length) {
      const fe = err.fieldErrors();
      setErrors(Object.fromEntries(Object.entries(fe).map(([k, m]) => [k.replace(/^(record|records\.\d+\.record)\./, ''), m])));
      setMsg(null);
    } else if (!(err instanceof ApiError && err.status === 401)) {
      setErrors({ form: (err as Error).message });
    }
  };

  const saveDraft = async () => {
    setBusy(true);
    setErrors({});
    try {
      const local: Record<string, string> = {};
      if (!v.patientId?.trim()) local.patientId = 'Enter the patient identifier to save a draft';
      if (Object.keys(local).length) return setErrors(local);
      const r = await api.post<{ id: string | null; droppedOptOut: number }>(`${P}/clinical/drafts`, body());
      if (r.droppedOptOut) setMsg('This patient is on the opt-out list: nothing was stored.');
      else {
        setState((s) => ({ ...s, draftId: r.id }));
        setMsg('Draft saved on the site. It is not sent to the hub until you submit it.');
      }
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const r = await api.post<{ stored: number; unchanged: number; droppedOptOut: number; ids: string[] }>(`${P}/clinical`, { records: [body()] });
      if (r.droppedOptOut) {
        clearState();
        setMsg('This patient is on the opt-out list: nothing was stored or sent.');
        return;
      }
      const id = r.ids[0];
      const saved = id ? await api.get<Stored>(`${P}/clinical/${encodeURIComponent(id)}`) : null;
      clearState();
      navigate(saved ? `/site/cases/${encodeURIComponent(saved.pseudonym)}?saved=1` : '/site/cases');
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Clinical data" intro="One patient's record in the NCCID template. The patient identifier is turned into the site's pseudonym on save and is never sent to the hub.">
      {restored ? <div className="note note-wait" role="status" data-testid="draft-restored">Your unsaved entries on this form were kept and are shown below.</div> : null}
      <ErrorNote error={fromDraft.error} />
      <Notice text={msg} />
      <ErrorSummary errors={errors} labels={LABELS} />
      <form onSubmit={submit} noValidate aria-label="Clinical record" className="clinical-form">
        <fieldset>
          <legend>Patient</legend>
          <div className="form-grid">
            <TextField label="Patient identifier" name="patientId" hint={state.draftId ? 'Enter it again to continue this draft: the site stores only the pseudonym.' : 'As held locally, for example the NHS number or MRN.'}
              autoComplete="off" value={v.patientId ?? ''} error={errors.patientId} onChange={(e) => set('patientId', e.target.value)} />
            <TextField label="Issuer of the identifier (optional)" name="issuer" autoComplete="off" value={v.issuer ?? ''} error={errors.issuer} onChange={(e) => set('issuer', e.target.value)} />
          </div>
        </fieldset>
        {SECTIONS.filter((s) => isData || !s.dataOnly).map((s) => (
          <fieldset key={s.title}>
            <legend>{s.title}</legend>
            <div className="form-grid">
              {s.fields.filter((f) => isData || !f.dataOnly).map((f) => <Field key={f.path} f={f} value={v[f.path] ?? ''} error={errors[f.path]} onChange={(val) => set(f.path, val)} />)}
            </div>
          </fieldset>
        ))}
        {!isData ? <p className="muted">A negative swab is recorded as a status record: only the swab fields apply.</p> : null}
        <div className="form-actions">
          <button className="btn" type="submit" disabled={busy}>Save and submit</button>
          <button className="btn btn-secondary" type="button" disabled={busy} onClick={() => void saveDraft()}>Save draft</button>
          <button className="btn btn-secondary" type="button" disabled={busy} onClick={() => { clearState(); setErrors({}); setMsg(null); }}>Clear form</button>
        </div>
      </form>
    </Page>
  );
}
