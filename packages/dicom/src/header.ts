import { DicomParseError } from './errors.js';
import { parseDicom, stringValue, type DicomElement, type ParsedDicom } from './parse.js';
import { BufferSource, FileSource, type ByteSource } from './source.js';
import { TAG } from './uids.js';

/** Attributes the site node and hub need before (or without) reading pixel data. */
export interface DicomHeader {
  transferSyntaxUID: string;
  specificCharacterSet?: string;
  sopClassUID?: string;
  sopInstanceUID?: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  modality?: string;
  patientID?: string;
  issuerOfPatientID?: string;
  patientName?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyDate?: string;
  accessionNumber?: string;
  burnedInAnnotation?: string;
  bodyPartExamined?: string;
  manufacturer?: string;
  patientIdentityRemoved?: string;
  rows?: number;
  columns?: number;
  numberOfFrames?: number;
  /**
   * Other identifiers of the same patient (Other Patient IDs Sequence
   * (0010,1002), with their issuers). Hospitals put the NHS number here when
   * PatientID is a local MRN; the site uses them to link clinical data that is
   * keyed by another identifier.
   */
  otherPatientIDs: Array<{ id: string; issuer: string | null }>;
  /** Repeating groups 60xx that hold overlay data or overlay text. */
  overlayGroups: number[];
  /** Whether a top-level PixelData (or float pixel data) element was reached. */
  hasPixelData: boolean;
  hasMeta: boolean;
}

const STRINGS: Array<[number, keyof DicomHeader]> = [
  [TAG.SpecificCharacterSet, 'specificCharacterSet'],
  [TAG.SOPClassUID, 'sopClassUID'],
  [TAG.SOPInstanceUID, 'sopInstanceUID'],
  [TAG.StudyInstanceUID, 'studyInstanceUID'],
  [TAG.SeriesInstanceUID, 'seriesInstanceUID'],
  [TAG.Modality, 'modality'],
  [TAG.PatientID, 'patientID'],
  [TAG.IssuerOfPatientID, 'issuerOfPatientID'],
  [TAG.PatientName, 'patientName'],
  [0x00100030, 'patientBirthDate'],
  [0x00100040, 'patientSex'],
  [0x00080020, 'studyDate'],
  [0x00080050, 'accessionNumber'],
  [TAG.BurnedInAnnotation, 'burnedInAnnotation'],
  [0x00180015, 'bodyPartExamined'],
  [0x00080070, 'manufacturer'],
  [0x00120062, 'patientIdentityRemoved'],
];
const STRING_MAP = new Map(STRINGS);

/** Map a DICOM Specific Character Set to a WHATWG encoding label (best effort). */
export function charsetDecoderLabel(specificCharacterSet: string | undefined): string {
  const terms = (specificCharacterSet ?? '').split('\\').map((s) => s.trim()).filter(Boolean);
  const cs = terms[terms.length > 1 ? 1 : 0] ?? '';
  const map: Record<string, string> = {
    'ISO_IR 100': 'latin1', 'ISO 2022 IR 100': 'latin1', 'ISO_IR 101': 'iso-8859-2', 'ISO_IR 109': 'iso-8859-3',
    'ISO_IR 110': 'iso-8859-4', 'ISO_IR 144': 'iso-8859-5', 'ISO 2022 IR 144': 'iso-8859-5', 'ISO_IR 127': 'iso-8859-6',
    'ISO_IR 126': 'iso-8859-7', 'ISO 2022 IR 126': 'iso-8859-7', 'ISO_IR 138': 'iso-8859-8', 'ISO 2022 IR 138': 'iso-8859-8',
    'ISO_IR 148': 'iso-8859-9', 'ISO_IR 166': 'windows-874', 'ISO_IR 192': 'utf-8', GB18030: 'gb18030', GBK: 'gbk',
    'ISO 2022 IR 87': 'iso-2022-jp', 'ISO 2022 IR 13': 'shift_jis', 'ISO_IR 13': 'shift_jis', 'ISO 2022 IR 149': 'euc-kr',
  };
  return map[cs] ?? 'latin1';
}

export function decodeText(bytes: Buffer, label: string): string {
  try {
    return new TextDecoder(label).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

export function headerFromParsed(p: ParsedDicom): DicomHeader {
  const h: DicomHeader = { transferSyntaxUID: p.transferSyntaxUID, otherPatientIDs: [], overlayGroups: [], hasPixelData: false, hasMeta: p.hasMeta };
  const src = p.source;
  const get = (el: DicomElement): string => stringValue(src, el).trim();
  const overlays = new Set<number>();
  let label = 'latin1';
  for (const el of p.dataset) {
    const key = STRING_MAP.get(el.tag);
    if (key) {
      if (el.tag === TAG.SpecificCharacterSet) {
        h.specificCharacterSet = get(el);
        label = charsetDecoderLabel(h.specificCharacterSet);
      } else if (el.tag === TAG.PatientName) {
        h.patientName = decodeText(src.read(el.valueStart, el.length), label).replace(/[\0 ]+$/, '');
      } else {
        (h as unknown as Record<string, string>)[key] = get(el);
      }
      continue;
    }
    const group = el.tag >>> 16;
    const elem = el.tag & 0xffff;
    if ((group & 0xff01) === 0x6000 && (elem === 0x3000 || elem === 0x0022 || elem === 0x1500 || elem === 0x4000) && el.length > 0) {
      overlays.add(group);
    } else if (el.tag === 0x00280010 || el.tag === 0x00280011) {
      const v = src.read(el.valueStart, el.length);
      if (v.length >= 2) {
        const n = p.enc.little ? v.readUInt16LE(0) : v.readUInt16BE(0);
        if (el.tag === 0x00280010) h.rows = n;
        else h.columns = n;
      }
    } else if (el.tag === 0x00101002 && el.items) {
      for (const item of el.items) {
        const id = item.elements.find((e) => e.tag === TAG.PatientID);
        const issuer = item.elements.find((e) => e.tag === TAG.IssuerOfPatientID);
        const v = id ? get(id) : '';
        if (v) h.otherPatientIDs.push({ id: v, issuer: issuer ? get(issuer) || null : null });
      }
    } else if (el.tag === 0x00280008) {
      const n = parseInt(get(el), 10);
      if (Number.isFinite(n)) h.numberOfFrames = n;
    } else if (el.tag === TAG.PixelData || el.tag === TAG.FloatPixelData || el.tag === TAG.DoubleFloatPixelData) {
      h.hasPixelData = true;
    }
  }
  if (p.stoppedAt !== undefined) h.hasPixelData = true;
  if (!h.sopClassUID || !h.sopInstanceUID) {
    const ms = p.meta.find((e) => e.tag === 0x00020002);
    const mi = p.meta.find((e) => e.tag === 0x00020003);
    if (!h.sopClassUID && ms) h.sopClassUID = stringValue(p.fileSource, ms);
    if (!h.sopInstanceUID && mi) h.sopInstanceUID = stringValue(p.fileSource, mi);
  }
  h.overlayGroups = [...overlays];
  return h;
}

export interface ReadHeaderOptions {
  /** Stop before this top-level tag (default PixelData, 0x7FE00010). Pass 0xFFFFFFFF to read everything. */
  stopBefore?: number;
}

/**
 * Read selected header attributes from a file without loading pixel data:
 * only the blocks that hold element headers before `stopBefore` are read.
 * Throws DicomParseError on bad input.
 */
export function readHeader(path: string, opts: ReadHeaderOptions = {}): DicomHeader {
  let src: ByteSource | undefined;
  try {
    src = new FileSource(path);
    return headerFromParsed(parseDicom(src, { stopBefore: opts.stopBefore ?? TAG.FloatPixelData }));
  } catch (e) {
    if (e instanceof DicomParseError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') throw e;
    throw new DicomParseError('unreadable data set', { cause: e });
  } finally {
    src?.close();
  }
}

export function readHeaderFromBuffer(buf: Buffer, opts: ReadHeaderOptions = {}): DicomHeader {
  try {
    return headerFromParsed(parseDicom(new BufferSource(buf), { stopBefore: opts.stopBefore ?? TAG.FloatPixelData }));
  } catch (e) {
    if (e instanceof DicomParseError) throw e;
    throw new DicomParseError('unreadable data set', { cause: e });
  }
}
