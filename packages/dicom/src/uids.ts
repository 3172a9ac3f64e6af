export const TS = {
  ImplicitLE: '1.2.840.10008.1.2',
  ExplicitLE: '1.2.840.10008.1.2.1',
  DeflatedLE: '1.2.840.10008.1.2.1.99',
  ExplicitBE: '1.2.840.10008.1.2.2',
} as const;

export interface Encoding {
  explicit: boolean;
  little: boolean;
}

export function encodingForTs(ts: string): Encoding & { deflated: boolean } {
  if (ts === TS.ImplicitLE) return { explicit: false, little: true, deflated: false };
  if (ts === TS.ExplicitBE) return { explicit: true, little: false, deflated: false };
  if (ts === TS.DeflatedLE || ts === '1.2.840.10008.1.2.4.95') return { explicit: true, little: true, deflated: true };
  return { explicit: true, little: true, deflated: false };
}

/** Secondary Capture SOP classes (single-frame and multi-frame). */
export const SECONDARY_CAPTURE_CLASSES = new Set([
  '1.2.840.10008.5.1.4.1.1.7',
  '1.2.840.10008.5.1.4.1.1.7.1',
  '1.2.840.10008.5.1.4.1.1.7.2',
  '1.2.840.10008.5.1.4.1.1.7.3',
  '1.2.840.10008.5.1.4.1.1.7.4',
]);

export const TAG = {
  ItemTag: 0xfffee000,
  ItemDelimitation: 0xfffee00d,
  SequenceDelimitation: 0xfffee0dd,
  PixelData: 0x7fe00010,
  FloatPixelData: 0x7fe00008,
  DoubleFloatPixelData: 0x7fe00009,
  TransferSyntaxUID: 0x00020010,
  MediaStorageSOPClassUID: 0x00020002,
  MediaStorageSOPInstanceUID: 0x00020003,
  SpecificCharacterSet: 0x00080005,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  Modality: 0x00080060,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  IssuerOfPatientID: 0x00100021,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  BurnedInAnnotation: 0x00280301,
} as const;
