/**
 * The NCCID clinical record as the form shows it: labels, units and allowed
 * ranges. The site API's schema (GET /api/site/v1/clinical/schema) is the
 * authority and validates every save; these hints only help people type.
 */
export type FieldKind = 'text' | 'date' | 'number' | 'yesno' | 'select';
export interface FieldDef {
  path: string;
  label: string;
  kind: FieldKind;
  unit?: string;
  min?: number;
  max?: number;
  step?: string;
  options?: ReadonlyArray<{ value: string; label: string }>;
  /** Only in a data record (positive case). */
  dataOnly?: boolean;
}
export interface SectionDef { title: string; fields: FieldDef[]; dataOnly?: boolean }

export const ETHNICITY = [
  ['A', 'White British'], ['B', 'White Irish'], ['C', 'Any other White background'], ['D', 'White and Black Caribbean'], ['E', 'White and Black African'],
  ['F', 'White and Asian'], ['G', 'Any other mixed background'], ['H', 'Indian'], ['J', 'Pakistani'], ['K', 'Bangladeshi'], ['L', 'Any other Asian background'],
  ['M', 'Caribbean'], ['N', 'African'], ['P', 'Any other Black background'], ['R', 'Chinese'], ['S', 'Any other ethnic group'], ['Z', 'Not stated'],
].map(([value, label]) => ({ value: value!, label: `${value} – ${label}` }));

const num = (path: string, label: string, unit: string, min: number, max: number, step = 'any'): FieldDef => ({ path, label, kind: 'number', unit, min, max, step, dataOnly: true });
const yn = (path: string, label: string): FieldDef => ({ path, label, kind: 'yesno', dataOnly: true });
const date = (path: string, label: string, dataOnly = true): FieldDef => ({ path, label, kind: 'date', dataOnly });

export const SECTIONS: SectionDef[] = [
  {
    title: 'Swab',
    fields: [
      { path: 'swabStatus', label: 'Swab result', kind: 'select', options: [{ value: '', label: 'Choose…' }, { value: 'positive', label: 'Positive' }, { value: 'negative', label: 'Negative' }] },
      date('swabDate', 'Swab date', false),
      date('dateOfPositiveSwab', 'Date of positive swab'),
      date('dateOfLastNegativeSwab', 'Date of last negative swab'),
      date('dateOfResult', 'Date of result of first positive swab'),
      date('dateOfAdmission', 'Date of admission'),
    ],
  },
  {
    title: 'Patient characteristics', dataOnly: true,
    fields: [
      { path: 'age', label: 'Age', kind: 'number', unit: 'years', min: 0, max: 120, step: '1', dataOnly: true },
      { path: 'sex', label: 'Sex', kind: 'select', dataOnly: true, options: [{ value: '', label: 'Not recorded' }, { value: 'F', label: 'Female' }, { value: 'M', label: 'Male' }, { value: 'U', label: 'Unknown' }] },
      { path: 'ethnicity', label: 'Ethnicity (NHS code)', kind: 'select', dataOnly: true, options: [{ value: '', label: 'Not recorded' }, ...ETHNICITY] },
    ],
  },
  {
    title: 'Comorbidities', dataOnly: true,
    fields: [
      yn('comorbidities.hypertension', 'Hypertension'),
      yn('comorbidities.diabetesType2', 'Type 2 diabetes'),
      yn('comorbidities.ckd', 'Chronic kidney disease'),
      yn('comorbidities.cardiovascularDisease', 'Cardiovascular disease'),
      yn('comorbidities.lungDisease', 'Lung disease'),
      { path: 'comorbidities.smoking', label: 'Smoking', kind: 'select', dataOnly: true, options: [{ value: '', label: 'Not recorded' }, { value: 'never', label: 'Never' }, { value: 'former', label: 'Former' }, { value: 'current', label: 'Current' }] },
    ],
  },
  {
    title: 'Observations on admission', dataOnly: true,
    fields: [
      num('observations.temperature', 'Temperature', '°C', 30, 45),
      num('observations.respiratoryRate', 'Respiratory rate', 'breaths/min', 0, 80, '1'),
      num('observations.heartRate', 'Heart rate', 'beats/min', 0, 250, '1'),
      num('observations.systolicBp', 'Systolic blood pressure', 'mmHg', 40, 300, '1'),
      num('observations.diastolicBp', 'Diastolic blood pressure', 'mmHg', 20, 200, '1'),
      num('observations.o2Saturation', 'Oxygen saturation', '%', 50, 100),
      num('observations.fio2', 'FiO2', 'fraction', 0.21, 1),
      num('observations.news2', 'NEWS2 score', 'points', 0, 20, '1'),
      num('observations.lymphocytes', 'Lymphocytes', '×10⁹/L', 0, 1000),
      num('observations.crp', 'CRP', 'mg/L', 0, 10000),
      num('observations.dDimer', 'D-dimer', 'ng/mL FEU', 0, 1e6),
      num('observations.ferritin', 'Ferritin', 'µg/L', 0, 1e6),
    ],
  },
  {
    title: 'Outcomes', dataOnly: true,
    fields: [
      yn('outcomes.ituAdmission', 'Admitted to ITU'),
      date('outcomes.ituAdmissionDate', 'Date of ITU admission'),
      yn('outcomes.intubation', 'Intubated'),
      date('outcomes.intubationDate', 'Date of intubation'),
      yn('outcomes.death', 'Died'),
      date('outcomes.dateOfDeath', 'Date of death'),
      { path: 'cxrSeverity', label: 'Chest X-ray severity', kind: 'number', unit: '0–3', min: 0, max: 3, step: '1', dataOnly: true },
    ],
  },
];

export const ALL_FIELDS = SECTIONS.flatMap((s) => s.fields);
export const LABELS: Record<string, string> = { patientId: 'Patient identifier', issuer: 'Issuer', kind: 'Record kind', templateVersion: 'Template version', ...Object.fromEntries(ALL_FIELDS.map((f) => [f.path, f.label])) };

export type FormValues = Record<string, string>;

function setPath(o: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = o;
  for (let i = 0; i < parts.length - 1; i++) cur = (cur[parts[i]!] ??= {}) as Record<string, unknown>;
  cur[parts[parts.length - 1]!] = v;
}
export function getPath(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const p of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

/** Form strings → the record the API validates. Unparseable numbers are sent as typed so the server names the error. */
export function toRecord(v: FormValues, site: string): Record<string, unknown> {
  const kind = v.swabStatus === 'negative' ? 'status' : 'data';
  const rec: Record<string, unknown> = {
    kind, templateVersion: kind === 'data' ? 'nccid-data-v3' : 'nccid-status-v1', submittingSite: site, patientId: (v.patientId ?? '').trim(),
  };
  for (const f of ALL_FIELDS) {
    if (kind === 'status' && f.dataOnly) continue;
    const raw = (v[f.path] ?? '').trim();
    let val: unknown = raw === '' ? null : raw;
    if (f.kind === 'number' && raw !== '') val = Number.isFinite(Number(raw)) ? Number(raw) : raw;
    if (f.kind === 'yesno') val = raw === 'yes' ? true : raw === 'no' ? false : null;
    if (f.path === 'swabStatus' || f.path === 'swabDate') val = raw === '' ? undefined : raw;
    if (val !== undefined) setPath(rec, f.path, val);
  }
  return rec;
}

/** A stored record → form strings (the patient identifier is never in it: the site keeps only the pseudonym). */
export function fromRecord(r: Record<string, unknown>): FormValues {
  const out: FormValues = {};
  for (const f of ALL_FIELDS) {
    const v = getPath(r, f.path);
    if (v === null || v === undefined) continue;
    out[f.path] = f.kind === 'yesno' ? (v ? 'yes' : 'no') : String(v);
  }
  return out;
}

/** Share of the record's fields that are filled in (data records; a status record is complete by nature). */
export function completeness(r: Record<string, unknown>): number {
  if (r.kind === 'status') return 1;
  const fields = ALL_FIELDS.filter((f) => f.dataOnly || f.path === 'swabDate' || f.path === 'swabStatus');
  const filled = fields.filter((f) => {
    const v = getPath(r, f.path);
    return v !== null && v !== undefined && v !== '';
  }).length;
  return filled / fields.length;
}
