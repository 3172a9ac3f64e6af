import { da, ds, el, tm, type Dataset, type TransferSyntax } from './dicom.js';
import type { CxrRecipe, PixelRecipe, Opacity, Anatomy } from './images.js';
import type { PatientPlan, StudyPlan } from './model.js';
import { rngFor, uidFor, hash32, type Rng } from './prng.js';
import type { SiteProfile } from './sites.js';

/**
 * Headers for each IOD we emit (DX, CR, CT, Secondary Capture, Ultrasound),
 * with PHI placed where hospitals put it. The worker only adds pixels.
 */

export const SOP = {
  DX: '1.2.840.10008.5.1.4.1.1.1.1',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  CT: '1.2.840.10008.5.1.4.1.1.2',
  SC: '1.2.840.10008.5.1.4.1.1.7',
  US: '1.2.840.10008.5.1.4.1.1.6.1',
} as const;

export interface InstancePlan {
  /** Path relative to the output directory. */
  path: string;
  site: string;
  patientKey: string;
  studyIndex: number;
  modality: StudyPlan['modality'];
  sopClassUid: string;
  sopInstanceUid: string;
  studyUid: string;
  seriesUid: string;
  transferSyntax: TransferSyntax;
  /** Everything except the Image Pixel module's pixel-dependent elements. */
  header: Dataset;
  pixel: PixelRecipe;
  /** Image Pixel module values. */
  image: { rows: number; cols: number; bitsAllocated: 8 | 16; bitsStored: number; photometric: string };
}

export interface ImageScale {
  /** 1 = full size (CXR 2048+); 0.125 gives 256-pixel radiographs for tests. */
  scale: number;
  ctSlices: number;
}

const even = (n: number) => Math.max(16, Math.round(n / 2) * 2);
const dt = (iso: string) => new Date(iso);

function patientModule(p: PatientPlan, site: SiteProfile, s: StudyPlan): Dataset {
  const pid = site.patientIdIsNhs ? p.nhsNumber : p.mrn;
  const other = site.patientIdIsNhs ? p.mrn : p.nhsNumber;
  const age = Math.floor((Date.parse(s.at) - Date.parse(p.birthDate)) / (365.25 * 86400000));
  return [
    el(0x00100010, 'PN', p.name.dicom),
    el(0x00100020, 'LO', pid),
    el(0x00100021, 'LO', site.patientIdIsNhs ? 'NHS' : site.code),
    el(0x00100030, 'DA', da(p.birthDate)),
    el(0x00100040, 'CS', p.sex),
    el(0x00101000, 'LO', other),
    el(0x00101002, 'SQ', [[el(0x00100020, 'LO', other), el(0x00100021, 'LO', site.patientIdIsNhs ? site.code : 'NHS'), el(0x00100022, 'CS', 'TEXT')]]),
    el(0x00101010, 'AS', `${String(Math.max(0, age)).padStart(3, '0')}Y`),
    el(0x00101040, 'LO', p.address.text),
    el(0x00102154, 'SH', p.phone),
    el(0x00102160, 'SH', p.ethnicity),
  ];
}

function studyModule(p: PatientPlan, site: SiteProfile, s: StudyPlan, desc: string): Dataset {
  const at = dt(s.at);
  return [
    el(0x0020000d, 'UI', s.studyUid),
    el(0x00080020, 'DA', da(at)),
    el(0x00080030, 'TM', tm(at)),
    el(0x00080090, 'PN', s.referring.dicom),
    el(0x00200010, 'SH', s.studyId),
    el(0x00080050, 'SH', s.accession),
    el(0x00081030, 'LO', site.phiInDescriptions ? `${desc} ${p.name.family.toUpperCase()}` : desc),
    el(0x00081060, 'PN', s.reader.dicom),
    el(0x001021b0, 'LT', site.phiInDescriptions ? `Pt ${p.name.given} ${p.name.family} (NHS ${p.nhsNumber}) ${p.covid ? 'COVID+' : 'query COVID'}, SOB` : 'SOB, fever'),
  ];
}

function seriesModule(p: PatientPlan, site: SiteProfile, s: StudyPlan, seriesUid: string, seriesNumber: number, desc: string): Dataset {
  const at = dt(s.at);
  return [
    el(0x00080060, 'CS', s.modality === 'SC' ? 'OT' : s.modality),
    el(0x0020000e, 'UI', seriesUid),
    el(0x00200011, 'IS', seriesNumber),
    el(0x00080021, 'DA', da(at)),
    el(0x00080031, 'TM', tm(at)),
    el(0x0008103e, 'LO', desc),
    el(0x00081050, 'PN', s.performing.dicom),
    el(0x00081070, 'PN', s.operator.dicom),
    el(0x00180015, 'CS', 'CHEST'),
    el(0x00400275, 'SQ', [
      [
        el(0x00080050, 'SH', s.accession),
        el(0x00321060, 'LO', site.phiInDescriptions ? `${desc} for ${p.name.dicom}` : desc),
        el(0x00400007, 'LO', desc),
        el(0x00400009, 'SH', `SPS${s.accession}`),
        el(0x00401001, 'SH', `RP${s.accession}`),
        el(0x00401002, 'LO', `Query COVID-19 pneumonia. GP ${p.gp.given} ${p.gp.family}`),
      ],
    ]),
  ];
}

function equipmentModule(site: SiteProfile, s: StudyPlan): Dataset {
  const d = site.devices[s.deviceIndex]!;
  return [
    el(0x00080070, 'LO', d.manufacturer),
    el(0x00080080, 'LO', site.name),
    el(0x00080081, 'ST', site.institutionAddress),
    el(0x00081010, 'SH', d.stationName),
    el(0x00081040, 'LO', site.department),
    el(0x00081090, 'LO', d.model),
    el(0x00181000, 'LO', d.serial),
    el(0x00181020, 'LO', d.softwareVersion),
  ];
}

function sopCommon(sopClass: string, sopUid: string, at: Date): Dataset {
  return [
    el(0x00080005, 'CS', 'ISO_IR 100'),
    el(0x00080012, 'DA', da(at)),
    el(0x00080013, 'TM', tm(at)),
    el(0x00080016, 'UI', sopClass),
    el(0x00080018, 'UI', sopUid),
  ];
}

function anatomy(seed: number, p: PatientPlan, s: StudyPlan): Anatomy {
  const r = rngFor(seed, 'anatomy', p.key);
  const j = rngFor(seed, 'anatomy', p.key, s.index);
  const male = p.sex === 'M' ? 1 : 0;
  return {
    bodyW: r.range(0.36, 0.44) + 0.02 * male,
    lungW: r.range(0.13, 0.17),
    lungH: r.range(0.46, 0.56),
    lungTop: r.range(0.12, 0.17),
    lungSep: r.range(0.16, 0.19),
    heartW: r.range(0.11, 0.15) + (p.comorbidities.cardiovascularDisease ? 0.02 : 0),
    heartShift: r.range(0.01, 0.04),
    ribSpacing: r.range(0.06, 0.075),
    ribPhase: j.range(0, 0.03),
    ribCurve: r.range(0.4, 0.9),
    diaphragm: r.range(0.66, 0.74) + j.range(-0.015, 0.015),
    exposure: j.range(0.94, 1.06),
    heel: j.range(-0.06, 0.06),
  };
}

/** Opacities that grow with severity: bilateral, peripheral, lower zone first. */
export function opacities(rng: Rng, an: Anatomy, severity: number, covid: boolean): Opacity[] {
  const out: Opacity[] = [];
  const spot = (r: number, a: number, zoneLo: number) => {
    const side = rng.chance(0.5) ? -1 : 1;
    const x = 0.5 + side * (an.lungSep + an.lungW * rng.range(0.1, 0.8));
    const y = an.lungTop + an.lungH * rng.range(zoneLo, 0.92);
    out.push({ x, y, r, a });
  };
  if (covid && severity > 0) {
    const n = [0, rng.int(3, 4), rng.int(5, 7), rng.int(8, 11)][severity]!;
    for (let k = 0; k < n; k++) {
      if (severity === 1) spot(rng.range(0.05, 0.07), rng.range(0.09, 0.13), 0.45);
      else if (severity === 2) spot(rng.range(0.06, 0.09), rng.range(0.11, 0.16), 0.3);
      else spot(rng.range(0.07, 0.1), rng.range(0.13, 0.19), 0.1);
    }
  } else if (!covid && rng.chance(0.06)) {
    spot(rng.range(0.03, 0.05), rng.range(0.08, 0.12), 0.3); // focal non-COVID consolidation
  }
  return out;
}

function cxrInstances(seed: number, site: SiteProfile, p: PatientPlan, s: StudyPlan, sc: ImageScale, base: string): InstancePlan[] {
  const rows = even(site.cxrRows * sc.scale);
  const cols = even(site.cxrCols * sc.scale);
  const spacing = site.pixelSpacing / sc.scale;
  const rng = rngFor(seed, 'pixels', p.key, s.index);
  const an = anatomy(seed, p, s);
  const recipe: CxrRecipe = {
    kind: 'cxr', rows, cols, bitsStored: site.bitsStored, photometric: site.photometric, contrast: site.contrast, anatomy: an,
    opacities: opacities(rng, an, s.severity, s.covidAtStudy), noiseSeed: hash32(seed, 'noise', p.key, s.index) | 1,
  };
  const ap = s.view === 'AP';
  const studyDesc = ap ? site.descriptions.studyAp : site.descriptions.studyPa;
  const seriesDesc = ap ? site.descriptions.seriesAp : site.descriptions.seriesPa;
  const seriesUid = uidFor(seed, 'series', p.key, s.index, 1);
  const sopUid = uidFor(seed, 'sop', p.key, s.index, 1, 1);
  const at = dt(s.at);
  const maxV = (1 << site.bitsStored) - 1;
  const mono1 = site.photometric === 'MONOCHROME1';
  const h: Dataset = [
    ...patientModule(p, site, s),
    ...studyModule(p, site, s, studyDesc),
    ...seriesModule(p, site, s, seriesUid, 1, seriesDesc),
    ...equipmentModule(site, s),
    ...sopCommon(s.modality === 'DX' ? SOP.DX : SOP.CR, sopUid, at),
    el(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY']),
    el(0x00080022, 'DA', da(at)),
    el(0x00080023, 'DA', da(at)),
    el(0x00080032, 'TM', tm(at)),
    el(0x00080033, 'TM', tm(at)),
    el(0x00200013, 'IS', 1),
    el(0x00200020, 'CS', ['L', 'F']),
    el(0x00280301, 'CS', 'NO'),
    el(0x00282110, 'CS', '00'),
    el(0x00185101, 'CS', s.view ?? 'PA'),
    el(0x00180060, 'DS', ds(ap ? 90 : 110 + (s.index % 3) * 5)),
    el(0x00181164, 'DS', [ds(spacing), ds(spacing)]),
    el(0x00281050, 'DS', ds(maxV / 2)),
    el(0x00281051, 'DS', ds(maxV)),
    el(0x00281052, 'DS', '0'),
    el(0x00281053, 'DS', '1'),
    el(0x00281054, 'LO', 'US'),
  ];
  if (site.phiInDescriptions) h.push(el(0x00204000, 'LT', `${p.name.dicom} ${p.nhsNumber} ward ${['A', 'B', 'C'][s.index % 3]}`));
  if (s.modality === 'DX') {
    h.push(
      el(0x00080068, 'CS', 'FOR PRESENTATION'),
      el(0x00200062, 'CS', 'U'),
      el(0x00082218, 'SQ', [[el(0x00080100, 'SH', '51185008'), el(0x00080102, 'SH', 'SCT'), el(0x00080104, 'LO', 'Chest')]]),
      el(0x00280300, 'CS', 'NO'),
      el(0x00281040, 'CS', 'LOG'),
      el(0x00281041, 'SS', mono1 ? 1 : -1),
      el(0x20500020, 'CS', mono1 ? 'INVERSE' : 'IDENTITY'),
      el(0x00187004, 'CS', 'SCINTILLATOR'),
      el(0x00400555, 'SQ', []),
      el(0x00280030, 'DS', [ds(spacing), ds(spacing)]),
      el(0x00181508, 'CS', ap ? 'NONE' : 'COLUMN'),
    );
  } else {
    h.push(el(0x00180015, 'CS', 'CHEST'));
  }
  return [{
    path: `${base}/S1/I1.dcm`, site: site.code, patientKey: p.key, studyIndex: s.index, modality: s.modality,
    sopClassUid: s.modality === 'DX' ? SOP.DX : SOP.CR, sopInstanceUid: sopUid, studyUid: s.studyUid, seriesUid,
    transferSyntax: site.transferSyntax, header: dedupe(h), pixel: recipe,
    image: { rows, cols, bitsAllocated: 16, bitsStored: site.bitsStored, photometric: site.photometric },
  }];
}

function ctInstances(seed: number, site: SiteProfile, p: PatientPlan, s: StudyPlan, sc: ImageScale, base: string): InstancePlan[] {
  const size = even(512 * sc.scale * 2 > 512 ? 512 : Math.max(64, 512 * sc.scale * 2));
  const n = sc.ctSlices;
  const fov = 360;
  const spacing = fov / size;
  const thick = 280 / n;
  const rng = rngFor(seed, 'ct', p.key, s.index);
  const ana = { bodyA: rng.range(0.38, 0.44), bodyB: rng.range(0.26, 0.31), lungA: rng.range(0.1, 0.13), lungB: rng.range(0.17, 0.21), heartR: rng.range(0.1, 0.13) };
  const ggo: Array<{ x: number; y: number; r: number; z: number; hu: number }> = [];
  if (s.covidAtStudy) {
    for (let k = 0; k < 3 * s.severity + 2; k++) {
      const side = rng.chance(0.5) ? -1 : 1;
      ggo.push({ x: 0.5 + side * rng.range(0.17, 0.27), y: rng.range(0.4, 0.68), r: rng.range(0.03, 0.07), z: rng.range(0.3, 0.95), hu: rng.range(250, 450) });
    }
  }
  const seriesUid = uidFor(seed, 'series', p.key, s.index, 2);
  const forUid = uidFor(seed, 'for', p.key, s.index);
  const at = dt(s.at);
  const out: InstancePlan[] = [];
  for (let k = 0; k < n; k++) {
    const sopUid = uidFor(seed, 'sop', p.key, s.index, 2, k + 1);
    const zpos = -50 - k * thick;
    const h: Dataset = [
      ...patientModule(p, site, s),
      ...studyModule(p, site, s, site.descriptions.ct),
      ...seriesModule(p, site, s, seriesUid, 2, site.descriptions.ctSeries),
      ...equipmentModule(site, { ...s }),
      ...sopCommon(SOP.CT, sopUid, at),
      el(0x00185100, 'CS', 'HFS'),
      el(0x00200052, 'UI', forUid),
      el(0x00201040, 'LO', ''),
      el(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY', 'AXIAL']),
      el(0x00080022, 'DA', da(at)),
      el(0x00080023, 'DA', da(at)),
      el(0x00080032, 'TM', tm(at)),
      el(0x00080033, 'TM', tm(at)),
      el(0x00200012, 'IS', 1),
      el(0x00200013, 'IS', k + 1),
      el(0x00180050, 'DS', ds(thick)),
      el(0x00180060, 'DS', '120'),
      el(0x00181210, 'SH', 'B70f'),
      el(0x00200032, 'DS', [ds(-fov / 2), ds(-fov / 2), ds(zpos)]),
      el(0x00200037, 'DS', ['1', '0', '0', '0', '1', '0']),
      el(0x00201041, 'DS', ds(zpos)),
      el(0x00280030, 'DS', [ds(spacing), ds(spacing)]),
      el(0x00281050, 'DS', ['-600', '40']),
      el(0x00281051, 'DS', ['1500', '400']),
      el(0x00281052, 'DS', '-1024'),
      el(0x00281053, 'DS', '1'),
      el(0x00281054, 'LO', 'HU'),
      el(0x00280301, 'CS', 'NO'),
    ];
    out.push({
      path: `${base}/S2/I${k + 1}.dcm`, site: site.code, patientKey: p.key, studyIndex: s.index, modality: 'CT',
      sopClassUid: SOP.CT, sopInstanceUid: sopUid, studyUid: s.studyUid, seriesUid, transferSyntax: site.transferSyntax, header: dedupe(h),
      pixel: { kind: 'ct', size, z: (k + 0.5) / n, anatomy: ana, ggo, noiseSeed: hash32(seed, 'ctnoise', p.key, s.index, k) | 1 },
      image: { rows: size, cols: size, bitsAllocated: 16, bitsStored: 12, photometric: 'MONOCHROME2' },
    });
  }
  return out;
}

function burnedInLines(p: PatientPlan, s: StudyPlan): string[] {
  return [`${p.name.family.toUpperCase()} ${p.name.given.toUpperCase()}`, `NHS ${p.nhsNumber}`, `DOB ${p.birthDate}`, `${da(dt(s.at))} ${s.accession}`];
}

function scInstances(seed: number, site: SiteProfile, p: PatientPlan, s: StudyPlan, sc: ImageScale, base: string): InstancePlan[] {
  const size = even(Math.max(64, 512 * sc.scale * 2 > 512 ? 512 : 512 * sc.scale * 2));
  const an = anatomy(seed, p, s);
  const rng = rngFor(seed, 'pixels', p.key, s.index);
  const seriesUid = uidFor(seed, 'series', p.key, s.index, 1);
  const sopUid = uidFor(seed, 'sop', p.key, s.index, 1, 1);
  const at = dt(s.at);
  const h: Dataset = [
    ...patientModule(p, site, s),
    ...studyModule(p, site, s, 'Screen capture'),
    ...seriesModule(p, site, s, seriesUid, 1, 'Key images'),
    ...equipmentModule(site, s),
    ...sopCommon(SOP.SC, sopUid, at),
    el(0x00080064, 'CS', 'WSD'),
    el(0x00080008, 'CS', ['DERIVED', 'SECONDARY']),
    el(0x00200013, 'IS', 1),
    el(0x00200020, 'CS', ['L', 'F']),
    el(0x00181012, 'DA', da(at)),
    el(0x00280301, 'CS', 'YES'),
  ];
  return [{
    path: `${base}/S1/I1.dcm`, site: site.code, patientKey: p.key, studyIndex: s.index, modality: 'SC', sopClassUid: SOP.SC, sopInstanceUid: sopUid,
    studyUid: s.studyUid, seriesUid, transferSyntax: site.transferSyntax, header: dedupe(h),
    pixel: {
      kind: 'sc', size, lines: burnedInLines(p, s),
      cxr: { kind: 'cxr', rows: size, cols: size, bitsStored: 8, photometric: 'MONOCHROME2', contrast: site.contrast, anatomy: an, opacities: opacities(rng, an, s.severity, s.covidAtStudy), noiseSeed: hash32(seed, 'noise', p.key, s.index) | 1 },
    },
    image: { rows: size, cols: size, bitsAllocated: 8, bitsStored: 8, photometric: 'MONOCHROME2' },
  }];
}

function usInstances(seed: number, site: SiteProfile, p: PatientPlan, s: StudyPlan, sc: ImageScale, base: string): InstancePlan[] {
  const cols = even(Math.max(80, Math.min(640, 640 * sc.scale * 2)));
  const rows = even((cols * 3) / 4);
  const seriesUid = uidFor(seed, 'series', p.key, s.index, 1);
  const sopUid = uidFor(seed, 'sop', p.key, s.index, 1, 1);
  const at = dt(s.at);
  const h: Dataset = [
    ...patientModule(p, site, s),
    ...studyModule(p, site, s, 'US THORAX'),
    ...seriesModule(p, site, s, seriesUid, 1, 'Lung US'),
    ...equipmentModule(site, s),
    ...sopCommon(SOP.US, sopUid, at),
    el(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY', 'ABDOMINAL', '0001']),
    el(0x00200013, 'IS', 1),
    el(0x00200020, 'CS', ''),
    el(0x00080022, 'DA', da(at)),
    el(0x00080032, 'TM', tm(at)),
    el(0x00280301, 'CS', 'YES'),
    el(0x00282110, 'CS', '00'),
  ];
  return [{
    path: `${base}/S1/I1.dcm`, site: site.code, patientKey: p.key, studyIndex: s.index, modality: 'US', sopClassUid: SOP.US, sopInstanceUid: sopUid,
    studyUid: s.studyUid, seriesUid, transferSyntax: site.transferSyntax, header: dedupe(h),
    pixel: { kind: 'us', rows, cols, lines: burnedInLines(p, s), noiseSeed: hash32(seed, 'usnoise', p.key, s.index) | 1 },
    image: { rows, cols, bitsAllocated: 8, bitsStored: 8, photometric: 'MONOCHROME2' },
  }];
}

/** Later elements win when a tag repeats (module overlap). */
function dedupe(h: Dataset): Dataset {
  const m = new Map<number, Dataset[number]>();
  for (const e of h) m.set(e.tag, e);
  return [...m.values()];
}

export function instancesFor(seed: number, site: SiteProfile, p: PatientPlan, s: StudyPlan, sc: ImageScale): InstancePlan[] {
  const base = `sites/${site.code}/dicom/${da(dt(s.at))}/${s.accession}`;
  switch (s.kind) {
    case 'cxr': return cxrInstances(seed, site, p, s, sc, base);
    case 'ct': return ctInstances(seed, site, p, s, sc, base);
    case 'sc': return scInstances(seed, site, p, s, sc, base);
    case 'us': return usInstances(seed, site, p, s, sc, base);
  }
}

/** Append Image Pixel module elements and pixel data. */
export function withPixels(ip: InstancePlan, pixels: Buffer): Dataset {
  const { rows, cols, bitsAllocated, bitsStored, photometric } = ip.image;
  return [
    ...ip.header,
    el(0x00280002, 'US', 1),
    el(0x00280004, 'CS', photometric),
    el(0x00280010, 'US', rows),
    el(0x00280011, 'US', cols),
    el(0x00280100, 'US', bitsAllocated),
    el(0x00280101, 'US', bitsStored),
    el(0x00280102, 'US', bitsStored - 1),
    el(0x00280103, 'US', 0),
    el(0x7fe00010, bitsAllocated === 8 ? 'OB' : 'OW', pixels),
  ];
}
