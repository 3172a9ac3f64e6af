import type { OptionColumn } from './profile-types.js';

/** A private attribute that may be kept under Retain Safe Private (matched by creator, group and element byte). */
export interface SafePrivateTag {
  creator: string;
  group: number;
  /** Element number within the private block (the low byte, 0x00–0xFF). */
  element: number;
}

/**
 * A small allow-list of private attributes that carry acquisition physics and
 * no identity (after PS3.15 Table E.3.10-1): diffusion b-values and
 * directions, slice timing, and GE/Philips scaling.
 */
export const DEFAULT_SAFE_PRIVATE: SafePrivateTag[] = [
  { creator: 'SIEMENS MR HEADER', group: 0x0019, element: 0x0c }, // B_value
  { creator: 'SIEMENS MR HEADER', group: 0x0019, element: 0x0d }, // DiffusionDirectionality
  { creator: 'SIEMENS MR HEADER', group: 0x0019, element: 0x0e }, // DiffusionGradientDirection
  { creator: 'SIEMENS MR HEADER', group: 0x0019, element: 0x27 }, // B_matrix
  { creator: 'SIEMENS MR HEADER', group: 0x0019, element: 0x29 }, // MosaicRefAcqTimes
  { creator: 'GEMS_ACQU_01', group: 0x0019, element: 0xbb }, // diffusion direction
  { creator: 'GEMS_PARM_01', group: 0x0043, element: 0x39 }, // slop_int_6..9 (b-value)
  { creator: 'Philips Imaging DD 001', group: 0x2001, element: 0x03 }, // diffusion b-factor
  { creator: 'Philips MR Imaging DD 001', group: 0x2005, element: 0xb0 }, // diffusion direction RL
  { creator: 'Philips MR Imaging DD 001', group: 0x2005, element: 0xb1 }, // diffusion direction AP
  { creator: 'Philips MR Imaging DD 001', group: 0x2005, element: 0xb2 }, // diffusion direction FH
];

export interface DeidOptions {
  /** Retain Longitudinal Temporal Information with Modified Dates: shift dates by a per-patient offset. */
  retainLongitudinalModifiedDates: boolean;
  /** Retain Longitudinal Temporal Information with Full Dates (keeps real dates; off by default). */
  retainLongitudinalFullDates: boolean;
  retainPatientCharacteristics: boolean;
  retainDeviceIdentity: boolean;
  retainInstitutionIdentity: boolean;
  /** Retain UIDs (keeps original UIDs; off by default, never use for data leaving a site). */
  retainUIDs: boolean;
  retainSafePrivate: boolean;
  cleanDescriptors: boolean;
  cleanStructuredContent: boolean;
  /** Dates shift back by between min and max days (inclusive), per patient. */
  dateShiftMinDays: number;
  dateShiftMaxDays: number;
  /** Modalities at risk of burned-in PHI (US, SC, OT, XC) that are nevertheless allowed through. */
  allowModalities: string[];
  /** Allow Secondary Capture SOP classes through without quarantine. */
  allowSecondaryCapture: boolean;
  /** Quarantine images with overlay planes carrying data or text. */
  quarantineOverlays: boolean;
  safePrivateAllowList: SafePrivateTag[];
}

/** The site node's default: Basic + Modified Dates + Patient Characteristics + Clean Descriptors. */
export const DEFAULT_OPTIONS: DeidOptions = {
  retainLongitudinalModifiedDates: true,
  retainLongitudinalFullDates: false,
  retainPatientCharacteristics: true,
  retainDeviceIdentity: false,
  retainInstitutionIdentity: false,
  retainUIDs: false,
  retainSafePrivate: false,
  cleanDescriptors: true,
  cleanStructuredContent: false,
  dateShiftMinDays: 1,
  dateShiftMaxDays: 365,
  allowModalities: [],
  allowSecondaryCapture: false,
  quarantineOverlays: true,
  safePrivateAllowList: DEFAULT_SAFE_PRIVATE,
};

/** Only the Basic Profile, no options. */
export const BASIC_ONLY: Partial<DeidOptions> = {
  retainLongitudinalModifiedDates: false,
  retainPatientCharacteristics: false,
  cleanDescriptors: false,
};

export function resolveOptions(o: Partial<DeidOptions> = {}): DeidOptions {
  const r = { ...DEFAULT_OPTIONS, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as DeidOptions;
  if (!(r.dateShiftMinDays >= 0 && r.dateShiftMaxDays >= r.dateShiftMinDays)) {
    throw new RangeError('dateShiftMinDays must be >= 0 and <= dateShiftMaxDays');
  }
  if (r.retainLongitudinalFullDates && r.retainLongitudinalModifiedDates) {
    throw new RangeError('choose at most one of retainLongitudinalFullDates and retainLongitudinalModifiedDates');
  }
  return r;
}

/** Table E.1-1 option columns switched on by the options. */
export function enabledColumns(o: DeidOptions): OptionColumn[] {
  const cols: OptionColumn[] = [];
  if (o.retainSafePrivate) cols.push('rtnSafePrivOpt');
  if (o.retainUIDs) cols.push('rtnUIDsOpt');
  if (o.retainDeviceIdentity) cols.push('rtnDevIdOpt');
  if (o.retainInstitutionIdentity) cols.push('rtnInstIdOpt');
  if (o.retainPatientCharacteristics) cols.push('rtnPatCharsOpt');
  if (o.retainLongitudinalFullDates) cols.push('rtnLongFullDatesOpt');
  if (o.retainLongitudinalModifiedDates) cols.push('rtnLongModifDatesOpt');
  if (o.cleanDescriptors) cols.push('cleanDescOpt');
  if (o.cleanStructuredContent) cols.push('cleanStructContOpt');
  return cols;
}

/** CID 7050 De-identification Method codes (DCM) for the options applied. */
export function methodCodes(o: DeidOptions): Array<{ code: string; meaning: string }> {
  const c = [{ code: '113100', meaning: 'Basic Application Confidentiality Profile' }];
  if (o.cleanStructuredContent) c.push({ code: '113104', meaning: 'Clean Structured Content Option' });
  if (o.cleanDescriptors) c.push({ code: '113105', meaning: 'Clean Descriptors Option' });
  if (o.retainLongitudinalFullDates) c.push({ code: '113106', meaning: 'Retain Longitudinal Temporal Information Full Dates Option' });
  if (o.retainLongitudinalModifiedDates) c.push({ code: '113107', meaning: 'Retain Longitudinal Temporal Information Modified Dates Option' });
  if (o.retainPatientCharacteristics) c.push({ code: '113108', meaning: 'Retain Patient Characteristics Option' });
  if (o.retainDeviceIdentity) c.push({ code: '113109', meaning: 'Retain Device Identity Option' });
  if (o.retainUIDs) c.push({ code: '113110', meaning: 'Retain UIDs Option' });
  if (o.retainSafePrivate) c.push({ code: '113111', meaning: 'Retain Safe Private Option' });
  if (o.retainInstitutionIdentity) c.push({ code: '113112', meaning: 'Retain Institution Identity Option' });
  return c;
}
