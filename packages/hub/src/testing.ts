import { createHash, createHmac } from 'node:crypto';

/**
 * Small, fast builder of de-identified DICOM Part 10 instances (Explicit VR
 * Little Endian) for tests and benchmarks. It writes elements directly, so it
 * can make 100,000 instances in seconds; the tests cross-check its output
 * with dcmjs and dicom-parser.
 */
export interface InstanceSpec {
  pseudonym: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  sopClassUid?: string;
  modality?: string;
  studyDate?: string;
  studyTime?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  bodyPart?: string;
  manufacturer?: string;
  model?: string;
  sex?: string;
  age?: string;
  studyDescription?: string;
  seriesDescription?: string;
  accession?: string;
  rows?: number;
  columns?: number;
  /** 8 or 16 */
  bitsAllocated?: number;
  /** Leave out the de-identification markers (for refusal tests). */
  omitDeidMarkers?: boolean;
  /** Add a PatientBirthDate value (for refusal tests). */
  birthDate?: string;
  windowCenter?: number;
  windowWidth?: number;
  transferSyntax?: string;
  /** Extra pixel bytes seed, so instances differ. */
  seed?: number;
}

interface El { tag: number; vr: string; value: Buffer }

function pad(s: string, vr: string): Buffer {
  let b = Buffer.from(s, 'latin1');
  if (b.length % 2) b = Buffer.concat([b, Buffer.from(vr === 'UI' || vr === 'OB' ? [0] : [0x20])]);
  return b;
}

const LONG = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR', 'OD', 'OL']);

function encode(els: El[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of els.sort((a, b) => a.tag - b.tag)) {
    const h = Buffer.alloc(LONG.has(e.vr) ? 12 : 8);
    h.writeUInt16LE(e.tag >>> 16, 0);
    h.writeUInt16LE(e.tag & 0xffff, 2);
    h.write(e.vr, 4, 'latin1');
    if (LONG.has(e.vr)) h.writeUInt32LE(e.value.length, 8);
    else h.writeUInt16LE(e.value.length, 6);
    parts.push(h, e.value);
  }
  return Buffer.concat(parts);
}

const s = (tag: number, vr: string, v: string): El => ({ tag, vr, value: pad(v, vr) });
const us = (tag: number, v: number): El => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return { tag, vr: 'US', value: b };
};

export function buildInstance(spec: InstanceSpec): Buffer {
  const rows = spec.rows ?? 16;
  const cols = spec.columns ?? 16;
  const bits = spec.bitsAllocated ?? 16;
  const sopClass = spec.sopClassUid ?? (spec.modality === 'CT' ? '1.2.840.10008.5.1.4.1.1.2' : '1.2.840.10008.5.1.4.1.1.1.1');
  const ts = spec.transferSyntax ?? '1.2.840.10008.1.2.1';
  const pixelBytes = rows * cols * (bits / 8);
  const px = Buffer.alloc(pixelBytes + (pixelBytes % 2));
  const seed = spec.seed ?? 0;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const v = ((x * 7 + y * 13 + seed) % 256) * (bits === 16 ? 8 : 1);
      if (bits === 16) px.writeUInt16LE(v, (y * cols + x) * 2);
      else px[y * cols + x] = v;
    }
  }
  const els: El[] = [
    s(0x00080005, 'CS', 'ISO_IR 100'),
    s(0x00080016, 'UI', sopClass),
    s(0x00080018, 'UI', spec.sopUid),
    s(0x00080020, 'DA', spec.studyDate ?? '20200401'),
    s(0x00080030, 'TM', spec.studyTime ?? '101500'),
    s(0x00080050, 'SH', spec.accession ?? ''),
    s(0x00080060, 'CS', spec.modality ?? 'DX'),
    s(0x00080070, 'LO', spec.manufacturer ?? 'ACME'),
    s(0x00080090, 'PN', ''),
    s(0x00081030, 'LO', spec.studyDescription ?? 'CHEST'),
    s(0x0008103e, 'LO', spec.seriesDescription ?? 'PA'),
    s(0x00081090, 'LO', spec.model ?? 'Imager 1'),
    s(0x00100010, 'PN', spec.pseudonym),
    s(0x00100020, 'LO', spec.pseudonym),
    s(0x00100040, 'CS', spec.sex ?? 'F'),
    s(0x00101010, 'AS', spec.age ?? '064Y'),
    s(0x00180015, 'CS', spec.bodyPart ?? 'CHEST'),
    s(0x0020000d, 'UI', spec.studyUid),
    s(0x0020000e, 'UI', spec.seriesUid),
    s(0x00200010, 'SH', '1'),
    s(0x00200011, 'IS', String(spec.seriesNumber ?? 1)),
    s(0x00200013, 'IS', String(spec.instanceNumber ?? 1)),
    us(0x00280002, 1),
    s(0x00280004, 'CS', 'MONOCHROME2'),
    us(0x00280010, rows),
    us(0x00280011, cols),
    us(0x00280100, bits),
    us(0x00280101, bits === 16 ? 12 : 8),
    us(0x00280102, bits === 16 ? 11 : 7),
    us(0x00280103, 0),
    { tag: 0x7fe00010, vr: bits === 16 ? 'OW' : 'OB', value: px },
  ];
  if (spec.birthDate) els.push(s(0x00100030, 'DA', spec.birthDate));
  else els.push(s(0x00100030, 'DA', ''));
  if (!spec.omitDeidMarkers) {
    els.push(s(0x00120062, 'CS', 'YES'));
    els.push(s(0x00120063, 'LO', 'Basic Application Confidentiality Profile'));
  }
  if (spec.windowCenter !== undefined) els.push(s(0x00281050, 'DS', String(spec.windowCenter)));
  if (spec.windowWidth !== undefined) els.push(s(0x00281051, 'DS', String(spec.windowWidth)));
  const body = encode(els);
  const meta = encode([
    { tag: 0x00020001, vr: 'OB', value: Buffer.from([0, 1]) },
    s(0x00020002, 'UI', sopClass),
    s(0x00020003, 'UI', spec.sopUid),
    s(0x00020010, 'UI', ts),
    s(0x00020012, 'UI', '1.2.826.0.1.3680043.10.1'),
  ]);
  const gl = Buffer.alloc(12);
  gl.writeUInt16LE(0x0002, 0);
  gl.writeUInt16LE(0x0000, 2);
  gl.write('UL', 4, 'latin1');
  gl.writeUInt16LE(4, 6);
  gl.writeUInt32LE(meta.length, 8);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), gl, meta, body]);
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A pseudonym in the deid engine's form, derived from a seed string. */
export function testPseudonym(seed: string): string {
  const h = createHmac('sha256', 'test').update(seed).digest();
  let out = '';
  for (let i = 0; i < 16; i++) out += CROCKFORD[h[i]! & 31];
  return `IMG-${out.slice(0, 4)}-${out.slice(4, 8)}-${out.slice(8, 12)}-${out.slice(12, 16)}`;
}

/** A `2.25.` UID derived from a seed string. */
export function testUid(seed: string): string {
  const h = createHash('sha256').update(seed).digest().subarray(0, 15);
  return `2.25.${BigInt('0x' + h.toString('hex')).toString(10)}`;
}

export function sha256Of(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
