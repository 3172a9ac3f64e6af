import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import {
  BufferSource, ChunkList, DicomParseError, FileSource, TAG, SECONDARY_CAPTURE_CLASSES, UNDEFINED,
  elementHeader, encodeElement, headerFromParsed, itemHeader, padValue, parseDicom, stringValue,
  type ByteSource, type DicomElement, type DicomHeader, type DicomItem, type Encoding, type ParsedDicom,
} from '@imago/dicom';
import { DescriptorCleaner, dateForms, nameParts, shiftDaValue, shiftDtValue } from './clean.js';
import { Keys } from './keys.js';
import { buildActionTable, type ActionTable } from './profile.js';
import { PROFILE_SOURCE } from './profile-table.generated.js';
import type { Action } from './profile-types.js';
import { enabledColumns, methodCodes, resolveOptions, type DeidOptions } from './options.js';

export interface Assessment {
  decision: 'ok' | 'quarantine';
  /** Machine-readable reason code, e.g. `burned-in-annotation`, `modality:US`, `secondary-capture`, `overlay`. */
  reason?: string;
  /** Human-readable explanation (no PHI). */
  detail?: string;
}

export interface DeidReport {
  /** Count of elements per action (D, Z, X, K, C, U), plus `private` (removed), `uid` (remapped values), `shifted`, `cleaned`. */
  counts: Record<string, number>;
  /** Top-level tags acted on, e.g. `{"(0010,0010)": "pseudonym"}`. Never values. */
  tags: Record<string, string>;
}

export interface DeidResult extends Assessment {
  /** True when an output file/buffer was produced. */
  written: boolean;
  pseudonym: string;
  /** PatientID was empty; the pseudonym was derived from the Study Instance UID instead. */
  patientIdMissing: boolean;
  sopClassUID?: string;
  sopInstanceUID?: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  modality?: string;
  transferSyntaxUID: string;
  dateShiftDays?: number;
  /** sha256 (hex) of the output bytes. */
  sha256?: string;
  bytes?: number;
  report: DeidReport;
}

export interface DeidRunOptions {
  /** A person released this quarantined instance: de-identify it anyway. */
  released?: boolean;
}

export interface CreateDeidEngineInput {
  secret: string | Buffer;
  options?: Partial<DeidOptions>;
  /** Issuer of Patient ID used when an instance has none (e.g. the site code). */
  issuerDefault?: string;
  /** Extra modalities allowed through the burned-in check (added to options.allowModalities). */
  allow?: string[];
  /** Files up to this size are read whole; larger ones are parsed in blocks and pixel data streamed (default 16 MiB). */
  smallFileBytes?: number;
}

export interface DeidEngine {
  readonly options: DeidOptions;
  deidentifyFile(inPath: string, outPath: string, run?: DeidRunOptions): Promise<DeidResult>;
  /** Spools the stream to a temp file next to outPath (bounded memory), then de-identifies it. */
  deidentifyStream(input: Readable, outPath: string, run?: DeidRunOptions): Promise<DeidResult>;
  deidentifyBuffer(input: Buffer, run?: DeidRunOptions): DeidResult & { output?: Buffer };
  pseudonymFor(patientId: string, issuer?: string): string;
  remapUid(uid: string): string;
  dateShiftFor(patientId: string, issuer?: string): number;
  assess(header: DicomHeader): Assessment;
}

const RISKY_MODALITIES = new Set(['US', 'SC', 'OT', 'XC']);
/** UI attributes that name classes, syntaxes or coding schemes: never remapped. */
const CLASS_UID_TAGS = new Set([
  0x00020002, 0x00020010, 0x00020012, 0x00080016, 0x00081150, 0x0008001a, 0x00080062, 0x0008010c, 0x0008010d,
  0x00041510, 0x00041512, 0x0004151a, 0x00081090, 0x00400554, 0x0040a171, 0x00620021, 0x00081164, 0x0008114c,
  0x0072000a, 0x00080106, 0x0008010b, 0x00189506, 0x0040e001,
]);
/** Code attributes kept as-is inside cleaned/dummied structured content. */
const CODE_TAGS = new Set([0x00080100, 0x00080102, 0x00080103, 0x00080104, 0x00080105, 0x00080106, 0x00080119, 0x00080120, 0x0008010f, 0x00080117, 0x0008010b, 0x0040a040, 0x0040a010, 0x0040a300, 0x0040a30a]);
const TEXT_VRS = new Set(['LO', 'LT', 'SH', 'ST', 'UC', 'UT']);
const DUMMY_VRS = new Set(['AE', 'AS', 'DA', 'DT', 'TM', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT', 'UR']);
const MARKER_TAGS = new Set([0x00120062, 0x00120063, 0x00120064, 0x00280303]);
/** Identifier attributes collected (anywhere in the data set) for Clean Descriptors. */
const NAME_TAGS = new Set([0x00100010, 0x00101001, 0x00101005, 0x00101060, 0x00080090, 0x00081050, 0x00081060, 0x00081070, 0x00321032, 0x00081048, 0x00102297, 0x0040a123, 0x00400006, 0x0040a075, 0x00081052, 0x00081062]);
const ID_TAGS = new Set([0x00100020, 0x00101000, 0x00101090, 0x00080050, 0x00200010, 0x00401001, 0x00400253, 0x00400009, 0x00102154, 0x00380010, 0x00100021, 0x00101040, 0x00080080, 0x00080081, 0x00081010, 0x00181000, 0x00102180, 0x00102150, 0x00102152, 0x00380400]);
const DATE_ID_TAGS = new Set([0x00100030]);

const fmt = (tag: number): string => {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
};

function dummyFor(vr: string): Buffer {
  switch (vr) {
    case 'AE': return Buffer.from('ANON');
    case 'AS': return Buffer.from('000Y');
    case 'CS': return Buffer.from('ANONYMIZED');
    case 'DA': return Buffer.from('19000101');
    case 'DT': return Buffer.from('19000101000000');
    case 'TM': return Buffer.from('000000');
    case 'DS': case 'IS': return Buffer.from('0 ');
    case 'UR': return Buffer.from('about:blank ');
    case 'AT': case 'FL': case 'OF': case 'SL': case 'UL': case 'OL': return Buffer.alloc(4);
    case 'FD': case 'OD': case 'SV': case 'UV': case 'OV': return Buffer.alloc(8);
    case 'SS': case 'US': case 'OB': case 'OW': case 'UN': return Buffer.alloc(2);
    default: return Buffer.from('ANONYMIZED');
  }
}

type Mode = 'normal' | 'clean' | 'dummy';

interface Out {
  tag: number;
  chunks: ChunkList;
}

/** Per-instance transformation state. */
class Job {
  readonly report: DeidReport = { counts: {}, tags: {} };
  cleaner: DescriptorCleaner | null = null;
  shift = 0;
  pseudonym = '';
  inDirectoryRecord = 0;
  constructor(
    readonly engine: Engine,
    readonly p: ParsedDicom,
    readonly src: ByteSource,
  ) {}

  count(k: string, n = 1): void {
    this.report.counts[k] = (this.report.counts[k] ?? 0) + n;
  }
  note(depth: number, tag: number, what: string): void {
    if (depth === 0) this.report.tags[fmt(tag)] = what;
  }
  str(el: DicomElement): string {
    return stringValue(this.src, el);
  }
  vrOut(el: DicomElement): string {
    return el.fileVr ?? el.vr;
  }

  /** Collect identifiers anywhere in the data set for Clean Descriptors. */
  collect(elements: DicomElement[], ids: string[], depth = 0): void {
    for (const el of elements) {
      if (el.items) {
        for (const it of el.items) this.collect(it.elements, ids, depth + 1);
        continue;
      }
      if (el.length === 0 || el.length > 1024) continue;
      if (NAME_TAGS.has(el.tag)) ids.push(...nameParts(this.str(el)));
      else if (ID_TAGS.has(el.tag)) {
        const v = this.str(el).trim();
        ids.push(...v.split('\\'));
        if (el.tag === 0x00101040 || el.tag === 0x00080081 || el.tag === 0x00080080) ids.push(...v.split(/[\s,^\\]+/).filter((x) => x.length >= 3));
      } else if (DATE_ID_TAGS.has(el.tag)) ids.push(...dateForms(this.str(el)));
    }
  }

  remapValue(el: DicomElement): Buffer {
    const vals = this.str(el).split('\\').map((u) => u.replace(/[\0 ]/g, ''));
    const out = vals.map((u) => (u && !u.startsWith('1.2.840.10008.') ? this.engine.remapUid(u) : u));
    this.count('uid', vals.filter((u, i) => u !== out[i]).length);
    return padValue(out.join('\\'), 'UI');
  }

  replace(el: DicomElement, value: Buffer | string): ChunkList {
    const c = new ChunkList();
    c.push(encodeElement(el.tag, this.vrOut(el), value, el.enc));
    return c;
  }
  keep(el: DicomElement): ChunkList {
    const c = new ChunkList();
    c.pushRange(el.start, el.end);
    return c;
  }

  sequence(el: DicomElement, mode: Mode, depth: number, items?: DicomItem[]): ChunkList {
    const its = items ?? el.items ?? [];
    const body = new ChunkList();
    const enc = its[0]?.enc ?? el.enc;
    const dir = el.tag === 0x00041220 ? 1 : 0;
    this.inDirectoryRecord += dir;
    for (const it of its) {
      const inner = this.dataset(it.elements, mode, depth + 1, it.enc);
      if (it.undefinedLength) {
        body.push(itemHeader(TAG.ItemTag, UNDEFINED, it.enc));
        body.append(inner);
        body.push(itemHeader(TAG.ItemDelimitation, 0, it.enc));
      } else {
        body.push(itemHeader(TAG.ItemTag, inner.size, it.enc));
        body.append(inner);
      }
    }
    this.inDirectoryRecord -= dir;
    const c = new ChunkList();
    // Items of a UN-encoded sequence are implicit VR; the element itself keeps its own header encoding.
    const vr = el.fileVr === 'UN' ? 'UN' : 'SQ';
    if (el.undefinedLength) {
      c.push(elementHeader(el.tag, vr, UNDEFINED, el.enc));
      c.append(body);
      c.push(itemHeader(TAG.SequenceDelimitation, 0, enc));
    } else {
      c.push(elementHeader(el.tag, vr, body.size, el.enc));
      c.append(body);
    }
    return c;
  }

  /** Transform a list of elements (a data set or an item). */
  dataset(elements: DicomElement[], mode: Mode, depth: number, enc: Encoding): ChunkList {
    const outs: Out[] = [];
    const o = this.engine.options;
    // Private blocks kept under Retain Safe Private: (group, block) -> creator.
    let keptPrivate: Set<number> | null = null;
    if (o.retainSafePrivate) {
      keptPrivate = new Set();
      const creators = new Map<number, string>();
      for (const el of elements) {
        const g = el.tag >>> 16;
        const e = el.tag & 0xffff;
        if (g % 2 === 1 && e >= 0x10 && e <= 0xff) creators.set(((g << 8) | e) >>> 0, this.str(el).trim());
      }
      for (const el of elements) {
        const g = el.tag >>> 16;
        const e = el.tag & 0xffff;
        if (g % 2 === 0 || e < 0x1000 || el.items) continue;
        const creator = creators.get(((g << 8) | (e >>> 8)) >>> 0);
        if (creator && o.safePrivateAllowList.some((s) => s.group === g && s.element === (e & 0xff) && s.creator === creator)) {
          keptPrivate.add(el.tag);
          keptPrivate.add(((g << 16) | (e >>> 8)) >>> 0);
        }
      }
    }
    let issuer: string | undefined;
    if (depth > 0) {
      const iss = elements.find((e) => e.tag === TAG.IssuerOfPatientID);
      issuer = iss ? this.str(iss).trim() : undefined;
    }
    for (const el of elements) {
      const out = this.element(el, mode, depth, keptPrivate, issuer, elements);
      if (out) outs.push({ tag: el.tag, chunks: out });
    }
    if (depth === 0) this.addTopLevel(outs, enc);
    outs.sort((a, b) => a.tag - b.tag);
    const c = new ChunkList();
    for (const x of outs) c.append(x.chunks);
    return c;
  }

  element(el: DicomElement, mode: Mode, depth: number, keptPrivate: Set<number> | null, issuer: string | undefined, siblings: DicomElement[]): ChunkList | null {
    const tag = el.tag;
    const group = tag >>> 16;
    const elem = tag & 0xffff;
    const o = this.engine.options;
    if (elem === 0 || group === 0x0002 || tag === 0xfffcfffc || group === 0xfffe) return null;
    if (group % 2 === 1) {
      if (keptPrivate?.has(tag)) {
        this.count('K');
        return this.keep(el);
      }
      this.count('private');
      return null;
    }
    if (depth === 0 && (tag === TAG.PixelData || tag === TAG.FloatPixelData || tag === TAG.DoubleFloatPixelData)) return this.keep(el);
    if (depth === 0 && (tag === TAG.PatientID || tag === TAG.PatientName || MARKER_TAGS.has(tag))) return null; // re-added
    if (tag === TAG.PatientID) {
      this.note(depth, tag, 'pseudonym');
      return this.replace(el, this.engine.pseudonymFor(this.str(el).trim(), issuer));
    }
    if (tag === TAG.PatientName && siblings.some((s) => s.tag === TAG.PatientID)) {
      const pid = siblings.find((s) => s.tag === TAG.PatientID)!;
      return this.replace(el, this.engine.pseudonymFor(this.str(pid).trim(), issuer));
    }
    const hit = this.engine.table.actionFor(tag);
    const vr = el.vr;
    if (!hit) {
      if (vr === 'UI') return o.retainUIDs || CLASS_UID_TAGS.has(tag) ? this.keep(el) : this.replace(el, this.remapValue(el));
      if (el.items) return this.sequence(el, mode, depth);
      if (mode === 'dummy' && DUMMY_VRS.has(vr) && !CODE_TAGS.has(tag)) {
        this.count('D');
        return el.length === 0 ? this.keep(el) : this.replace(el, dummyFor(vr));
      }
      if (mode === 'clean' && !CODE_TAGS.has(tag)) {
        if (TEXT_VRS.has(vr)) return this.clean(el, depth);
        if (vr === 'PN' || vr === 'AE' || vr === 'UR') return el.length === 0 ? this.keep(el) : this.replace(el, dummyFor(vr));
      }
      if (vr === 'DA' || vr === 'DT') {
        if (o.retainLongitudinalModifiedDates) return this.shiftEl(el, depth);
        if (mode !== 'normal' && !o.retainLongitudinalFullDates) return this.replace(el, dummyFor(vr));
      }
      if (vr === 'TM' && mode !== 'normal' && !o.retainLongitudinalModifiedDates && !o.retainLongitudinalFullDates) return this.replace(el, dummyFor(vr));
      return this.keep(el);
    }
    const action: Action = hit.action;
    this.count(action);
    this.note(depth, tag, action);
    switch (action) {
      case 'X':
        return null;
      case 'K':
        if (el.items) return this.sequence(el, mode, depth);
        return this.keep(el);
      case 'Z':
        if (el.items) return this.sequence(el, mode, depth, []);
        // Directory records make Study ID and similar Type 1: a dummy keeps the DICOMDIR valid.
        if (this.inDirectoryRecord > 0 && el.length > 0) return this.replace(el, dummyFor(vr));
        return this.replace(el, Buffer.alloc(0));
      case 'D':
        if (el.items) return this.sequence(el, 'dummy', depth);
        if (vr === 'UI') return this.replace(el, this.remapValue(el));
        return this.replace(el, dummyFor(vr));
      case 'U':
        if (el.items) return this.sequence(el, mode, depth);
        if (o.retainUIDs) return this.keep(el);
        return this.replace(el, this.remapValue(el));
      case 'C':
        if (el.items) return this.sequence(el, 'clean', depth);
        if (vr === 'DA' || vr === 'DT') return o.retainLongitudinalModifiedDates ? this.shiftEl(el, depth) : this.replace(el, Buffer.alloc(0));
        if (vr === 'TM') return this.keep(el); // whole-day shifts leave times valid
        if (TEXT_VRS.has(vr) || vr === 'UN') return this.clean(el, depth, hit.row.basic === 'D');
        if (vr === 'PN') return this.replace(el, dummyFor(vr));
        if (vr === 'UI') return this.replace(el, this.remapValue(el));
        return this.keep(el);
    }
  }

  shiftEl(el: DicomElement, depth: number): ChunkList {
    const v = this.str(el);
    if (!v.trim()) return this.keep(el);
    this.count('shifted');
    this.note(depth, el.tag, 'shifted');
    return this.replace(el, el.vr === 'DT' ? shiftDtValue(v, this.shift) : shiftDaValue(v, this.shift));
  }

  /** Clean a descriptor; `required` (Basic action D) puts a dummy in place of a value cleaned to nothing. */
  clean(el: DicomElement, depth: number, required = false): ChunkList {
    if (!this.cleaner) return this.replace(el, required ? dummyFor(el.vr) : Buffer.alloc(0));
    const v = this.src.read(el.valueStart, el.length).toString('latin1').replace(/[\0 ]+$/, '');
    let c = this.cleaner.clean(v);
    if (c === v) return this.keep(el);
    if (!c && required) c = dummyFor(el.vr).toString('latin1');
    this.count('cleaned');
    this.note(depth, el.tag, 'cleaned');
    return this.replace(el, c);
  }

  addTopLevel(outs: Out[], enc: Encoding): void {
    const o = this.engine.options;
    const add = (tag: number, vr: string, v: string) => {
      const c = new ChunkList();
      c.push(encodeElement(tag, vr, v, enc));
      outs.push({ tag, chunks: c });
    };
    add(TAG.PatientName, 'PN', this.pseudonym);
    add(TAG.PatientID, 'LO', this.pseudonym);
    this.report.tags[fmt(TAG.PatientID)] = 'pseudonym';
    this.report.tags[fmt(TAG.PatientName)] = 'pseudonym';
    add(0x00120062, 'CS', 'YES');
    const codes = methodCodes(o);
    add(0x00120063, 'LO', [`${PROFILE_SOURCE} Basic Profile`.slice(0, 64), ...codes.slice(1).map((c) => c.meaning.slice(0, 64))].join('\\'));
    const seq = new ChunkList();
    const body = new ChunkList();
    for (const c of codes) {
      const item = Buffer.concat([
        encodeElement(0x00080100, 'SH', c.code, enc),
        encodeElement(0x00080102, 'SH', 'DCM', enc),
        encodeElement(0x00080104, 'LO', c.meaning, enc),
      ]);
      body.push(itemHeader(TAG.ItemTag, item.length, enc));
      body.push(item);
    }
    seq.push(elementHeader(0x00120064, 'SQ', body.size, enc));
    seq.append(body);
    outs.push({ tag: 0x00120064, chunks: seq });
    add(0x00280303, 'CS', o.retainLongitudinalModifiedDates ? 'MODIFIED' : o.retainLongitudinalFullDates ? 'UNMODIFIED' : 'REMOVED');
  }
}

function assembleMeta(p: ParsedDicom, sopClass: string, sopInstance: string): Buffer {
  const le: Encoding = { explicit: true, little: true };
  const body = Buffer.concat([
    encodeElement(0x00020001, 'OB', Buffer.from([0, 1]), le),
    encodeElement(0x00020002, 'UI', sopClass, le),
    encodeElement(0x00020003, 'UI', sopInstance, le),
    encodeElement(0x00020010, 'UI', p.transferSyntaxUID, le),
    encodeElement(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID, le),
    encodeElement(0x00020013, 'SH', 'IMAGO_DEID_1', le),
  ]);
  const gl = Buffer.alloc(12);
  gl.writeUInt16LE(0x0002, 0);
  gl.writeUInt16LE(0x0000, 2);
  gl.write('UL', 4, 'latin1');
  gl.writeUInt16LE(4, 6);
  gl.writeUInt32LE(body.length, 8);
  const pre = Buffer.alloc(132);
  pre.write('DICM', 128, 'latin1');
  return Buffer.concat([pre, gl, body]);
}

/** Imago's implementation class UID (a fixed 2.25 UUID-derived UID). */
export const IMPLEMENTATION_CLASS_UID = '2.25.190748431837617542128359367183945310731';

interface Prepared {
  result: DeidResult;
  /** Meta + data set before any range that must be streamed. */
  parts: Array<Buffer | { start: number; end: number }>;
  source: ByteSource;
}

export class Engine implements DeidEngine {
  readonly options: DeidOptions;
  readonly table: ActionTable;
  readonly keys: Keys;
  private uidCache = new Map<string, string>();
  constructor(private input: CreateDeidEngineInput) {
    this.options = resolveOptions(input.options);
    if (input.allow?.length) this.options.allowModalities = [...this.options.allowModalities, ...input.allow];
    this.table = buildActionTable(enabledColumns(this.options));
    this.keys = new Keys(input.secret);
  }

  pseudonymFor(patientId: string, issuer?: string): string {
    return this.keys.pseudonym(patientId, issuer || this.input.issuerDefault || '');
  }
  dateShiftFor(patientId: string, issuer?: string): number {
    return this.keys.shiftDays([issuer || this.input.issuerDefault || '', patientId], this.options.dateShiftMinDays, this.options.dateShiftMaxDays);
  }
  remapUid(uid: string): string {
    let r = this.uidCache.get(uid);
    if (!r) {
      r = this.keys.uid(uid);
      if (this.uidCache.size > 200_000) this.uidCache.clear();
      this.uidCache.set(uid, r);
    }
    return r;
  }

  assess(h: DicomHeader): Assessment {
    const o = this.options;
    if ((h.burnedInAnnotation ?? '').toUpperCase() === 'YES') {
      return { decision: 'quarantine', reason: 'burned-in-annotation', detail: 'BurnedInAnnotation (0028,0301) is YES' };
    }
    const mod = (h.modality ?? '').toUpperCase();
    if (RISKY_MODALITIES.has(mod) && !o.allowModalities.map((m) => m.toUpperCase()).includes(mod)) {
      return { decision: 'quarantine', reason: `modality:${mod}`, detail: `modality ${mod} often carries burned-in text; not in allowModalities` };
    }
    if (h.sopClassUID && SECONDARY_CAPTURE_CLASSES.has(h.sopClassUID) && !o.allowSecondaryCapture) {
      return { decision: 'quarantine', reason: 'secondary-capture', detail: 'Secondary Capture SOP class; allowSecondaryCapture is off' };
    }
    if (o.quarantineOverlays && h.overlayGroups.length > 0) {
      return { decision: 'quarantine', reason: 'overlay', detail: `overlay plane(s) ${h.overlayGroups.map((g) => g.toString(16).toUpperCase()).join(',')} carry data or text` };
    }
    return { decision: 'ok' };
  }

  /** Parse, assess, and (unless quarantined) build the output parts. */
  prepare(src: ByteSource, run: DeidRunOptions): Prepared {
    let p: ParsedDicom;
    try {
      p = parseDicom(src);
    } catch (e) {
      if (e instanceof DicomParseError) throw e;
      throw new DicomParseError('unreadable data set', { cause: e });
    }
    const h = headerFromParsed(p);
    const a = this.assess(h);
    const issuer = h.issuerOfPatientID?.trim() || this.input.issuerDefault || '';
    const pid = (h.patientID ?? '').trim();
    const patientIdMissing = !pid;
    const key = pid || `study:${h.studyInstanceUID ?? ''}`;
    const job = new Job(this, p, p.source);
    job.pseudonym = this.keys.pseudonym(key, issuer);
    job.shift = this.keys.shiftDays([issuer, key], this.options.dateShiftMinDays, this.options.dateShiftMaxDays);
    const base: DeidResult = {
      ...a,
      written: false,
      pseudonym: job.pseudonym,
      patientIdMissing,
      transferSyntaxUID: p.transferSyntaxUID,
      ...(h.modality ? { modality: h.modality } : {}),
      ...(h.sopClassUID ? { sopClassUID: h.sopClassUID } : {}),
      report: job.report,
    };
    if (a.decision === 'quarantine' && !run.released) return { result: base, parts: [], source: p.source };
    if (!h.sopClassUID) throw new DicomParseError('no SOP Class UID in the data set or meta header');
    if (this.options.cleanDescriptors || this.options.cleanStructuredContent) {
      const ids: string[] = [];
      job.collect(p.dataset, ids);
      job.cleaner = new DescriptorCleaner(ids);
    }
    const ds = job.dataset(p.dataset, 'normal', 0, p.enc);
    const sopInstance = h.sopInstanceUID ? (this.options.retainUIDs ? h.sopInstanceUID : this.remapUid(h.sopInstanceUID)) : this.remapUid(`${h.studyInstanceUID ?? ''}/${h.sopClassUID}/${job.pseudonym}`);
    const meta = assembleMeta(p, h.sopClassUID, sopInstance);
    const map = (u?: string) => (u ? (this.options.retainUIDs ? u : this.remapUid(u)) : undefined);
    const result: DeidResult = {
      ...base,
      sopInstanceUID: sopInstance,
      ...(h.studyInstanceUID ? { studyInstanceUID: map(h.studyInstanceUID)! } : {}),
      ...(h.seriesInstanceUID ? { seriesInstanceUID: map(h.seriesInstanceUID)! } : {}),
      ...(this.options.retainLongitudinalModifiedDates ? { dateShiftDays: job.shift } : {}),
    };
    let parts: Prepared['parts'] = [meta, ...ds.chunks];
    if (p.deflated) {
      const inflated = Buffer.concat(ds.chunks.map((c) => (Buffer.isBuffer(c) ? c : p.source.read(c.start, c.end - c.start))));
      parts = [meta, deflateRawSync(inflated)];
    }
    if (p.dataset.some((e) => e.tag === 0x00041220)) parts = [fixDicomdirOffsets(p, parts)];
    return { result, parts, source: p.source };
  }

  deidentifyBuffer(input: Buffer, run: DeidRunOptions = {}): DeidResult & { output?: Buffer } {
    const src = new BufferSource(input);
    const prep = this.prepare(src, run);
    if (prep.parts.length === 0) return prep.result;
    const output = Buffer.concat(prep.parts.map((c) => (Buffer.isBuffer(c) ? c : prep.source.read(c.start, c.end - c.start))));
    return { ...prep.result, written: true, output, bytes: output.length, sha256: createHash('sha256').update(output).digest('hex') };
  }

  async deidentifyFile(inPath: string, outPath: string, run: DeidRunOptions = {}): Promise<DeidResult> {
    const size = (await stat(inPath)).size;
    // Small files are read whole (fastest); large ones are parsed through a block reader and their pixel data streamed.
    const src: ByteSource = size <= (this.input.smallFileBytes ?? SMALL_FILE) ? new BufferSource(await readFile(inPath)) : new FileSource(inPath);
    try {
      const prep = this.prepare(src, run);
      if (prep.parts.length === 0) return prep.result;
      await mkdir(dirname(outPath), { recursive: true });
      const tmp = `${outPath}.${randomBytes(4).toString('hex')}.part`;
      const hash = createHash('sha256');
      let bytes = 0;
      try {
        if (src instanceof BufferSource || prep.source !== src) {
          const buf = Buffer.concat(prep.parts.map((c) => (Buffer.isBuffer(c) ? c : prep.source.read(c.start, c.end - c.start))));
          hash.update(buf);
          bytes = buf.length;
          const fh = await open(tmp, 'w');
          try {
            await fh.writeFile(buf);
          } finally {
            await fh.close();
          }
        } else {
          const ws = createWriteStream(tmp);
          const fileSrc = src as FileSource;
          async function* gen(): AsyncGenerator<Buffer> {
            let pending: Buffer[] = [];
            for (const c of prep.parts) {
              if (Buffer.isBuffer(c)) {
                pending.push(c);
                continue;
              }
              if (c.end - c.start <= 65536) {
                pending.push(Buffer.from(fileSrc.read(c.start, c.end - c.start)));
                continue;
              }
              if (pending.length) yield Buffer.concat(pending);
              pending = [];
              const rs: ReadStream = createReadStream(inPath, { start: c.start, end: c.end - 1, highWaterMark: 1 << 20 });
              for await (const chunk of rs) yield chunk as Buffer;
            }
            if (pending.length) yield Buffer.concat(pending);
          }
          async function* hashing(source: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
            for await (const b of source) {
              hash.update(b);
              bytes += b.length;
              yield b;
            }
          }
          await pipeline(hashing(gen()), ws);
        }
        await rename(tmp, outPath);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      return { ...prep.result, written: true, bytes, sha256: hash.digest('hex') };
    } finally {
      src.close();
    }
  }

  async deidentifyStream(input: Readable, outPath: string, run: DeidRunOptions = {}): Promise<DeidResult> {
    await mkdir(dirname(outPath), { recursive: true });
    const spool = `${outPath}.${randomBytes(4).toString('hex')}.in`;
    try {
      await pipeline(input, createWriteStream(spool));
      return await this.deidentifyFile(spool, outPath, run);
    } finally {
      await rm(spool, { force: true });
    }
  }
}

const SMALL_FILE = 16 * 1024 * 1024;

/**
 * DICOMDIR directory records point at each other by absolute byte offsets.
 * After rewriting, parse the output, map old record offsets to new ones by
 * record order, and patch the four offset attributes in place.
 */
function fixDicomdirOffsets(p: ParsedDicom, parts: Array<Buffer | { start: number; end: number }>): Buffer {
  const out = Buffer.concat(parts.map((c) => (Buffer.isBuffer(c) ? c : p.source.read(c.start, c.end - c.start))));
  const oldRecs = p.dataset.find((e) => e.tag === 0x00041220)?.items ?? [];
  const np = parseDicom(new BufferSource(out));
  const newSeq = np.dataset.find((e) => e.tag === 0x00041220);
  const newRecs = newSeq?.items ?? [];
  if (oldRecs.length !== newRecs.length) return out;
  const map = new Map<number, number>();
  oldRecs.forEach((r, i) => map.set(r.start, newRecs[i]!.start));
  const patch = (el: DicomElement | undefined) => {
    if (!el || el.length !== 4) return;
    const old = np.enc.little ? out.readUInt32LE(el.valueStart) : out.readUInt32BE(el.valueStart);
    const nv = old === 0 ? 0 : (map.get(old) ?? 0);
    if (np.enc.little) out.writeUInt32LE(nv, el.valueStart);
    else out.writeUInt32BE(nv, el.valueStart);
  };
  patch(np.dataset.find((e) => e.tag === 0x00041200));
  patch(np.dataset.find((e) => e.tag === 0x00041202));
  for (const r of newRecs) {
    patch(r.elements.find((e) => e.tag === 0x00041400));
    patch(r.elements.find((e) => e.tag === 0x00041420));
  }
  return out;
}

export function createDeidEngine(input: CreateDeidEngineInput): DeidEngine {
  return new Engine(input);
}
