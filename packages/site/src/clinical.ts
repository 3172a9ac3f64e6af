import { z } from 'zod';
import { newId, unprocessable, type FieldIssue } from '@imago/core';
import { canonicalSha256 } from './canonical.js';

/**
 * The site's authoritative NCCID clinical schema (versioned). It mirrors
 * `@imago/synth`'s NccidClinicalRecordSchema field for field, so records the
 * generator writes validate here and records the site uploads validate at the
 * hub. Input carries the patient's local ID (+ issuer); the stored and
 * uploaded record carries the pseudonym in `patientId` instead.
 */
export const CLINICAL_SCHEMA_VERSION = 'imago-site-clinical-1';
export const TEMPLATE_VERSIONS = { data: ['nccid-data-v3'], status: ['nccid-status-v1'] } as const;

export const ETHNIC_CODES = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'M', 'N', 'P', 'R', 'S', 'Z'] as const;

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date written YYYY-MM-DD').refine((s) => !Number.isNaN(Date.parse(s)) && new Date(s).toISOString().startsWith(s), 'is not a real calendar date');
const yesNo = z.boolean().nullable();
const num = (min: number, max: number, unit: string) => z.number().min(min, `must be at least ${min} ${unit}`.trim()).max(max, `must be at most ${max} ${unit}`.trim()).nullable();
const int = (min: number, max: number, unit: string) => z.number().int('must be a whole number').min(min, `must be at least ${min} ${unit}`.trim()).max(max, `must be at most ${max} ${unit}`.trim()).nullable();

export const ComorbiditiesSchema = z.object({
  hypertension: yesNo,
  diabetesType2: yesNo,
  ckd: yesNo,
  cardiovascularDisease: yesNo,
  lungDisease: yesNo,
  smoking: z.enum(['never', 'former', 'current']).nullable(),
});

export const ObservationsSchema = z.object({
  temperature: num(30, 45, '°C'),
  respiratoryRate: int(0, 80, 'breaths/min'),
  heartRate: int(0, 250, 'beats/min'),
  systolicBp: int(40, 300, 'mmHg'),
  diastolicBp: int(20, 200, 'mmHg'),
  o2Saturation: num(50, 100, '%'),
  fio2: num(0.21, 1, '(fraction)'),
  news2: int(0, 20, ''),
  lymphocytes: num(0, 1000, '×10^9/L'),
  crp: num(0, 10000, 'mg/L'),
  dDimer: num(0, 1e6, 'ng/mL FEU'),
  ferritin: num(0, 1e6, 'µg/L'),
});

export const OutcomesSchema = z.object({
  ituAdmission: yesNo,
  ituAdmissionDate: isoDate.nullable(),
  intubation: yesNo,
  intubationDate: isoDate.nullable(),
  death: yesNo,
  dateOfDeath: isoDate.nullable(),
});

const common = {
  templateVersion: z.string().min(1, 'is required'),
  submittingSite: z.string().min(1, 'is required'),
  patientId: z.string().trim().min(1, 'is required'),
  swabDate: isoDate,
};

export const StatusRecordSchema = z.object({
  kind: z.literal('status'),
  ...common,
  swabStatus: z.enum(['positive', 'negative']),
});

export const DataRecordSchema = z.object({
  kind: z.literal('data'),
  ...common,
  swabStatus: z.literal('positive', 'must be positive for a data record (use a status record for negative cases)'),
  dateOfPositiveSwab: isoDate.nullable(),
  dateOfLastNegativeSwab: isoDate.nullable(),
  dateOfResult: isoDate.nullable(),
  dateOfAdmission: isoDate.nullable(),
  age: int(0, 120, 'years'),
  sex: z.enum(['M', 'F', 'U']).nullable(),
  ethnicity: z.enum(ETHNIC_CODES).nullable(),
  comorbidities: ComorbiditiesSchema,
  observations: ObservationsSchema,
  outcomes: OutcomesSchema,
  cxrSeverity: int(0, 3, ''),
}).superRefine((r, ctx) => {
  const pairs: Array<[keyof typeof r.outcomes, keyof typeof r.outcomes]> = [['ituAdmission', 'ituAdmissionDate'], ['intubation', 'intubationDate'], ['death', 'dateOfDeath']];
  for (const [flag, date] of pairs) {
    if (r.outcomes[date] && r.outcomes[flag] === false) ctx.addIssue({ code: 'custom', path: ['outcomes', date], message: `is given but ${flag} is "no"` });
  }
  const bp = r.observations;
  if (bp.systolicBp !== null && bp.diastolicBp !== null && bp.diastolicBp >= bp.systolicBp) ctx.addIssue({ code: 'custom', path: ['observations', 'diastolicBp'], message: 'must be lower than the systolic blood pressure' });
});

export const ClinicalRecordSchema = z.discriminatedUnion('kind', [DataRecordSchema, StatusRecordSchema]);
export type ClinicalRecord = z.infer<typeof ClinicalRecordSchema>;
export type DataRecord = z.infer<typeof DataRecordSchema>;

/** What the API, CSV and FHIR imports accept: a record plus the issuer of its patient ID. */
export interface ClinicalInput {
  record: unknown;
  issuer?: string | null;
}

const WORDS: Record<string, string> = { number: 'a number', boolean: 'yes or no', string: 'text', object: 'a group of fields', array: 'a list' };

/** Turn zod issues into plain-words field errors. */
export function plainIssues(err: z.ZodError, prefix = ''): FieldIssue[] {
  return err.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    let message = i.message;
    const iss = i as unknown as { code: string; expected?: string; input?: unknown; values?: unknown[]; options?: unknown[] };
    if (iss.code === 'invalid_type') message = iss.input === undefined ? 'is required' : `must be ${WORDS[iss.expected ?? ''] ?? iss.expected}${iss.expected === 'number' || iss.expected === 'boolean' ? ' or left empty' : ''}`;
    else if (iss.code === 'invalid_value' && iss.values && !/must/.test(message)) message = `must be one of: ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
    else if (iss.code === 'invalid_union') message = 'kind must be "data" (positive case) or "status" (negative case)';
    return { path: path || '(record)', message };
  });
}

/** Validate one record (full or draft) and return it or field-level errors. */
export function validateClinical(record: unknown, opts: { draft?: boolean; prefix?: string } = {}): { ok: true; record: ClinicalRecord } | { ok: false; issues: FieldIssue[] } {
  const r = ClinicalRecordSchema.safeParse(record);
  if (r.success) {
    const allowed = TEMPLATE_VERSIONS[r.data.kind] as readonly string[];
    if (!allowed.includes(r.data.templateVersion)) return { ok: false, issues: [{ path: [opts.prefix, 'templateVersion'].filter(Boolean).join('.'), message: `must be one of: ${allowed.join(', ')}` }] };
    return { ok: true, record: r.data };
  }
  return { ok: false, issues: plainIssues(r.error, opts.prefix) };
}

/** A draft needs only a patient ID and kind; the rest is checked on submit. */
export const DraftSchema = z.object({ kind: z.enum(['data', 'status']), patientId: z.string().trim().min(1, 'is required') }).loose();

/** The record as stored and uploaded: patientId replaced by the pseudonym. */
export function pseudonymise(record: Record<string, unknown>, pseudonym: string): Record<string, unknown> {
  return { ...record, patientId: pseudonym };
}

export function recordSha256(record: unknown): string {
  return canonicalSha256(record);
}

// ------------------------------------------------------------------ CSV

/** CSV columns: [dotted path, snake header, NCCID-style header]. Matches @imago/synth's CSV_COLUMNS. */
export const CSV_COLUMNS: Array<[string, string, string]> = [
  ['submittingSite', 'submitting_site', 'SubmittingCentre'],
  ['patientId', 'patient_id', 'PatientID'],
  ['issuer', 'patient_id_issuer', 'IssuerOfPatientID'],
  ['templateVersion', 'template_version', 'TemplateVersion'],
  ['swabStatus', 'swab_status', 'SwabStatus'],
  ['swabDate', 'swab_date', 'SwabDate'],
  ['dateOfPositiveSwab', 'date_positive_swab', 'Date of Positive Covid Swab'],
  ['dateOfLastNegativeSwab', 'date_last_negative_swab', 'Date of last negative Covid Swab'],
  ['dateOfResult', 'date_result', 'Date of result of 1st positive Covid Swab'],
  ['dateOfAdmission', 'date_admission', 'Date of admission'],
  ['age', 'age', 'Age'],
  ['sex', 'sex', 'Sex'],
  ['ethnicity', 'ethnicity', 'Ethnicity'],
  ['comorbidities.hypertension', 'pmh_hypertension', 'PMH hypertension'],
  ['comorbidities.diabetesType2', 'pmh_diabetes_t2', 'PMH diabetes mellitus type II'],
  ['comorbidities.ckd', 'pmh_ckd', 'PMH CKD'],
  ['comorbidities.cardiovascularDisease', 'pmh_cvs', 'PMH CVS disease'],
  ['comorbidities.lungDisease', 'pmh_lung', 'PMH Lung disease'],
  ['comorbidities.smoking', 'smoking', 'Smoking status'],
  ['observations.temperature', 'temperature', 'Temperature on admission'],
  ['observations.respiratoryRate', 'resp_rate', 'Respiratory rate on admission'],
  ['observations.heartRate', 'heart_rate', 'Heart rate on admission'],
  ['observations.systolicBp', 'systolic_bp', 'Systolic BP'],
  ['observations.diastolicBp', 'diastolic_bp', 'Diastolic BP'],
  ['observations.o2Saturation', 'o2_sat', 'O2 saturation'],
  ['observations.fio2', 'fio2', 'FiO2'],
  ['observations.news2', 'news2', 'NEWS2 score on arrival'],
  ['observations.lymphocytes', 'lymphocytes', 'Lymphocyte count on admission'],
  ['observations.crp', 'crp', 'CRP on admission'],
  ['observations.dDimer', 'd_dimer', 'D-dimer on admission'],
  ['observations.ferritin', 'ferritin', 'Ferritin on admission'],
  ['outcomes.ituAdmission', 'itu_admission', 'ITU admission'],
  ['outcomes.ituAdmissionDate', 'itu_date', 'Date of ITU admission'],
  ['outcomes.intubation', 'intubation', 'Intubation'],
  ['outcomes.intubationDate', 'intubation_date', 'Date of intubation'],
  ['outcomes.death', 'death', 'Death'],
  ['outcomes.dateOfDeath', 'death_date', 'Date of death'],
  ['cxrSeverity', 'cxr_severity', 'CXR severity'],
];

const BOOL_PATHS = new Set(['comorbidities.hypertension', 'comorbidities.diabetesType2', 'comorbidities.ckd', 'comorbidities.cardiovascularDisease', 'comorbidities.lungDisease', 'outcomes.ituAdmission', 'outcomes.intubation', 'outcomes.death']);
const NUM_PATHS = new Set(['age', 'cxrSeverity', ...CSV_COLUMNS.filter(([p]) => p.startsWith('observations.')).map(([p]) => p)]);
const STATUS_PATHS = new Set(['submittingSite', 'patientId', 'issuer', 'templateVersion', 'swabStatus', 'swabDate']);

/** The downloadable CSV template: header row plus one example row of each kind. */
export function csvTemplate(site: string): string {
  const head = CSV_COLUMNS.map((c) => c[1]).join(',');
  const ex1 = CSV_COLUMNS.map(([p]) => ({ submittingSite: site, patientId: '9434765919', issuer: '', templateVersion: 'nccid-data-v3', swabStatus: 'positive', swabDate: '2020-04-01', age: '67', sex: 'F', ethnicity: 'A', 'comorbidities.hypertension': 'yes', 'observations.temperature': '38.2', 'outcomes.death': 'no' } as Record<string, string>)[p] ?? '').join(',');
  const ex2 = CSV_COLUMNS.map(([p]) => ({ submittingSite: site, patientId: 'MRN123456', issuer: site, templateVersion: 'nccid-status-v1', swabStatus: 'negative', swabDate: '2020-04-02' } as Record<string, string>)[p] ?? '').join(',');
  return `${head}\r\n${ex1}\r\n${ex2}\r\n`;
}

/** RFC 4180 CSV parsing (quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let q = false;
  const s = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i++;
        } else q = false;
      } else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.some((x) => x.trim() !== '')) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((x) => x.trim() !== '')) rows.push(row);
  return rows;
}

function setPath(o: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = o;
  for (let i = 0; i < parts.length - 1; i++) cur = (cur[parts[i]!] ??= {}) as Record<string, unknown>;
  cur[parts[parts.length - 1]!] = v;
}

function cellValue(path: string, raw: string): unknown {
  const t = raw.trim();
  if (t === '' || /^(n\/?a|unknown|null)$/i.test(t)) return null;
  if (BOOL_PATHS.has(path)) {
    if (/^(yes|y|true|1)$/i.test(t)) return true;
    if (/^(no|n|false|0)$/i.test(t)) return false;
    return t; // reported as "must be yes or no"
  }
  if (NUM_PATHS.has(path)) {
    const n = Number(t);
    return Number.isFinite(n) ? n : t;
  }
  if (/date/i.test(path) || path === 'swabDate') {
    const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(t);
    if (m) return `${m[3]}-${m[2]!.padStart(2, '0')}-${m[1]!.padStart(2, '0')}`;
  }
  if (path === 'swabStatus') return t.toLowerCase();
  if (path === 'comorbidities.smoking') return t.toLowerCase().replace(/^ex-?smoker$/, 'former');
  if (path === 'sex') return t.toUpperCase().slice(0, 1);
  return t;
}

/**
 * Parse a clinical CSV (one row per patient) into validated inputs. Any bad
 * row makes the whole file fail with field-level errors named by row.
 */
export function clinicalFromCsv(text: string, defaults: { site: string }): Array<{ record: ClinicalRecord; issuer: string | null }> {
  const rows = parseCsv(text);
  if (rows.length < 2) throw unprocessable('the CSV has no data rows', { issues: [{ path: 'file', message: 'needs a header row and at least one data row' }] });
  const header = rows[0]!.map((h) => h.trim());
  const colPath = header.map((h) => CSV_COLUMNS.find((c) => c[1].toLowerCase() === h.toLowerCase() || c[2].toLowerCase() === h.toLowerCase())?.[0] ?? null);
  const issues: FieldIssue[] = [];
  header.forEach((h, i) => {
    if (!colPath[i]) issues.push({ path: `header.${h}`, message: 'is not a column of the clinical template' });
  });
  if (!colPath.includes('patientId')) issues.push({ path: 'header', message: 'needs a patient_id column' });
  if (issues.length) throw unprocessable('the CSV header does not match the template', { issues });
  const out: Array<{ record: ClinicalRecord; issuer: string | null }> = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    const flat: Record<string, unknown> = {};
    colPath.forEach((p, i) => {
      if (p) flat[p] = cellValue(p, row[i] ?? '');
    });
    const positive = flat.swabStatus === 'positive';
    const kind = typeof flat.templateVersion === 'string' ? (String(flat.templateVersion).startsWith('nccid-status') ? 'status' : 'data') : positive ? 'data' : 'status';
    const rec: Record<string, unknown> = { kind, submittingSite: flat.submittingSite ?? defaults.site, templateVersion: flat.templateVersion ?? TEMPLATE_VERSIONS[kind][0] };
    for (const [p] of CSV_COLUMNS) {
      if (p === 'issuer' || p === 'submittingSite' || p === 'templateVersion') continue;
      if (kind === 'status' && !STATUS_PATHS.has(p)) continue;
      setPath(rec, p, p in flat ? flat[p] : null);
    }
    if (kind === 'status' && rec.patientId === null) rec.patientId = '';
    if (kind === 'data' && rec.patientId === null) rec.patientId = '';
    const v = validateClinical(rec, { prefix: `row ${r + 1}` });
    if (!v.ok) issues.push(...v.issues);
    else out.push({ record: v.record, issuer: typeof flat.issuer === 'string' ? flat.issuer : null });
  }
  if (issues.length) throw unprocessable(`the CSV has ${issues.length} error(s); nothing was stored`, { issues });
  return out;
}

// ------------------------------------------------------------------ FHIR R4

const LOINC_TO_FIELD: Record<string, keyof DataRecord['observations']> = {
  '8310-5': 'temperature', '9279-1': 'respiratoryRate', '8867-4': 'heartRate', '8480-6': 'systolicBp', '8462-4': 'diastolicBp',
  '59408-5': 'o2Saturation', '2708-6': 'o2Saturation', '3150-0': 'fio2', '1104051000000101': 'news2', '731-0': 'lymphocytes', '1988-5': 'crp',
  '48065-7': 'dDimer', '2276-4': 'ferritin',
};
const SNOMED_TO_COMORBIDITY: Record<string, keyof DataRecord['comorbidities']> = {
  '38341003': 'hypertension', '44054006': 'diabetesType2', '709044004': 'ckd', '49601007': 'cardiovascularDisease', '19829001': 'lungDisease',
};
const SMOKING_SNOMED: Record<string, 'never' | 'former' | 'current'> = { '266919005': 'never', '8517006': 'former', '77176002': 'current' };
const PCR_LOINC = new Set(['94500-6', '94309-2', '94531-1']);
const POSITIVE_SNOMED = new Set(['10828004', '260373001']);

type Res = Record<string, unknown> & { resourceType: string; id?: string };
type Coding = { system?: string; code?: string };

const codings = (cc: unknown): Coding[] => ((cc as { coding?: Coding[] } | undefined)?.coding ?? []);
const dateOnly = (s: unknown): string | null => (typeof s === 'string' && /^\d{4}-\d{2}-\d{2}/.test(s) ? s.slice(0, 10) : null);

function ageAt(birth: string, at: string): number {
  const b = new Date(birth);
  const a = new Date(at);
  let age = a.getUTCFullYear() - b.getUTCFullYear();
  if (a.getUTCMonth() < b.getUTCMonth() || (a.getUTCMonth() === b.getUTCMonth() && a.getUTCDate() < b.getUTCDate())) age--;
  return age;
}

/**
 * Map a FHIR R4 Bundle (Patient, Observation with LOINC, Condition with
 * SNOMED CT, Encounter, Procedure) onto clinical records, one per Patient.
 * Errors name the Patient and field; nothing is returned if any fails.
 */
export function clinicalFromFhir(bundle: unknown, defaults: { site: string }): Array<{ record: ClinicalRecord; issuer: string | null }> {
  const b = bundle as { resourceType?: string; entry?: Array<{ resource?: Res }>; meta?: { tag?: Coding[] } };
  if (!b || b.resourceType !== 'Bundle' || !Array.isArray(b.entry)) throw unprocessable('not a FHIR R4 Bundle', { issues: [{ path: 'resourceType', message: 'must be "Bundle" with an entry list' }] });
  const resources = b.entry.map((e) => e.resource).filter((r): r is Res => !!r && typeof r.resourceType === 'string');
  const tagVersion = b.meta?.tag?.find((t) => t.system === 'urn:imago:nccid-template')?.code;
  const patients = resources.filter((r) => r.resourceType === 'Patient');
  if (!patients.length) throw unprocessable('the Bundle has no Patient', { issues: [{ path: 'entry', message: 'needs at least one Patient resource' }] });
  const issues: FieldIssue[] = [];
  const out: Array<{ record: ClinicalRecord; issuer: string | null }> = [];
  for (const p of patients) {
    const ref = `Patient/${p.id}`;
    const about = resources.filter((r) => (r.subject as { reference?: string } | undefined)?.reference === ref || (r.subject as { reference?: string } | undefined)?.reference?.endsWith(`/${ref}`));
    const ids = (p.identifier as Array<{ system?: string; value?: string }> | undefined) ?? [];
    const nhs = ids.find((i) => i.system === 'https://fhir.nhs.uk/Id/nhs-number');
    const chosen = nhs ?? ids[0];
    const issuer = nhs ? null : chosen?.system ?? null;
    const site = (p.managingOrganization as { identifier?: { value?: string } } | undefined)?.identifier?.value ?? defaults.site;
    let swabStatus: 'positive' | 'negative' | null = null;
    let swabDate: string | null = null;
    const obs: Record<string, number | null> = {};
    let smoking: 'never' | 'former' | 'current' | null = null;
    let cxr: number | null = null;
    const comorb: Record<string, boolean | null> = { hypertension: null, diabetesType2: null, ckd: null, cardiovascularDisease: null, lungDisease: null };
    let admission: string | null = null;
    let itu: { date: string | null } | null = null;
    let intub: { date: string | null } | null = null;
    for (const r of about) {
      if (r.resourceType === 'Observation') {
        for (const c of codings(r.code)) {
          if (c.system === 'http://loinc.org' && c.code && PCR_LOINC.has(c.code)) {
            const v = codings(r.valueCodeableConcept)[0]?.code;
            swabStatus = v && POSITIVE_SNOMED.has(v) ? 'positive' : 'negative';
            swabDate = dateOnly(r.effectiveDateTime);
          } else if (c.code && LOINC_TO_FIELD[c.code] && (c.system === 'http://loinc.org' || c.system === 'http://snomed.info/sct')) {
            const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
            obs[LOINC_TO_FIELD[c.code]!] = typeof v === 'number' ? v : null;
          } else if (c.system === 'http://loinc.org' && c.code === '72166-2') {
            smoking = SMOKING_SNOMED[codings(r.valueCodeableConcept)[0]?.code ?? ''] ?? null;
          } else if (c.code === 'cxr-severity') {
            cxr = typeof r.valueInteger === 'number' ? r.valueInteger : null;
          }
        }
      } else if (r.resourceType === 'Condition') {
        for (const c of codings(r.code)) if (c.system === 'http://snomed.info/sct' && c.code && SNOMED_TO_COMORBIDITY[c.code]) comorb[SNOMED_TO_COMORBIDITY[c.code]!] = true;
      } else if (r.resourceType === 'Encounter') {
        const start = dateOnly((r.period as { start?: string } | undefined)?.start);
        const isItu = (r.type as unknown[] | undefined)?.some((t) => codings(t).some((c) => c.code === '309904001'));
        if (isItu) itu = { date: start };
        else if ((r.class as Coding | undefined)?.code === 'IMP') admission = start;
      } else if (r.resourceType === 'Procedure') {
        if (codings(r.code).some((c) => c.code === '112798008')) intub = { date: dateOnly(r.performedDateTime) };
      }
    }
    const eth = ((p.extension as Array<{ url?: string; valueCodeableConcept?: unknown }> | undefined) ?? []).find((e) => /EthnicCategory/i.test(e.url ?? ''));
    const ethnicity = codings(eth?.valueCodeableConcept)[0]?.code ?? null;
    const gender = p.gender === 'female' ? 'F' : p.gender === 'male' ? 'M' : p.gender ? 'U' : null;
    const deathDate = dateOnly(p.deceasedDateTime);
    const died = p.deceasedBoolean === true || !!deathDate;
    const kind = swabStatus === 'positive' ? 'data' : 'status';
    const base = { kind, templateVersion: tagVersion && (TEMPLATE_VERSIONS[kind] as readonly string[]).includes(tagVersion) ? tagVersion : TEMPLATE_VERSIONS[kind][0], submittingSite: site, patientId: chosen?.value ?? '', swabStatus: swabStatus ?? '', swabDate: swabDate ?? '' };
    const rec = kind === 'status' ? base : {
      ...base,
      dateOfPositiveSwab: swabDate, dateOfLastNegativeSwab: null, dateOfResult: null, dateOfAdmission: admission,
      age: typeof p.birthDate === 'string' && swabDate ? ageAt(p.birthDate, swabDate) : null,
      sex: gender, ethnicity,
      comorbidities: { ...comorb, smoking },
      observations: Object.fromEntries(Object.keys(ObservationsSchema.shape).map((k) => [k, obs[k] ?? null])),
      outcomes: { ituAdmission: itu ? true : null, ituAdmissionDate: (itu as { date: string | null } | null)?.date ?? null, intubation: intub ? true : null, intubationDate: (intub as { date: string | null } | null)?.date ?? null, death: died ? true : null, dateOfDeath: deathDate },
      cxrSeverity: cxr,
    };
    const v = validateClinical(rec, { prefix: ref });
    if (!v.ok) issues.push(...v.issues);
    else out.push({ record: v.record, issuer });
  }
  if (issues.length) throw unprocessable(`the Bundle has ${issues.length} error(s); nothing was stored`, { issues });
  return out;
}

export function newClinicalId(): string {
  return newId();
}
