import { z } from 'zod';
import { ETHNIC_CATEGORIES, type CsvTemplate, type EthnicCode, type SiteProfile } from './sites.js';
import type { PatientPlan } from './model.js';
import { rngFor } from './prng.js';

/**
 * NCCID clinical data. COVID-positive patients get a `data` record (the full
 * clinical template); negative patients get a `status` record (swab status
 * only), as in the NCCID. `patientId` is the site's identifier before
 * pseudonymisation; the site node replaces it.
 */

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD');
const ethnicCodes = Object.keys(ETHNIC_CATEGORIES) as [EthnicCode, ...EthnicCode[]];

export const NCCID_TEMPLATE_VERSIONS = { data: 'nccid-data-v3', status: 'nccid-status-v1' } as const;

export const NccidStatusRecordSchema = z.object({
  kind: z.literal('status'),
  templateVersion: z.string().min(1),
  submittingSite: z.string().min(1),
  patientId: z.string().min(1),
  swabStatus: z.enum(['positive', 'negative']),
  swabDate: isoDate,
});

export const NccidComorbiditiesSchema = z.object({
  hypertension: z.boolean().nullable(),
  diabetesType2: z.boolean().nullable(),
  ckd: z.boolean().nullable(),
  cardiovascularDisease: z.boolean().nullable(),
  lungDisease: z.boolean().nullable(),
  smoking: z.enum(['never', 'former', 'current']).nullable(),
});

export const NccidObservationsSchema = z.object({
  temperature: z.number().min(30).max(45).nullable(),
  respiratoryRate: z.number().int().min(0).max(80).nullable(),
  heartRate: z.number().int().min(0).max(250).nullable(),
  systolicBp: z.number().int().min(40).max(300).nullable(),
  diastolicBp: z.number().int().min(20).max(200).nullable(),
  o2Saturation: z.number().min(50).max(100).nullable(),
  fio2: z.number().min(0.21).max(1).nullable(),
  news2: z.number().int().min(0).max(20).nullable(),
  /** 10^9/L */
  lymphocytes: z.number().min(0).nullable(),
  /** mg/L */
  crp: z.number().min(0).nullable(),
  /** ng/mL FEU */
  dDimer: z.number().min(0).nullable(),
  /** ug/L */
  ferritin: z.number().min(0).nullable(),
});

export const NccidOutcomesSchema = z.object({
  ituAdmission: z.boolean().nullable(),
  ituAdmissionDate: isoDate.nullable(),
  intubation: z.boolean().nullable(),
  intubationDate: isoDate.nullable(),
  death: z.boolean().nullable(),
  dateOfDeath: isoDate.nullable(),
});

export const NccidDataRecordSchema = z.object({
  kind: z.literal('data'),
  templateVersion: z.string().min(1),
  submittingSite: z.string().min(1),
  patientId: z.string().min(1),
  swabStatus: z.literal('positive'),
  swabDate: isoDate,
  dateOfPositiveSwab: isoDate.nullable(),
  dateOfLastNegativeSwab: isoDate.nullable(),
  dateOfResult: isoDate.nullable(),
  dateOfAdmission: isoDate.nullable(),
  age: z.number().int().min(0).max(120).nullable(),
  sex: z.enum(['M', 'F', 'U']).nullable(),
  ethnicity: z.enum(ethnicCodes).nullable(),
  comorbidities: NccidComorbiditiesSchema,
  observations: NccidObservationsSchema,
  outcomes: NccidOutcomesSchema,
  /** Radiologist-reported CXR severity: 0 normal, 1 mild, 2 moderate, 3 severe. */
  cxrSeverity: z.number().int().min(0).max(3).nullable(),
});

export const NccidClinicalRecordSchema = z.discriminatedUnion('kind', [NccidDataRecordSchema, NccidStatusRecordSchema]);
export type NccidClinicalRecord = z.infer<typeof NccidClinicalRecordSchema>;
export type NccidDataRecord = z.infer<typeof NccidDataRecordSchema>;
export type NccidStatusRecord = z.infer<typeof NccidStatusRecordSchema>;

/** Field-specific extra missingness on top of the site's base rate. */
const EXTRA_MISSING: Record<string, number> = { dDimer: 0.25, ferritin: 0.2, lymphocytes: 0.05, fio2: 0.1, news2: 0.1, smoking: 0.15, cxrSeverity: 0.1 };

export function clinicalRecord(seed: number, site: SiteProfile, p: PatientPlan): NccidClinicalRecord {
  const patientId = site.patientIdIsNhs ? p.nhsNumber : p.mrn;
  if (!p.covid) {
    return { kind: 'status', templateVersion: NCCID_TEMPLATE_VERSIONS.status, submittingSite: site.code, patientId, swabStatus: 'negative', swabDate: p.swab.date };
  }
  const rng = rngFor(seed, 'missing', p.key);
  const keep = <T>(field: string, v: T): T | null => (rng.chance(Math.min(0.9, site.missingness + (EXTRA_MISSING[field] ?? 0))) ? null : v);
  const c = p.comorbidities;
  const o = p.observations;
  const rec: NccidDataRecord = {
    kind: 'data',
    templateVersion: NCCID_TEMPLATE_VERSIONS.data,
    submittingSite: site.code,
    patientId,
    swabStatus: 'positive',
    swabDate: p.swab.date,
    dateOfPositiveSwab: p.swab.firstPositive,
    dateOfLastNegativeSwab: p.swab.lastNegative,
    dateOfResult: keep('dateOfResult', p.swab.result),
    dateOfAdmission: keep('dateOfAdmission', p.admission),
    age: p.age,
    sex: p.sex,
    ethnicity: keep('ethnicity', p.ethnicity),
    comorbidities: {
      hypertension: keep('hypertension', c.hypertension),
      diabetesType2: keep('diabetesType2', c.diabetesType2),
      ckd: keep('ckd', c.ckd),
      cardiovascularDisease: keep('cardiovascularDisease', c.cardiovascularDisease),
      lungDisease: keep('lungDisease', c.lungDisease),
      smoking: keep('smoking', c.smoking),
    },
    observations: {
      temperature: keep('temperature', o.temperature),
      respiratoryRate: keep('respiratoryRate', o.respiratoryRate),
      heartRate: keep('heartRate', o.heartRate),
      systolicBp: keep('systolicBp', o.systolicBp),
      diastolicBp: keep('diastolicBp', o.diastolicBp),
      o2Saturation: keep('o2Saturation', o.o2Saturation),
      fio2: keep('fio2', o.fio2),
      news2: keep('news2', o.news2),
      lymphocytes: keep('lymphocytes', o.lymphocytes),
      crp: keep('crp', o.crp),
      dDimer: keep('dDimer', o.dDimer),
      ferritin: keep('ferritin', o.ferritin),
    },
    outcomes: {
      ituAdmission: p.outcomes.itu,
      ituAdmissionDate: p.outcomes.ituDate,
      intubation: p.outcomes.intubation,
      intubationDate: p.outcomes.intubationDate,
      death: p.outcomes.death,
      dateOfDeath: p.outcomes.deathDate,
    },
    cxrSeverity: keep('cxrSeverity', p.cxrSeverity),
  };
  return rec;
}

// ---------------------------------------------------------------- CSV

/** Flat CSV columns: [canonical dotted path, NCCID-style header, snake header]. */
export const CSV_COLUMNS: Array<[string, string, string]> = [
  ['submittingSite', 'SubmittingCentre', 'submitting_site'],
  ['patientId', 'PatientID', 'patient_id'],
  ['templateVersion', 'TemplateVersion', 'template_version'],
  ['swabStatus', 'SwabStatus', 'swab_status'],
  ['swabDate', 'SwabDate', 'swab_date'],
  ['dateOfPositiveSwab', 'Date of Positive Covid Swab', 'date_positive_swab'],
  ['dateOfLastNegativeSwab', 'Date of last negative Covid Swab', 'date_last_negative_swab'],
  ['dateOfResult', 'Date of result of 1st positive Covid Swab', 'date_result'],
  ['dateOfAdmission', 'Date of admission', 'date_admission'],
  ['age', 'Age', 'age'],
  ['sex', 'Sex', 'sex'],
  ['ethnicity', 'Ethnicity', 'ethnicity'],
  ['comorbidities.hypertension', 'PMH hypertension', 'pmh_hypertension'],
  ['comorbidities.diabetesType2', 'PMH diabetes mellitus type II', 'pmh_diabetes_t2'],
  ['comorbidities.ckd', 'PMH CKD', 'pmh_ckd'],
  ['comorbidities.cardiovascularDisease', 'PMH CVS disease', 'pmh_cvs'],
  ['comorbidities.lungDisease', 'PMH Lung disease', 'pmh_lung'],
  ['comorbidities.smoking', 'Smoking status', 'smoking'],
  ['observations.temperature', 'Temperature on admission', 'temperature'],
  ['observations.respiratoryRate', 'Respiratory rate on admission', 'resp_rate'],
  ['observations.heartRate', 'Heart rate on admission', 'heart_rate'],
  ['observations.systolicBp', 'Systolic BP', 'systolic_bp'],
  ['observations.diastolicBp', 'Diastolic BP', 'diastolic_bp'],
  ['observations.o2Saturation', 'O2 saturation', 'o2_sat'],
  ['observations.fio2', 'FiO2', 'fio2'],
  ['observations.news2', 'NEWS2 score on arrival', 'news2'],
  ['observations.lymphocytes', 'Lymphocyte count on admission', 'lymphocytes'],
  ['observations.crp', 'CRP on admission', 'crp'],
  ['observations.dDimer', 'D-dimer on admission', 'd_dimer'],
  ['observations.ferritin', 'Ferritin on admission', 'ferritin'],
  ['outcomes.ituAdmission', 'ITU admission', 'itu_admission'],
  ['outcomes.ituAdmissionDate', 'Date of ITU admission', 'itu_date'],
  ['outcomes.intubation', 'Intubation', 'intubation'],
  ['outcomes.intubationDate', 'Date of intubation', 'intubation_date'],
  ['outcomes.death', 'Death', 'death'],
  ['outcomes.dateOfDeath', 'Date of death', 'death_date'],
  ['cxrSeverity', 'CXR severity', 'cxr_severity'],
];

const STATUS_COLUMNS = new Set(['submittingSite', 'patientId', 'templateVersion', 'swabStatus', 'swabDate']);

function getPath(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const k of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
}

function csvCell(v: unknown, t: CsvTemplate): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return t.headerStyle === 'nccid' ? (v ? 'Yes' : 'No') : v ? '1' : '0';
  let s = String(v);
  if (t.dateFormat === 'dd/mm/yyyy' && /^\d{4}-\d{2}-\d{2}$/.test(s)) s = `${s.slice(8, 10)}/${s.slice(5, 7)}/${s.slice(0, 4)}`;
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** CSV of records in a site's template (one file per record kind). */
export function toCsv(records: NccidClinicalRecord[], t: CsvTemplate, kind: 'data' | 'status'): string {
  const cols = CSV_COLUMNS.filter(([p]) => kind === 'data' || STATUS_COLUMNS.has(p));
  const head = cols.map((c) => (t.headerStyle === 'nccid' ? c[1] : c[2]));
  const lines = [head.map((h) => csvCell(h, t)).join(',')];
  for (const r of records.filter((x) => x.kind === kind)) lines.push(cols.map(([p]) => csvCell(getPath(r, p), t)).join(','));
  return lines.join('\r\n') + '\r\n';
}

// ---------------------------------------------------------------- FHIR R4

type FhirResource = Record<string, unknown> & { resourceType: string; id: string };

const LOINC: Record<keyof NccidDataRecord['observations'], [string, string, string, string] | null> = {
  temperature: ['8310-5', 'Body temperature', 'Cel', 'Cel'],
  respiratoryRate: ['9279-1', 'Respiratory rate', '/min', '/min'],
  heartRate: ['8867-4', 'Heart rate', '/min', '/min'],
  systolicBp: ['8480-6', 'Systolic blood pressure', 'mm[Hg]', 'mmHg'],
  diastolicBp: ['8462-4', 'Diastolic blood pressure', 'mm[Hg]', 'mmHg'],
  o2Saturation: ['59408-5', 'Oxygen saturation in Arterial blood by Pulse oximetry', '%', '%'],
  fio2: ['3150-0', 'Inhaled oxygen concentration', '1', '1'],
  news2: ['1104051000000101', 'NEWS2 score', '{score}', 'score'],
  lymphocytes: ['731-0', 'Lymphocytes [#/volume] in Blood', '10*9/L', '10^9/L'],
  crp: ['1988-5', 'C reactive protein [Mass/volume] in Serum or Plasma', 'mg/L', 'mg/L'],
  dDimer: ['48065-7', 'Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma', 'ng/mL{FEU}', 'ng/mL FEU'],
  ferritin: ['2276-4', 'Ferritin [Mass/volume] in Serum or Plasma', 'ug/L', 'ug/L'],
};

const SNOMED: Record<'hypertension' | 'diabetesType2' | 'ckd' | 'cardiovascularDisease' | 'lungDisease', [string, string]> = {
  hypertension: ['38341003', 'Hypertensive disorder'],
  diabetesType2: ['44054006', 'Diabetes mellitus type 2'],
  ckd: ['709044004', 'Chronic kidney disease'],
  cardiovascularDisease: ['49601007', 'Disorder of cardiovascular system'],
  lungDisease: ['19829001', 'Disorder of lung'],
};

const SMOKING: Record<'never' | 'former' | 'current', [string, string]> = {
  never: ['266919005', 'Never smoked tobacco'],
  former: ['8517006', 'Ex-smoker'],
  current: ['77176002', 'Smoker'],
};

/**
 * A FHIR R4 collection Bundle for one patient: Patient (with PHI, as a
 * hospital would export it), Observations (LOINC), Conditions (SNOMED CT),
 * the SARS-CoV-2 PCR result, and ITU/death as an Encounter and deceased flag.
 */
export function toFhirBundle(site: SiteProfile, p: PatientPlan, rec: NccidClinicalRecord): Record<string, unknown> {
  const pid = `pat-${p.key}`;
  const subject = { reference: `Patient/${pid}` };
  const res: FhirResource[] = [];
  const data = rec.kind === 'data' ? rec : null;
  res.push({
    resourceType: 'Patient',
    id: pid,
    identifier: [
      { system: 'https://fhir.nhs.uk/Id/nhs-number', value: p.nhsNumber },
      { system: `urn:imago:site:${site.code}:mrn`, value: p.mrn },
    ],
    name: [{ use: 'official', family: p.name.family, given: [p.name.given] }],
    gender: p.sex === 'F' ? 'female' : 'male',
    birthDate: p.birthDate,
    address: [{ line: p.address.lines, city: p.address.town, postalCode: p.address.postcode, country: 'GB' }],
    telecom: [{ system: 'phone', value: p.phone }],
    ...(data?.outcomes.death ? { deceasedDateTime: data.outcomes.dateOfDeath ?? undefined } : {}),
    extension: data?.ethnicity || !data
      ? [{
          url: 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory',
          valueCodeableConcept: { coding: [{ system: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory', code: data ? data.ethnicity : p.ethnicity, display: ETHNIC_CATEGORIES[(data ? data.ethnicity : p.ethnicity) as EthnicCode] }] },
        }]
      : [],
    managingOrganization: { display: site.name, identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: site.code } },
  });
  res.push({
    resourceType: 'Observation',
    id: `${pid}-pcr`,
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '94500-6', display: 'SARS-CoV-2 (COVID-19) RNA [Presence] in Respiratory specimen by NAA with probe detection' }] },
    subject,
    effectiveDateTime: rec.swabDate,
    valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: rec.swabStatus === 'positive' ? '10828004' : '260385009', display: rec.swabStatus === 'positive' ? 'Positive' : 'Negative' }] },
  });
  if (data) {
    const when = data.dateOfAdmission ?? data.swabDate;
    for (const [k, v] of Object.entries(data.observations) as Array<[keyof typeof LOINC, number | null]>) {
      const code = LOINC[k];
      if (v === null || !code) continue;
      const isNews = k === 'news2';
      res.push({
        resourceType: 'Observation',
        id: `${pid}-${k}`,
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: ['lymphocytes', 'crp', 'dDimer', 'ferritin'].includes(k) ? 'laboratory' : 'vital-signs' }] }],
        code: { coding: [{ system: isNews ? 'http://snomed.info/sct' : 'http://loinc.org', code: code[0], display: code[1] }], text: k },
        subject,
        effectiveDateTime: when,
        valueQuantity: { value: v, unit: code[3], system: 'http://unitsofmeasure.org', code: code[2] },
      });
    }
    for (const [k, v] of Object.entries(data.comorbidities)) {
      if (k === 'smoking') continue;
      if (v !== true) continue;
      const [code, display] = SNOMED[k as keyof typeof SNOMED];
      res.push({
        resourceType: 'Condition',
        id: `${pid}-${k}`,
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
        code: { coding: [{ system: 'http://snomed.info/sct', code, display }], text: k },
        subject,
      });
    }
    if (data.comorbidities.smoking) {
      const [code, display] = SMOKING[data.comorbidities.smoking];
      res.push({
        resourceType: 'Observation', id: `${pid}-smoking`, status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '72166-2', display: 'Tobacco smoking status' }] },
        subject, effectiveDateTime: when,
        valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code, display }] },
      });
    }
    if (data.cxrSeverity !== null) {
      res.push({
        resourceType: 'Observation', id: `${pid}-cxr-severity`, status: 'final',
        code: { coding: [{ system: 'urn:imago:nccid', code: 'cxr-severity', display: 'CXR severity (0 normal - 3 severe)' }] },
        subject, effectiveDateTime: when, valueInteger: data.cxrSeverity,
      });
    }
    if (data.dateOfAdmission) {
      res.push({ resourceType: 'Encounter', id: `${pid}-admission`, status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject, period: { start: data.dateOfAdmission } });
    }
    if (data.outcomes.ituAdmission) {
      res.push({
        resourceType: 'Encounter', id: `${pid}-itu`, status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'ACUTE' },
        type: [{ coding: [{ system: 'http://snomed.info/sct', code: '309904001', display: 'Intensive care unit' }] }],
        subject, period: { start: data.outcomes.ituAdmissionDate ?? undefined },
      });
    }
    if (data.outcomes.intubation) {
      res.push({
        resourceType: 'Procedure', id: `${pid}-intubation`, status: 'completed',
        code: { coding: [{ system: 'http://snomed.info/sct', code: '112798008', display: 'Insertion of endotracheal tube' }] },
        subject, performedDateTime: data.outcomes.intubationDate ?? undefined,
      });
    }
  }
  return {
    resourceType: 'Bundle',
    id: `bundle-${p.key}`,
    type: 'collection',
    meta: { tag: [{ system: 'urn:imago:nccid-template', code: rec.templateVersion }] },
    entry: res.map((r) => ({ fullUrl: `https://synth.imago.invalid/fhir/${r.resourceType}/${r.id}`, resource: stripUndefined(r) })),
  };
}

function stripUndefined<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}
