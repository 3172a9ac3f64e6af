/**
 * A minimal DICOM Part 10 writer (little endian, explicit or implicit VR).
 * It is deliberately small and fast: headers are encoded into a few small
 * buffers and the pixel data buffer is passed through without copying, so a
 * 2048x2048x16-bit image costs one write. Sequences use defined lengths.
 */

export type VR =
  | 'AE' | 'AS' | 'AT' | 'CS' | 'DA' | 'DS' | 'DT' | 'FD' | 'FL' | 'IS' | 'LO' | 'LT' | 'OB' | 'OW'
  | 'PN' | 'SH' | 'SL' | 'SQ' | 'SS' | 'ST' | 'TM' | 'UC' | 'UI' | 'UL' | 'UN' | 'UR' | 'US' | 'UT';

export type Value = string | number | Array<string | number> | Buffer | Dataset[] | null;

export interface Element {
  tag: number;
  vr: VR;
  value: Value;
}

export type Dataset = Element[];

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
} as const;
export type TransferSyntax = (typeof TS)[keyof typeof TS];

export const IMPLEMENTATION_CLASS_UID = '2.25.191919191919191919191919191919191919';
export const IMPLEMENTATION_VERSION = 'IMAGO_SYNTH_1';

const LONG_VRS = new Set<VR>(['OB', 'OW', 'SQ', 'UT', 'UN', 'UC', 'UR']);
const TEXT_VRS = new Set<VR>(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UR', 'UT', 'UI']);

/** Convenience constructor. */
export const el = (tag: number, vr: VR, value: Value): Element => ({ tag, vr, value });

function encodeValue(e: Element, explicit: boolean, out: Buffer[]): number {
  const { vr, value } = e;
  if (value === null || value === undefined) return 0;
  if (vr === 'SQ') {
    let total = 0;
    for (const item of value as Dataset[]) {
      const parts: Buffer[] = [];
      const len = encodeElements(item, explicit, parts);
      const h = Buffer.alloc(8);
      h.writeUInt16LE(0xfffe, 0);
      h.writeUInt16LE(0xe000, 2);
      h.writeUInt32LE(len, 4);
      out.push(h, ...parts);
      total += 8 + len;
    }
    return total;
  }
  if (TEXT_VRS.has(vr)) {
    const s = Array.isArray(value) ? value.join('\\') : String(value);
    let b = Buffer.from(s, 'latin1');
    if (b.length & 1) b = Buffer.concat([b, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
    out.push(b);
    return b.length;
  }
  if (Buffer.isBuffer(value)) {
    if (value.length & 1) {
      out.push(value, Buffer.alloc(1));
      return value.length + 1;
    }
    out.push(value);
    return value.length;
  }
  const nums = (Array.isArray(value) ? value : [value]) as number[];
  const size = vr === 'US' || vr === 'SS' ? 2 : vr === 'FD' ? 8 : 4;
  const b = Buffer.alloc(nums.length * size);
  nums.forEach((n, i) => {
    const o = i * size;
    switch (vr) {
      case 'US': b.writeUInt16LE(n, o); break;
      case 'SS': b.writeInt16LE(n, o); break;
      case 'UL': b.writeUInt32LE(n, o); break;
      case 'SL': b.writeInt32LE(n, o); break;
      case 'FL': b.writeFloatLE(n, o); break;
      case 'FD': b.writeDoubleLE(n, o); break;
      case 'AT': b.writeUInt16LE(n >>> 16, o); b.writeUInt16LE(n & 0xffff, o + 2); break;
      default: throw new TypeError(`unsupported numeric VR ${vr}`);
    }
  });
  out.push(b);
  return b.length;
}

function encodeElements(ds: Dataset, explicit: boolean, out: Buffer[]): number {
  const sorted = [...ds].sort((a, b) => a.tag - b.tag);
  let total = 0;
  for (const e of sorted) {
    const parts: Buffer[] = [];
    const len = encodeValue(e, explicit, parts);
    let h: Buffer;
    if (!explicit) {
      h = Buffer.alloc(8);
      h.writeUInt32LE(len, 4);
    } else if (LONG_VRS.has(e.vr)) {
      h = Buffer.alloc(12);
      h.write(e.vr, 4, 'latin1');
      h.writeUInt32LE(len, 8);
    } else {
      if (len > 0xffff) throw new RangeError(`value too long for ${e.vr} in (${e.tag.toString(16)})`);
      h = Buffer.alloc(8);
      h.write(e.vr, 4, 'latin1');
      h.writeUInt16LE(len, 6);
    }
    h.writeUInt16LE(e.tag >>> 16, 0);
    h.writeUInt16LE(e.tag & 0xffff, 2);
    out.push(h, ...parts);
    total += h.length + len;
  }
  return total;
}

/**
 * Encode a Part 10 file: preamble, meta header (always explicit LE) and the
 * dataset in the given transfer syntax. Returns the chunks to write in order.
 */
export function encodePart10(ds: Dataset, sopClassUid: string, sopInstanceUid: string, ts: TransferSyntax, sourceAe = 'IMAGOSYNTH'): Buffer[] {
  const meta: Dataset = [
    el(0x00020001, 'OB', Buffer.from([0, 1])),
    el(0x00020002, 'UI', sopClassUid),
    el(0x00020003, 'UI', sopInstanceUid),
    el(0x00020010, 'UI', ts),
    el(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID),
    el(0x00020013, 'SH', IMPLEMENTATION_VERSION),
    el(0x00020016, 'AE', sourceAe),
  ];
  const metaParts: Buffer[] = [];
  const metaLen = encodeElements(meta, true, metaParts);
  const pre = Buffer.alloc(128 + 4 + 12);
  pre.write('DICM', 128, 'latin1');
  pre.writeUInt16LE(0x0002, 132);
  pre.writeUInt16LE(0x0000, 134);
  pre.write('UL', 136, 'latin1');
  pre.writeUInt16LE(4, 138);
  pre.writeUInt32LE(metaLen, 140);
  const body: Buffer[] = [];
  encodeElements(ds, ts !== TS.implicitLE, body);
  return [pre, ...metaParts, ...body];
}

/** DICOM date (YYYYMMDD) from an ISO date or Date. */
export function da(d: string | Date): string {
  const s = typeof d === 'string' ? d : d.toISOString();
  return s.slice(0, 10).replaceAll('-', '');
}

/** DICOM time (HHMMSS) from a Date. */
export function tm(d: Date): string {
  return d.toISOString().slice(11, 19).replaceAll(':', '');
}

/** Decimal String: at most 16 characters. */
export function ds(n: number): string {
  let s = String(Number(n.toPrecision(10)));
  if (s.length > 16) s = n.toExponential(8);
  return s;
}
