import { rngFor, type Rng } from './prng.js';
import { FAKE_TOWNS } from './phi.js';
import { TS, type TransferSyntax } from './dicom.js';

/** NHS ethnic categories (Data Dictionary "Ethnic Category", 2001 codes). */
export const ETHNIC_CATEGORIES = {
  A: 'White - British',
  B: 'White - Irish',
  C: 'White - Any other White background',
  D: 'Mixed - White and Black Caribbean',
  E: 'Mixed - White and Black African',
  F: 'Mixed - White and Asian',
  G: 'Mixed - Any other mixed background',
  H: 'Asian or Asian British - Indian',
  J: 'Asian or Asian British - Pakistani',
  K: 'Asian or Asian British - Bangladeshi',
  L: 'Asian or Asian British - Any other Asian background',
  M: 'Black or Black British - Caribbean',
  N: 'Black or Black British - African',
  P: 'Black or Black British - Any other Black background',
  R: 'Other Ethnic Groups - Chinese',
  S: 'Other Ethnic Groups - Any other ethnic group',
  Z: 'Not stated',
} as const;
export type EthnicCode = keyof typeof ETHNIC_CATEGORIES;

/** Rough England-wide base rates; sites tilt these (urban sites more diverse). */
const BASE_ETHNICITY: Record<EthnicCode, number> = {
  A: 0.74, B: 0.01, C: 0.05, D: 0.008, E: 0.004, F: 0.006, G: 0.005, H: 0.026, J: 0.021, K: 0.008,
  L: 0.015, M: 0.011, N: 0.018, P: 0.005, R: 0.007, S: 0.01, Z: 0.04,
};

interface Scanner {
  manufacturer: string;
  model: string;
  modality: 'DX' | 'CR' | 'CT' | 'US';
}

const DX_SCANNERS: Scanner[] = [
  { manufacturer: 'Philips Medical Systems', model: 'DigitalDiagnost', modality: 'DX' },
  { manufacturer: 'Carestream Health', model: 'DRX-Evolution', modality: 'DX' },
  { manufacturer: 'Agfa', model: 'DX-D 600', modality: 'DX' },
  { manufacturer: 'GE Healthcare', model: 'Definium 8000', modality: 'DX' },
  { manufacturer: 'SIEMENS', model: 'Ysio Max', modality: 'DX' },
  { manufacturer: 'FUJIFILM Corporation', model: 'FDR D-EVO II', modality: 'DX' },
  { manufacturer: 'Canon Inc.', model: 'CXDI-710C Wireless', modality: 'DX' },
];
const CR_SCANNERS: Scanner[] = [
  { manufacturer: 'Agfa', model: 'CR 85-X', modality: 'CR' },
  { manufacturer: 'FUJIFILM Corporation', model: 'FCR Capsula XLII', modality: 'CR' },
  { manufacturer: 'Carestream Health', model: 'DirectView CR 975', modality: 'CR' },
  { manufacturer: 'KONICA MINOLTA', model: 'REGIUS 190', modality: 'CR' },
];
const CT_SCANNERS: Scanner[] = [
  { manufacturer: 'SIEMENS', model: 'SOMATOM Definition AS', modality: 'CT' },
  { manufacturer: 'GE MEDICAL SYSTEMS', model: 'Revolution EVO', modality: 'CT' },
  { manufacturer: 'TOSHIBA', model: 'Aquilion ONE', modality: 'CT' },
  { manufacturer: 'Philips', model: 'Ingenuity CT', modality: 'CT' },
];
const US_SCANNERS: Scanner[] = [
  { manufacturer: 'GE Healthcare', model: 'LOGIQ E10', modality: 'US' },
  { manufacturer: 'Philips Medical Systems', model: 'EPIQ 7', modality: 'US' },
];

const HOSPITAL_KINDS = ['General Hospital', 'Royal Infirmary', 'University Hospital', 'District General Hospital', 'Memorial Hospital'];

export interface Device extends Scanner {
  stationName: string;
  serial: string;
  softwareVersion: string;
}

/** How a site writes its clinical CSV export. */
export interface CsvTemplate {
  id: 'nccid-v3' | 'snake-iso' | 'nccid-v2-ddmmyyyy';
  dateFormat: 'iso' | 'dd/mm/yyyy';
  headerStyle: 'nccid' | 'snake';
}

export interface SiteProfile {
  index: number;
  code: string;
  name: string;
  town: string;
  institutionAddress: string;
  department: string;
  devices: Device[];
  /** Fraction of chest radiographs taken on DX (else CR). */
  dxShare: number;
  transferSyntax: TransferSyntax;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  bitsStored: 12 | 14;
  /** Full-size CXR matrix (rows, columns) at scale 1. */
  cxrRows: number;
  cxrCols: number;
  pixelSpacing: number;
  /** Site display habits: contrast gamma, gain, offset (fractions of range), noise. */
  contrast: { gamma: number; gain: number; offset: number; noise: number };
  descriptions: { studyPa: string; studyAp: string; seriesPa: string; seriesAp: string; ct: string; ctSeries: string };
  /** Writes patient name into descriptions/comments (a PHI hazard). */
  phiInDescriptions: boolean;
  /** PatientID is the NHS number (else a local MRN, NHS number in Other Patient IDs). */
  patientIdIsNhs: boolean;
  mrnPrefix: string;
  accessionPrefix: string;
  ethnicity: Record<EthnicCode, number>;
  /** Probability that an optional clinical field is missing. */
  missingness: number;
  csvTemplate: CsvTemplate;
  /** COVID prevalence among this site's patients. */
  prevalence: number;
}

const TEMPLATES: CsvTemplate[] = [
  { id: 'nccid-v3', dateFormat: 'iso', headerStyle: 'nccid' },
  { id: 'snake-iso', dateFormat: 'iso', headerStyle: 'snake' },
  { id: 'nccid-v2-ddmmyyyy', dateFormat: 'dd/mm/yyyy', headerStyle: 'nccid' },
];

function siteCode(i: number): string {
  return `RZ${String.fromCharCode(65 + Math.floor(i / 26) % 26)}${String.fromCharCode(65 + (i % 26))}`;
}

function device(rng: Rng, s: Scanner, site: string, n: number): Device {
  const kind = { DX: 'DR', CR: 'CR', CT: 'CT', US: 'US' }[s.modality];
  return {
    ...s,
    stationName: `${site}${kind}${String(n).padStart(2, '0')}`,
    serial: String(rng.int(100000, 999999)),
    softwareVersion: `${rng.int(1, 9)}.${rng.int(0, 20)}.${rng.int(0, 9)}`,
  };
}

export function makeSites(seed: number, n: number, prevalence = 0.5): SiteProfile[] {
  const sites: SiteProfile[] = [];
  for (let i = 0; i < n; i++) {
    const rng = rngFor(seed, 'site', i);
    const code = siteCode(i);
    const town = FAKE_TOWNS[(i + (seed % FAKE_TOWNS.length)) % FAKE_TOWNS.length]!;
    const dx = [...DX_SCANNERS].sort(() => rng.float() - 0.5).slice(0, rng.int(1, 2));
    const cr = [rng.pick(CR_SCANNERS)];
    const devices: Device[] = [
      ...dx.map((s, k) => device(rng, s, code, k + 1)),
      ...cr.map((s, k) => device(rng, s, code, k + 1)),
      device(rng, rng.pick(CT_SCANNERS), code, 1),
      device(rng, rng.pick(US_SCANNERS), code, 1),
    ];
    const dxShare = rng.range(0.3, 0.9);
    // CR plates are usually read MONOCHROME1; some DR vendors also export it.
    const photometric = rng.chance(dxShare < 0.55 ? 0.7 : 0.3) ? 'MONOCHROME1' : 'MONOCHROME2';
    const big = rng.chance(0.25);
    const urban = rng.float();
    const ethnicity = { ...BASE_ETHNICITY };
    for (const k of Object.keys(ethnicity) as EthnicCode[]) {
      if (k === 'A') ethnicity[k] *= 1 - 0.6 * urban;
      else if (k !== 'Z') ethnicity[k] *= 1 + 6 * urban * rng.range(0.3, 1.7);
    }
    ethnicity.Z *= rng.range(0.3, 3); // recording quality varies
    const descStyle = rng.int(0, 2);
    const descriptions = [
      { studyPa: 'XR CHEST', studyAp: 'XR CHEST PORTABLE', seriesPa: 'CHEST PA', seriesAp: 'CHEST AP MOBILE', ct: 'CT THORAX WITH CONTRAST', ctSeries: 'Thorax 1.0 B70f' },
      { studyPa: 'Chest X-ray', studyAp: 'Chest X-ray (mobile)', seriesPa: 'PA', seriesAp: 'AP', ct: 'CT Chest', ctSeries: 'Lung 1.25mm' },
      { studyPa: 'CXR PA', studyAp: 'CXR AP WARD', seriesPa: 'Thorax p.a.', seriesAp: 'Thorax a.p.', ct: 'CT CHEST HRCT', ctSeries: 'HRCT LUNG' },
    ][descStyle]!;
    sites.push({
      index: i,
      code,
      name: `${town} ${rng.pick(HOSPITAL_KINDS)}`,
      town,
      institutionAddress: `${rng.int(1, 99)} Hospital Road, ${town}, ZZ99 ${rng.int(1, 9)}HS`,
      department: rng.pick(['Radiology', 'Imaging Department', 'X-Ray Department', 'Diagnostic Imaging']),
      devices,
      dxShare,
      transferSyntax: rng.chance(0.3) ? TS.implicitLE : TS.explicitLE,
      photometric,
      bitsStored: rng.chance(0.5) ? 12 : 14,
      cxrRows: big ? 2500 : 2048,
      cxrCols: big ? 2048 : 2048,
      pixelSpacing: rng.pick([0.139, 0.143, 0.148, 0.15, 0.16, 0.175]),
      contrast: { gamma: rng.range(0.8, 1.25), gain: rng.range(0.65, 0.85), offset: rng.range(0.05, 0.15), noise: rng.range(0.006, 0.015) },
      descriptions,
      phiInDescriptions: rng.chance(0.4),
      patientIdIsNhs: rng.chance(0.4),
      mrnPrefix: code.slice(1),
      accessionPrefix: rng.pick(['RAD', 'ACC', 'XR', '']) + code.slice(2),
      ethnicity,
      missingness: rng.range(0.03, 0.35),
      csvTemplate: TEMPLATES[i % TEMPLATES.length]!,
      prevalence: Math.min(0.9, Math.max(0.1, prevalence + rng.range(-0.1, 0.1))),
    });
  }
  return sites;
}
