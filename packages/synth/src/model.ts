import { rngFor, uidFor, hash32, type Rng } from './prng.js';
import { address, clinicianName, nhsNumber, personName, phone, type Address, type PersonName } from './phi.js';
import type { EthnicCode, SiteProfile } from './sites.js';

/**
 * The patient model: demographics, PHI, clinical course and the schedule of
 * imaging studies. Everything here is planned in the main thread from
 * (seed, site, patient index), so it is cheap and fully deterministic.
 */

export interface Observations {
  temperature: number;
  respiratoryRate: number;
  heartRate: number;
  systolicBp: number;
  diastolicBp: number;
  o2Saturation: number;
  fio2: number;
  news2: number;
  lymphocytes: number;
  crp: number;
  dDimer: number;
  ferritin: number;
}

export interface Comorbidities {
  hypertension: boolean;
  diabetesType2: boolean;
  ckd: boolean;
  cardiovascularDisease: boolean;
  lungDisease: boolean;
  smoking: 'never' | 'former' | 'current';
}

export type StudyKind = 'cxr' | 'ct' | 'sc' | 'us';

export interface StudyPlan {
  index: number;
  kind: StudyKind;
  role: 'prior' | 'admission' | 'followup' | 'other';
  /** ISO datetime of acquisition (UTC, no zone shown in DICOM). */
  at: string;
  accession: string;
  studyUid: string;
  studyId: string;
  /** CXR severity of what the pixels show (0 normal .. 3 severe). */
  severity: number;
  /** True when this study shows COVID-19 (patient positive and study in the episode). */
  covidAtStudy: boolean;
  modality: 'DX' | 'CR' | 'CT' | 'SC' | 'US';
  view?: 'PA' | 'AP';
  deviceIndex: number;
  referring: PersonName;
  performing: PersonName;
  operator: PersonName;
  reader: PersonName;
}

export interface PatientPlan {
  index: number;
  /** Index within its site. */
  siteIndex: number;
  site: string;
  key: string;
  sex: 'M' | 'F';
  age: number;
  birthDate: string;
  ethnicity: EthnicCode;
  name: PersonName;
  nhsNumber: string;
  mrn: string;
  address: Address;
  phone: string;
  gp: PersonName;
  covid: boolean;
  swab: { firstPositive: string | null; lastNegative: string | null; result: string | null; date: string };
  admission: string;
  comorbidities: Comorbidities;
  observations: Observations;
  outcomes: { itu: boolean; ituDate: string | null; intubation: boolean; intubationDate: string | null; death: boolean; deathDate: string | null };
  cxrSeverity: number;
  studies: StudyPlan[];
}

export interface PopulationOptions {
  /** Mean and SD of age in years. */
  ageMean: number;
  ageSd: number;
  /** Fraction female. */
  female: number;
}

const DAY = 86400000;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const r1 = (x: number) => Math.round(x * 10) / 10;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Deterministic epoch: the collection window starts on a seed-derived day in March 2020. */
export function epoch(seed: number): number {
  return Date.UTC(2020, 2, 1) + (hash32(seed, 'epoch') % 28) * DAY;
}

function news2(o: Omit<Observations, 'news2' | 'lymphocytes' | 'crp' | 'dDimer' | 'ferritin'>): number {
  let s = 0;
  const rr = o.respiratoryRate;
  s += rr <= 8 ? 3 : rr <= 11 ? 1 : rr <= 20 ? 0 : rr <= 24 ? 2 : 3;
  const sp = o.o2Saturation;
  s += sp <= 91 ? 3 : sp <= 93 ? 2 : sp <= 95 ? 1 : 0;
  s += o.fio2 > 0.21 ? 2 : 0;
  const sb = o.systolicBp;
  s += sb <= 90 ? 3 : sb <= 100 ? 2 : sb <= 110 ? 1 : sb <= 219 ? 0 : 3;
  const hr = o.heartRate;
  s += hr <= 40 ? 3 : hr <= 50 ? 1 : hr <= 90 ? 0 : hr <= 110 ? 1 : hr <= 130 ? 2 : 3;
  const t = o.temperature;
  s += t <= 35 ? 3 : t <= 36 ? 1 : t <= 38 ? 0 : t <= 39 ? 1 : 2;
  return s;
}

function pickEthnicity(rng: Rng, site: SiteProfile): EthnicCode {
  return rng.weighted(site.ethnicity);
}

export function planPatient(seed: number, site: SiteProfile, siteIndex: number, globalIndex: number, pop: PopulationOptions): PatientPlan {
  const rng = rngFor(seed, 'patient', site.code, siteIndex);
  const covid = rng.chance(site.prevalence);
  const sex: 'M' | 'F' = rng.chance(pop.female) ? 'F' : 'M';
  const age = Math.round(Math.min(99, Math.max(18, rng.normal(pop.ageMean + (covid ? 4 : 0), pop.ageSd))));
  const t0 = epoch(seed);
  const swabMs = t0 + rng.int(0, 390) * DAY;
  const birthMs = swabMs - age * 365.25 * DAY - rng.int(1, 364) * DAY;
  const ethnicity = pickEthnicity(rng, site);
  const name = personName(rng, sex);
  const nhs = nhsNumber(rng);
  const mrn = `${site.mrnPrefix}${String(rng.int(1000000, 9999999))}`;
  const addr = address(rng, site.town);
  const tel = phone(rng);
  const gp = clinicianName(rng);

  const a = (age - 60) / 10;
  const comorbidities: Comorbidities = {
    hypertension: rng.chance(sigmoid(-0.6 + 0.55 * a)),
    diabetesType2: rng.chance(sigmoid(-1.7 + 0.35 * a + (['H', 'J', 'K', 'M', 'N'].includes(ethnicity) ? 0.6 : 0))),
    ckd: rng.chance(sigmoid(-2.4 + 0.5 * a)),
    cardiovascularDisease: rng.chance(sigmoid(-1.9 + 0.5 * a + (sex === 'M' ? 0.3 : 0))),
    lungDisease: rng.chance(sigmoid(-1.8 + 0.2 * a)),
    smoking: rng.weighted({ never: 0.55, former: 0.3, current: 0.15 }),
  };
  const nCom = [comorbidities.hypertension, comorbidities.diabetesType2, comorbidities.ckd, comorbidities.cardiovascularDisease, comorbidities.lungDisease].filter(Boolean).length;

  // latent illness: age and comorbidities make COVID-19 worse
  let severity = 0;
  if (covid) {
    const latent = rng.normal(0, 1) + 0.35 * a + 0.3 * nCom;
    severity = rng.chance(0.04) ? 0 : latent < -0.3 ? 1 : latent < 0.9 ? 2 : 3;
  }
  const ill = covid ? severity : rng.chance(0.3) ? 1 : 0; // negatives: some other acute illness
  const base = {
    temperature: r1(rng.normal(36.9 + (covid ? 0.4 + 0.25 * severity : 0.2 * ill), 0.5)),
    respiratoryRate: Math.round(rng.normal(16 + 2.5 * ill + (covid ? 1 : 0), 2.5)),
    heartRate: Math.round(rng.normal(82 + 7 * ill, 12)),
    systolicBp: Math.round(rng.normal(132 - 4 * ill + (comorbidities.hypertension ? 12 : 0), 16)),
    diastolicBp: 0,
    o2Saturation: Math.min(100, Math.round(rng.normal(97 - (covid ? 2.4 * severity : 0.8 * ill) - (comorbidities.lungDisease ? 1.5 : 0), 1.6))),
    fio2: 0.21,
  };
  base.diastolicBp = Math.round(base.systolicBp * rng.range(0.55, 0.68));
  if (base.o2Saturation < 94) base.fio2 = rng.pick([0.28, 0.35, 0.4, 0.6]);
  const observations: Observations = {
    ...base,
    news2: news2(base),
    lymphocytes: r1(Math.max(0.1, rng.normal(1.8 - (covid ? 0.3 * severity + 0.3 : 0.1 * ill), 0.45))),
    crp: Math.round(Math.exp(rng.normal(Math.log(8 + (covid ? 25 * severity + 15 : 30 * ill)), 0.6))),
    dDimer: Math.round(Math.exp(rng.normal(Math.log(400 + (covid ? 500 * severity : 200 * ill)), 0.5))),
    ferritin: Math.round(Math.exp(rng.normal(Math.log(150 + (covid ? 300 * severity : 50)), 0.55))),
  };

  const admissionMs = swabMs + rng.int(-2, 1) * DAY;
  const ituP = sigmoid(-4.2 + 0.45 * a + 0.35 * nCom + (covid ? 1.1 * severity : 0.6 * ill));
  const itu = rng.chance(ituP);
  const ituMs = admissionMs + rng.int(0, 6) * DAY;
  const intubation = itu && rng.chance(0.6);
  const deathP = sigmoid(-4.6 + 0.6 * a + (itu ? 1.4 : 0) + (covid ? 0.5 * severity : 0));
  const death = rng.chance(deathP);
  const deathMs = (itu ? ituMs : admissionMs) + rng.int(2, 30) * DAY;

  const swab = covid
    ? { firstPositive: isoDate(swabMs), lastNegative: rng.chance(0.4) ? isoDate(swabMs - rng.int(5, 60) * DAY) : null, result: isoDate(swabMs + rng.int(0, 2) * DAY), date: isoDate(swabMs) }
    : { firstPositive: null, lastNegative: isoDate(swabMs), result: isoDate(swabMs + rng.int(0, 2) * DAY), date: isoDate(swabMs) };

  const plan: PatientPlan = {
    index: globalIndex,
    siteIndex,
    site: site.code,
    key: `${site.code}-${String(siteIndex).padStart(5, '0')}`,
    sex,
    age,
    birthDate: isoDate(birthMs),
    ethnicity,
    name,
    nhsNumber: nhs,
    mrn,
    address: addr,
    phone: tel,
    gp,
    covid,
    swab,
    admission: isoDate(admissionMs),
    comorbidities,
    observations,
    outcomes: {
      itu,
      ituDate: itu ? isoDate(ituMs) : null,
      intubation,
      intubationDate: intubation ? isoDate(ituMs + rng.int(0, 2) * DAY) : null,
      death,
      deathDate: death ? isoDate(deathMs) : null,
    },
    cxrSeverity: severity,
    studies: [],
  };
  plan.studies = planStudies(seed, site, plan, rng, admissionMs, ituMs);
  return plan;
}

function planStudies(seed: number, site: SiteProfile, p: PatientPlan, rng: Rng, admissionMs: number, ituMs: number): StudyPlan[] {
  const out: StudyPlan[] = [];
  const devicesOf = (m: string) => site.devices.map((d, i) => ({ d, i })).filter((x) => x.d.modality === m);
  const add = (kind: StudyKind, role: StudyPlan['role'], ms: number, severity: number, covidAtStudy: boolean) => {
    const index = out.length;
    let modality: StudyPlan['modality'];
    let view: StudyPlan['view'];
    if (kind === 'cxr') {
      modality = rng.chance(site.dxShare) ? 'DX' : 'CR';
      view = role === 'prior' ? 'PA' : rng.chance(0.65) ? 'AP' : 'PA';
    } else modality = kind === 'ct' ? 'CT' : kind === 'sc' ? 'SC' : 'US';
    const devModality = modality === 'SC' ? 'DX' : modality;
    const devs = devicesOf(devModality);
    const dev = devs.length ? rng.pick(devs).i : 0;
    const at = new Date(ms + rng.int(7 * 3600, 22 * 3600) * 1000 + rng.int(0, 59) * 1000).toISOString();
    out.push({
      index,
      kind,
      role,
      at,
      accession: `${site.accessionPrefix}${String(hash32(seed, p.key, index) % 100000000).padStart(8, '0')}`,
      studyUid: uidFor(seed, 'study', p.key, index),
      studyId: String(rng.int(1000, 99999)),
      severity,
      covidAtStudy,
      modality,
      view,
      deviceIndex: dev,
      referring: clinicianName(rng),
      performing: clinicianName(rng),
      operator: personName(rng, rng.chance(0.6) ? 'F' : 'M'),
      reader: clinicianName(rng),
    });
  };
  if (rng.chance(0.25)) add('cxr', 'prior', admissionMs - rng.int(200, 1800) * DAY, 0, false);
  add('cxr', 'admission', admissionMs, p.cxrSeverity, p.covid);
  if (rng.chance(p.covid ? 0.5 : 0.25)) {
    const worse = p.outcomes.itu ? 1 : rng.chance(0.3) ? -1 : 0;
    const sev = p.covid ? Math.max(1, Math.min(3, p.cxrSeverity + worse)) : 0;
    add('cxr', 'followup', (p.outcomes.itu ? ituMs : admissionMs) + rng.int(1, 6) * DAY, sev, p.covid);
  }
  if (rng.chance(p.covid ? 0.12 : 0.06)) add('ct', 'followup', admissionMs + rng.int(0, 3) * DAY, p.covid ? Math.max(1, p.cxrSeverity) : 0, p.covid);
  const forceSc = p.index === 0;
  const forceUs = p.index === 1;
  if (forceSc || rng.chance(0.03)) add('sc', 'other', admissionMs + rng.int(0, 2) * DAY, p.cxrSeverity, p.covid);
  if (forceUs || rng.chance(0.03)) add('us', 'other', admissionMs + rng.int(0, 5) * DAY, 0, p.covid);
  out.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : x.index - y.index));
  // keep UIDs/accessions tied to the original index but renumber for display order
  return out;
}
