import { inflateRawSync } from 'node:zlib';
import { DicomParseError, fmtTag } from './errors.js';
import { dictionaryVr } from './dictionary.js';
import { BufferSource, type ByteSource } from './source.js';
import { TAG, TS, encodingForTs, type Encoding } from './uids.js';

export const VALID_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FL', 'FD', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW',
  'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
/** VRs with a 2-byte reserved field and a 4-byte length in explicit VR. */
export const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
export const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 64;

export interface DicomItem {
  /** Offset of the item tag. */
  start: number;
  /** Offset just after the item (after its delimiter, if any). */
  end: number;
  undefinedLength: boolean;
  elements: DicomElement[];
  enc: Encoding;
}

export interface DicomElement {
  tag: number;
  /** Effective VR: as written (explicit), or from the dictionary (implicit). */
  vr: string;
  /** VR bytes as written in the file; null for implicit VR. */
  fileVr: string | null;
  /** Offset of the tag. */
  start: number;
  /** Offset of the value. */
  valueStart: number;
  /** Value length in bytes; for undefined length, the bytes up to (not including) the delimiter. */
  length: number;
  undefinedLength: boolean;
  /** Offset just after the element, including any sequence delimiter. */
  end: number;
  /** Items, when the element is a sequence (SQ, or UN/implicit with undefined length). */
  items?: DicomItem[];
  /** Encapsulated (compressed) pixel data: fragments in items. */
  encapsulated?: boolean;
  /** Encoding of this element's header and, for sequences, of its items. */
  enc: Encoding;
}

export interface ParsedDicom {
  /** Source of the file (preamble + meta + data set). */
  fileSource: ByteSource;
  /** Source the data set offsets refer to: the file, or the inflated data set for deflated syntaxes. */
  source: ByteSource;
  hasPreamble: boolean;
  hasMeta: boolean;
  meta: DicomElement[];
  transferSyntaxUID: string;
  /** The transfer syntax was guessed from the data set (no or incomplete meta header). */
  transferSyntaxInferred: boolean;
  enc: Encoding;
  deflated: boolean;
  datasetStart: number;
  dataset: DicomElement[];
  /** Offset (in `source`) where parsing stopped because of `stopBefore`. */
  stoppedAt?: number;
}

export interface ParseOptions {
  /** Stop at the first top-level element whose tag is >= this (e.g. PixelData). */
  stopBefore?: number;
}

const LE: Encoding = { explicit: true, little: true };
const IMPLICIT_LE: Encoding = { explicit: false, little: true };

class Parser {
  stoppedAt: number | undefined;
  trailingPadding = 0;
  constructor(private src: ByteSource, private stopBefore: number | undefined) {}

  need(pos: number, n: number, tag?: number): void {
    if (pos + n > this.src.length) {
      throw new DicomParseError(`truncated: ${n} bytes needed but only ${Math.max(0, this.src.length - pos)} remain`, { offset: pos, tag });
    }
  }
  u16(pos: number, little: boolean): number {
    const b = this.src.read(pos, 2);
    return little ? b.readUInt16LE(0) : b.readUInt16BE(0);
  }
  u32(pos: number, little: boolean): number {
    const b = this.src.read(pos, 4);
    return little ? b.readUInt32LE(0) : b.readUInt32BE(0);
  }
  tagAt(pos: number, little: boolean): number {
    return ((this.u16(pos, little) << 16) | this.u16(pos + 2, little)) >>> 0;
  }

  /** Elements from `pos` until `end` (defined length) or an item delimiter (end === null). */
  elements(pos: number, end: number | null, enc: Encoding, depth: number): { elements: DicomElement[]; pos: number } {
    if (depth > MAX_DEPTH) throw new DicomParseError(`sequences nested deeper than ${MAX_DEPTH}`, { offset: pos });
    const out: DicomElement[] = [];
    const top = depth === 0;
    for (;;) {
      if (end === null) {
        this.need(pos, 8);
        if (this.tagAt(pos, enc.little) === TAG.ItemDelimitation) return { elements: out, pos: pos + 8 };
      } else {
        if (pos >= end) break;
        // Trailing bytes too short to be an element: zero padding is tolerated, anything else is truncation.
        if (top && end - pos < 8) {
          if (this.src.read(pos, end - pos).some((b) => b !== 0)) {
            throw new DicomParseError(`truncated: ${end - pos} trailing bytes cannot hold an element header`, { offset: pos });
          }
          this.trailingPadding = end - pos;
          break;
        }
      }
      const tag = this.tagAt(pos, enc.little);
      if (top && tag === 0 && this.src.read(pos + 4, 4).readUInt32LE(0) === 0) {
        // Zero padding after the data set (seen in the wild): not an element; dropped.
        this.trailingPadding = end! - pos;
        break;
      }
      if (top && this.stopBefore !== undefined && tag >= this.stopBefore) {
        this.stoppedAt = pos;
        break;
      }
      if (tag >>> 16 === 0xfffe) {
        throw new DicomParseError(`unexpected item or delimiter tag ${fmtTag(tag)} in a data set`, { offset: pos });
      }
      const el = this.element(pos, tag, enc, depth);
      if (end !== null && el.end > end) {
        throw new DicomParseError(`element overruns its enclosing item or data set`, { offset: pos, tag });
      }
      out.push(el);
      pos = el.end;
    }
    return { elements: out, pos };
  }

  element(pos: number, tag: number, enc: Encoding, depth: number): DicomElement {
    let vr: string;
    let fileVr: string | null = null;
    let length: number;
    let valueStart: number;
    if (enc.explicit) {
      this.need(pos, 8, tag);
      fileVr = this.src.read(pos + 4, 2).toString('latin1');
      if (!VALID_VRS.has(fileVr)) {
        throw new DicomParseError(`invalid VR ${JSON.stringify(fileVr.replace(/[^ -~]/g, '?'))}`, { offset: pos, tag });
      }
      vr = fileVr;
      if (LONG_VRS.has(vr)) {
        this.need(pos, 12, tag);
        length = this.u32(pos + 8, enc.little);
        valueStart = pos + 12;
      } else {
        length = this.u16(pos + 6, enc.little);
        valueStart = pos + 8;
      }
    } else {
      this.need(pos, 8, tag);
      length = this.u32(pos + 4, enc.little);
      valueStart = pos + 8;
      vr = dictionaryVr(tag);
    }
    const undefinedLength = length === UNDEFINED;
    const isPixel = tag === TAG.PixelData && depth === 0;
    const base = { tag, vr, fileVr, start: pos, valueStart, enc };
    if (undefinedLength && (tag === TAG.PixelData || tag === TAG.FloatPixelData || tag === TAG.DoubleFloatPixelData)) {
      // Encapsulated pixel data: skip fragment items by their lengths.
      let p = valueStart;
      for (;;) {
        this.need(p, 8, tag);
        const t = this.tagAt(p, enc.little);
        const len = this.u32(p + 4, enc.little);
        if (t === TAG.SequenceDelimitation) {
          return { ...base, length: p - valueStart, undefinedLength: true, end: p + 8, encapsulated: true };
        }
        if (t !== TAG.ItemTag) throw new DicomParseError(`encapsulated pixel data: expected a fragment item, found ${fmtTag(t)}`, { offset: p, tag });
        if (len === UNDEFINED) throw new DicomParseError('encapsulated pixel data: fragment with undefined length', { offset: p, tag });
        this.need(p + 8, len, tag);
        p += 8 + len;
      }
    }
    const dictSq = !enc.explicit || vr === 'UN' ? dictionaryVr(tag) === 'SQ' : false;
    if (vr === 'SQ' || (undefinedLength && (vr === 'UN' || !enc.explicit)) || (dictSq && !undefinedLength)) {
      // UN-encoded sequences are implicit VR little endian inside (PS3.5 6.2.2).
      const itemEnc = enc.explicit && vr === 'UN' ? IMPLICIT_LE : enc;
      if (vr !== 'SQ' && !undefinedLength) {
        // A defined-length UN or implicit value whose dictionary VR is SQ: parse it as items, else keep it opaque.
        this.need(valueStart, length, tag);
        try {
          const seq = this.sequence(valueStart, length, itemEnc, depth);
          return { ...base, vr: 'SQ', length, undefinedLength, end: seq.end, items: seq.items };
        } catch (e) {
          if (!(e instanceof DicomParseError)) throw e;
          return { ...base, length, undefinedLength, end: valueStart + length };
        }
      }
      const seq = this.sequence(valueStart, undefinedLength ? null : length, itemEnc, depth);
      return {
        ...base,
        vr: 'SQ',
        length: undefinedLength ? seq.end - 8 - valueStart : length,
        undefinedLength,
        end: seq.end,
        items: seq.items,
      };
    }
    if (undefinedLength) throw new DicomParseError(`undefined length on a non-sequence element (VR ${vr})`, { offset: pos, tag });
    if (!isPixel) this.need(valueStart, length, tag);
    else if (valueStart + length > this.src.length) {
      throw new DicomParseError(`truncated pixel data: ${length} bytes declared, ${this.src.length - valueStart} present`, { offset: pos, tag });
    }
    return { ...base, length, undefinedLength, end: valueStart + length };
  }

  sequence(pos: number, length: number | null, enc: Encoding, depth: number): { items: DicomItem[]; end: number } {
    const items: DicomItem[] = [];
    const end = length === null ? Infinity : pos + length;
    if (length !== null) this.need(pos, length);
    let p = pos;
    for (;;) {
      if (p >= end) break;
      this.need(p, 8);
      const t = this.tagAt(p, enc.little);
      if (t === TAG.SequenceDelimitation) {
        p += 8;
        if (length === null) break;
        continue;
      }
      if (t !== TAG.ItemTag) throw new DicomParseError(`expected an item in a sequence, found ${fmtTag(t)}`, { offset: p });
      const ilen = this.u32(p + 4, enc.little);
      const istart = p;
      p += 8;
      if (ilen === UNDEFINED) {
        const r = this.elements(p, null, enc, depth + 1);
        p = r.pos;
        items.push({ start: istart, end: p, undefinedLength: true, elements: r.elements, enc });
      } else {
        this.need(p, ilen);
        const r = this.elements(p, p + ilen, enc, depth + 1);
        p += ilen;
        items.push({ start: istart, end: p, undefinedLength: false, elements: r.elements, enc });
      }
      if (p > end) throw new DicomParseError('item overruns its sequence', { offset: istart });
    }
    return { items, end: p };
  }
}

function plausibleGroup(g: number): boolean {
  return g === 0x0002 || g === 0x0004 || g === 0x0008 || g === 0x0010 || g === 0x0018 || g === 0x0020 || g === 0x0028;
}

/** Guess the encoding of a data set (or meta group) starting at `pos`. */
function guessEncoding(src: ByteSource, pos: number): Encoding | null {
  if (pos + 8 > src.length) return null;
  const b = src.read(pos, 8);
  const gLE = b.readUInt16LE(0);
  const gBE = b.readUInt16BE(0);
  const little = plausibleGroup(gLE) ? true : plausibleGroup(gBE) ? false : null;
  if (little === null) return null;
  const vr = b.toString('latin1', 4, 6);
  return { explicit: VALID_VRS.has(vr), little };
}

function tsFor(enc: Encoding): string {
  if (!enc.explicit) return TS.ImplicitLE;
  return enc.little ? TS.ExplicitLE : TS.ExplicitBE;
}

/** Parse a Part 10 file (or a bare data set) from a byte source. */
export function parseDicom(src: ByteSource, opts: ParseOptions = {}): ParsedDicom {
  let pos = 0;
  let hasPreamble = false;
  if (src.length >= 132 && src.read(128, 4).toString('latin1') === 'DICM') {
    pos = 132;
    hasPreamble = true;
  } else if (src.length >= 4 && src.read(0, 4).toString('latin1') === 'DICM') {
    pos = 4;
  }
  const meta: DicomElement[] = [];
  const metaParser = new Parser(src, undefined);
  if (pos + 8 <= src.length && src.read(pos, 2).readUInt16LE(0) === 0x0002) {
    // File Meta Information: always explicit VR little endian.
    let metaEnc: Encoding = LE;
    if (!VALID_VRS.has(src.read(pos + 4, 2).toString('latin1'))) metaEnc = IMPLICIT_LE;
    while (pos + 8 <= src.length && src.read(pos, 2).readUInt16LE(0) === 0x0002) {
      const el = metaParser.element(pos, metaParser.tagAt(pos, true), metaEnc, 1);
      meta.push(el);
      pos = el.end;
    }
  } else if (!hasPreamble && pos === 0 && !guessEncoding(src, 0)) {
    throw new DicomParseError('not a DICOM file: no preamble, no DICM prefix and no recognisable data set', { offset: 0 });
  } else if (hasPreamble && pos + 8 > src.length) {
    throw new DicomParseError('truncated: file ends after the preamble', { offset: pos });
  }
  const hasMeta = meta.length > 0;
  const tsEl = meta.find((e) => e.tag === TAG.TransferSyntaxUID);
  let ts = tsEl ? src.read(tsEl.valueStart, tsEl.length).toString('latin1').replace(/[\0 ]+$/, '') : '';
  let inferred = false;
  const guess = guessEncoding(src, pos);
  if (!ts) {
    if (!guess) throw new DicomParseError('no transfer syntax in the meta header and the data set encoding cannot be recognised', { offset: pos });
    ts = tsFor(guess);
    inferred = true;
  }
  const enc0 = encodingForTs(ts);
  let enc: Encoding = { explicit: enc0.explicit, little: enc0.little };
  if (!enc0.deflated && guess && enc.little && guess.little && guess.explicit !== enc.explicit) {
    // The meta header names one VR encoding but the data set uses the other.
    // For the native syntaxes the UID is corrected; for encapsulated ones the
    // UID is kept (it names the pixel compression) and the data set read as found.
    enc = guess;
    if (ts === TS.ImplicitLE || ts === TS.ExplicitLE) ts = tsFor(guess);
    inferred = true;
  }
  let source: ByteSource = src;
  let datasetStart = pos;
  if (enc0.deflated) {
    try {
      source = new BufferSource(inflateRawSync(src.read(pos, src.length - pos)));
    } catch (e) {
      throw new DicomParseError('deflated data set cannot be inflated', { offset: pos, cause: e });
    }
    datasetStart = 0;
  }
  const parser = new Parser(source, opts.stopBefore);
  const { elements } = parser.elements(datasetStart, source.length, enc, 0);
  return {
    fileSource: src,
    source,
    hasPreamble,
    hasMeta,
    meta,
    transferSyntaxUID: ts,
    transferSyntaxInferred: inferred,
    enc,
    deflated: enc0.deflated,
    datasetStart,
    dataset: elements,
    ...(parser.stoppedAt !== undefined ? { stoppedAt: parser.stoppedAt } : {}),
  };
}

/** Raw value bytes of an element. */
export function valueBytes(src: ByteSource, el: DicomElement): Buffer {
  return src.read(el.valueStart, el.length);
}

/** A string value as latin1 (byte-preserving), trailing NUL/space padding removed. */
export function stringValue(src: ByteSource, el: DicomElement): string {
  return valueBytes(src, el).toString('latin1').replace(/[\0 ]+$/, '');
}

export function findElement(elements: DicomElement[], tag: number): DicomElement | undefined {
  for (const e of elements) if (e.tag === tag) return e;
  return undefined;
}
