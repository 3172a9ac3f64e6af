/**
 * Clean Descriptors: remove the instance's known identifiers, then patterns
 * that look like identifiers. Works on latin1 strings (one char per byte), so
 * bytes of any character set round-trip; patterns are ASCII.
 */
const MONTHS = 'jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december';
const PATTERNS: RegExp[] = [
  /[\w.+-]+@[\w-]+(\.[\w-]+)+/g, // e-mail
  /\b\d+(\.\d+){3,}\b/g, // UID-like
  /\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b/g, // 2020-01-31
  /\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b/g, // 31/01/2020
  new RegExp(`\\b\\d{1,2}(st|nd|rd|th)?[ -](${MONTHS})\\.?,?[ -]\\d{2,4}\\b`, 'gi'), // 31 Jan 2020
  new RegExp(`\\b(${MONTHS})\\.? \\d{1,2}(st|nd|rd|th)?,? \\d{2,4}\\b`, 'gi'), // Jan 31, 2020
  /\b\d{3}[ -]?\d{3}[ -]?\d{4}\b/g, // NHS-number-like
  /\+?\(?\d{2,5}\)?[ -]?\d{3,4}[ -]?\d{3,4}\b/g, // phone numbers
  /\b[A-Za-z]{0,6}[-#:]?\d{5,}[A-Za-z0-9]*\b/g, // IDs with runs of 5+ digits
  /\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{8,}\b/g, // long mixed letter+digit tokens (MRNs)
];

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class DescriptorCleaner {
  private idRe: RegExp | null;
  constructor(identifiers: Iterable<string>) {
    const ids = [...new Set([...identifiers].map((s) => s.trim()).filter((s) => s.length >= 2))].sort((a, b) => b.length - a.length);
    this.idRe = ids.length ? new RegExp(ids.map(escapeRe).join('|'), 'gi') : null;
  }
  /** Returns the cleaned value, or null when the value had to be dropped whole. */
  clean(value: string): string {
    let v = value;
    const escaped = v.includes('\x1b');
    if (this.idRe) v = v.replace(this.idRe, '');
    for (const re of PATTERNS) v = v.replace(re, '');
    if (v === value) return value;
    // ISO 2022 text with escape sequences: an ASCII edit could corrupt a multi-byte run; drop it whole.
    if (escaped) return '';
    return v.replace(/[ \t]{2,}/g, ' ').replace(/^[ \-,;:/]+|[ \-,;:/]+$/g, '').replace(/ *\\ */g, '\\');
  }
}

/** Parts of a person name worth matching in free text. */
export function nameParts(pn: string): string[] {
  return pn.split(/[\^=\s,]+/).filter((p) => p.length >= 2 && /[A-Za-z\x80-\xff]/.test(p));
}

export function dateForms(da: string): string[] {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim());
  if (!m) return da.trim() ? [da.trim()] : [];
  const [, y, mo, d] = m;
  return [`${y}${mo}${d}`, `${y}-${mo}-${d}`, `${d}/${mo}/${y}`, `${d}.${mo}.${y}`, `${mo}/${d}/${y}`, `${d}-${mo}-${y}`, `${y}/${mo}/${d}`, `${y}.${mo}.${d}`];
}

// ---- dates ----

const DAY = 86_400_000;

function shiftYmd(y: number, m: number, d: number, days: number): [number, number, number] | null {
  const t = Date.UTC(y, m - 1, d);
  const dt = new Date(t);
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) return null;
  const s = new Date(t + days * DAY);
  return [s.getUTCFullYear(), s.getUTCMonth() + 1, s.getUTCDate()];
}
const p2 = (n: number) => String(n).padStart(2, '0');
const p4 = (n: number) => String(n).padStart(4, '0');

/** Shift one DA value (YYYYMMDD, or legacy YYYY.MM.DD); '' when unparsable. */
export function shiftDate(v: string, days: number): string {
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(v.trim());
  if (!m) return '';
  const r = shiftYmd(+m[1]!, +m[2]!, +m[3]!, days);
  return r ? `${p4(r[0])}${p2(r[1])}${p2(r[2])}` : '';
}

/** Shift a DA attribute value: multiple values and ranges. */
export function shiftDaValue(value: string, days: number): string {
  return value
    .split('\\')
    .map((v) => (v.includes('-') ? v.split('-').map((x) => (x.trim() ? shiftDate(x, days) : '')).join('-') : shiftDate(v, days)))
    .join('\\');
}

/** Shift a DT value (YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]) keeping its precision. */
export function shiftDt(v: string, days: number): string {
  const m = /^(\d{4})(\d{2})?(\d{2})?(.*)$/.exec(v.trim());
  if (!m) return '';
  const y = +m[1]!;
  const mo = m[2] ? +m[2] : 7;
  const d = m[3] ? +m[3] : m[2] ? 15 : 1;
  const r = shiftYmd(y, mo, m[3] ? d : m[2] ? 15 : 1, days);
  if (!r) return '';
  if (!m[2]) return p4(r[0]);
  if (!m[3]) return `${p4(r[0])}${p2(r[1])}`;
  return `${p4(r[0])}${p2(r[1])}${p2(r[2])}${m[4] ?? ''}`;
}

export function shiftDtValue(value: string, days: number): string {
  return value.split('\\').map((v) => shiftDt(v, days)).join('\\');
}
