import dicomParser from 'dicom-parser';
import { createRequire } from 'node:module';
import { unprocessable } from '@imago/core';

/** DICOM JSON (PS3.18 F.2): tag → {vr, Value | InlineBinary}. */
export type DicomJson = Record<string, DicomJsonAttr>;
export interface DicomJsonAttr {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

const dcmjs: unknown = createRequire(import.meta.url)('dcmjs');
const dictionary = (dcmjs as { data: { DicomMetaDictionary: { dictionary: Record<string, { vr: string; name: string } | undefined>; nameMap: Record<string, { tag: string } | undefined> } } }).data.DicomMetaDictionary;

/** `x00100020` → `(0010,0020)` */
function dictKey(tag: string): string {
  const t = tag.slice(1).toUpperCase();
  return `(${t.slice(0, 4)},${t.slice(4)})`;
}

export function vrFromDictionary(tag: string): string {
  const e = dictionary.dictionary[dictKey(tag)];
  const vr = e?.vr ?? 'UN';
  // Ambiguous VRs (e.g. "US or SS") resolve to the first.
  return vr.slice(0, 2);
}

/** Keyword (e.g. `StudyDate`) or 8-hex tag → 8-hex upper-case tag, or null. */
export function tagOf(keyOrTag: string): string | null {
  if (/^[0-9a-fA-F]{8}$/.test(keyOrTag)) return keyOrTag.toUpperCase();
  const e = dictionary.nameMap[keyOrTag];
  if (!e) return null;
  return e.tag.replace(/[(),]/g, '').toUpperCase();
}

const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DT', 'LO', 'LT', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
const INLINE_BINARY_MAX = 1024;

type DataSet = dicomParser.DataSet;

function elementToJson(ds: DataSet, el: dicomParser.Element, vr: string): DicomJsonAttr | null {
  const tag = el.tag;
  const attr: DicomJsonAttr = { vr };
  if (vr === 'SQ') {
    const items = (el.items ?? []).map((it) => (it.dataSet ? dataSetToJson(it.dataSet) : {}));
    if (items.length) attr.Value = items;
    return attr;
  }
  if (el.length === 0 || el.length === undefined) return attr;
  if (STRING_VRS.has(vr)) {
    const raw = ds.string(tag) ?? '';
    const parts = vr === 'LT' || vr === 'ST' || vr === 'UT' || vr === 'UR' ? [raw] : raw.split('\\');
    const vals = parts.map((p) => p.replace(/[\0 ]+$/, '').replace(/^ +/, ''));
    if (vals.some((v) => v !== '')) attr.Value = vals.map((v) => (v === '' ? null : v));
    return attr;
  }
  if (vr === 'PN') {
    const raw = (ds.string(tag) ?? '').trim();
    if (raw) attr.Value = raw.split('\\').map((p) => {
      const groups = p.split('=');
      const o: Record<string, string> = {};
      if (groups[0]) o.Alphabetic = groups[0];
      if (groups[1]) o.Ideographic = groups[1];
      if (groups[2]) o.Phonetic = groups[2];
      return o;
    });
    return attr;
  }
  if (vr === 'IS' || vr === 'DS') {
    const raw = ds.string(tag) ?? '';
    const vals = raw.split('\\').map((s) => s.trim()).filter((s) => s !== '').map(Number).filter((n) => Number.isFinite(n));
    if (vals.length) attr.Value = vals;
    return attr;
  }
  const numeric: Record<string, [number, (i: number) => number | undefined]> = {
    US: [2, (i) => ds.uint16(tag, i)], SS: [2, (i) => ds.int16(tag, i)], UL: [4, (i) => ds.uint32(tag, i)], SL: [4, (i) => ds.int32(tag, i)],
    FL: [4, (i) => ds.float(tag, i)], FD: [8, (i) => ds.double(tag, i)],
  };
  const n = numeric[vr];
  if (n) {
    const count = Math.floor(el.length / n[0]);
    const vals: number[] = [];
    for (let i = 0; i < count && i < 4096; i++) {
      const v = n[1](i);
      if (v !== undefined) vals.push(v);
    }
    if (vals.length) attr.Value = vals;
    return attr;
  }
  if (vr === 'AT') {
    const vals: string[] = [];
    for (let i = 0; i + 4 <= el.length; i += 4) {
      const g = ds.uint16(tag, i / 2)!;
      const e = ds.uint16(tag, i / 2 + 1)!;
      vals.push(g.toString(16).padStart(4, '0').toUpperCase() + e.toString(16).padStart(4, '0').toUpperCase());
    }
    attr.Value = vals;
    return attr;
  }
  // Binary VRs (OB, OW, OF, OD, OL, OV, UN, SV, UV): small values inline, large ones left out.
  if (el.length <= INLINE_BINARY_MAX && el.dataOffset + el.length <= ds.byteArray.length) {
    attr.InlineBinary = Buffer.from(ds.byteArray.buffer, ds.byteArray.byteOffset + el.dataOffset, el.length).toString('base64');
  }
  return attr;
}

export function dataSetToJson(ds: DataSet): DicomJson {
  const out: DicomJson = {};
  for (const tag of Object.keys(ds.elements).sort()) {
    const el = ds.elements[tag]!;
    const t = tag.slice(1).toUpperCase();
    if (t.startsWith('0002') || t === '7FE00010' || t.startsWith('FFFE')) continue;
    // Group length elements are retired and carry nothing useful.
    if (t.endsWith('0000')) continue;
    const vr = el.vr ?? vrFromDictionary(tag);
    const a = elementToJson(ds, el, vr);
    if (a) out[t] = a;
  }
  return out;
}

/** What the hub needs from one instance, read without pixel data. */
export interface InstanceHeader {
  transferSyntax: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  sopClassUid: string;
  patientId: string | null;
  patientBirthDate: string | null;
  patientIdentityRemoved: string | null;
  deidentificationMethod: string | null;
  hasDeidMethodCodes: boolean;
  json: DicomJson;
}

export function str(json: DicomJson, tag: string): string | null {
  const v = json[tag]?.Value?.[0];
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') return (v as { Alphabetic?: string }).Alphabetic ?? null;
  return String(v);
}

export function num(json: DicomJson, tag: string): number | null {
  const v = json[tag]?.Value?.[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

export class HeaderIncomplete extends Error {}

/**
 * Parse the header of a Part 10 instance, stopping at PixelData. `complete`
 * says whether `buf` is the whole file; if it is a prefix and the header runs
 * past it, HeaderIncomplete is thrown so the caller can read the whole blob.
 */
export function parseInstanceHeader(buf: Buffer, complete: boolean): InstanceHeader {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  let ds: DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010', vrCallback: (tag: string) => vrFromDictionary(tag) } as dicomParser.ParseDicomOptions);
  } catch (e) {
    if (!complete) throw new HeaderIncomplete('header extends past the prefix');
    const msg = typeof e === 'string' ? e : (e as Error).message ?? String(e);
    throw unprocessable(`not a readable DICOM Part 10 instance: ${msg.slice(0, 200)}`, { detail: { reason: 'unreadable' } });
  }
  if (!complete && !ds.elements.x7fe00010) {
    // We may have stopped only because the prefix ended.
    throw new HeaderIncomplete('no PixelData within the prefix');
  }
  const json = dataSetToJson(ds);
  const need = (tag: string, name: string) => {
    const v = str(json, tag) ?? (tag === '00080018' ? ds.string('x00020003') ?? null : tag === '00080016' ? ds.string('x00020002') ?? null : null);
    if (!v) throw unprocessable(`instance has no ${name}`, { detail: { reason: 'missing-uid', attribute: name } });
    return v.trim();
  };
  return {
    transferSyntax: (ds.string('x00020010') ?? '1.2.840.10008.1.2').trim(),
    studyUid: need('0020000D', 'StudyInstanceUID'),
    seriesUid: need('0020000E', 'SeriesInstanceUID'),
    sopUid: need('00080018', 'SOPInstanceUID'),
    sopClassUid: need('00080016', 'SOPClassUID'),
    patientId: str(json, '00100020'),
    patientBirthDate: str(json, '00100030'),
    patientIdentityRemoved: str(json, '00120062'),
    deidentificationMethod: str(json, '00120063'),
    hasDeidMethodCodes: !!json['00120064']?.Value?.length,
    json,
  };
}

export const STUDY_TAGS = ['00080005', '00080020', '00080030', '00080050', '00080090', '00081030', '00100010', '00100020', '00100040', '00101010', '00120062', '00120063', '0020000D', '00200010'];
export const SERIES_TAGS = ['00080021', '00080031', '00080060', '00080070', '0008103E', '00081090', '00180015', '0020000E', '00200011'];

export function pick(json: DicomJson, tags: string[]): DicomJson {
  const out: DicomJson = {};
  for (const t of tags) if (json[t]) out[t] = json[t]!;
  return out;
}
