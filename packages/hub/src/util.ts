import { createHash, createHmac } from 'node:crypto';

/**
 * The pseudonym form the site's de-identification engine renders
 * (packages/deid/src/keys.ts): `IMG-XXXX-XXXX-XXXX-XXXX`, 80 bits of
 * HMAC-SHA256 in Crockford base32 (no I, L, O, U).
 */
export const PSEUDONYM_RE = /^IMG-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/;

export function isPseudonym(s: unknown): s is string {
  return typeof s === 'string' && PSEUDONYM_RE.test(s);
}

export const SHA256_RE = /^[0-9a-f]{64}$/;

/**
 * Canonical JSON: object keys sorted (by UTF-16 code unit, recursively), no
 * whitespace, arrays in order, `undefined` members dropped. The site computes
 * a clinical record's sha256 over exactly this text.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) return 'null';
    return JSON.stringify(v) ?? 'null';
  }
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
export const hmacHex = (secret: string, label: string, value: string) => createHmac('sha256', secret).update(label).update('\0').update(value).digest('hex');

export type Group = 'training' | 'validation';
export type SplitMode = 'training' | 'validation' | 'percent';

export interface SplitRule {
  mode: SplitMode;
  trainingPercent: number;
  sharesData: boolean;
}

export function ruleLabel(r: SplitRule): string {
  const base = r.mode === 'percent' ? `percent:${r.trainingPercent}` : r.mode;
  return r.sharesData ? `${base}+shares-data` : base;
}

/**
 * The group a pseudonym falls into under a rule: a keyed hash of the
 * pseudonym mapped onto [0, 100). Data a site shares with other parties never
 * enters validation.
 */
export function groupFor(secret: string, pseudonym: string, r: SplitRule): Group {
  if (r.sharesData) return 'training';
  if (r.mode === 'training') return 'training';
  if (r.mode === 'validation') return 'validation';
  const h = createHmac('sha256', secret).update('imago/split/v1').update('\0').update(pseudonym).digest();
  // 48 bits of the hash as a fraction in [0, 1).
  const x = h.readUIntBE(0, 6) / 2 ** 48;
  return x * 100 < r.trainingPercent ? 'training' : 'validation';
}

/** `064Y` → `60-69`; bands match the reference population table. */
export function ageBand(age: string | number | null | undefined): string | null {
  let years: number | null = null;
  if (typeof age === 'number' && Number.isFinite(age)) years = age;
  else if (typeof age === 'string') {
    const m = /^(\d{1,3})\s*([DWMY])?$/i.exec(age.trim());
    if (m) {
      const n = Number(m[1]);
      const u = (m[2] ?? 'Y').toUpperCase();
      years = u === 'Y' ? n : u === 'M' ? n / 12 : u === 'W' ? n / 52 : n / 365;
    }
  }
  if (years === null || years < 0 || years > 150) return null;
  if (years < 18) return '0-17';
  if (years < 30) return '18-29';
  if (years >= 80) return '80+';
  const d = Math.floor(years / 10) * 10;
  return `${d}-${d + 9}`;
}

/** Normalise free-text ethnicity onto the reference categories (ONS 5 high-level groups). */
export function ethnicityGroup(v: unknown): string | null {
  if (typeof v !== 'string' || !v.trim()) return null;
  const s = v.trim().toLowerCase();
  if (/^(white|british|irish|a|b|c)\b/.test(s) || s.includes('white')) return 'white';
  if (s.includes('mixed') || /^[defg]$/.test(s)) return 'mixed';
  if (s.includes('asian') || s.includes('indian') || s.includes('pakistani') || s.includes('bangladeshi') || s.includes('chinese') || /^[hjkl]$/.test(s)) return 'asian';
  if (s.includes('black') || s.includes('african') || s.includes('caribbean') || /^[mnp]$/.test(s)) return 'black';
  if (s.includes('unknown') || s.includes('not stated') || s === 'z') return null;
  return 'other';
}

export function normSex(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const s = v.trim().toUpperCase();
  if (s === 'M' || s === 'MALE') return 'M';
  if (s === 'F' || s === 'FEMALE') return 'F';
  if (s === 'O' || s === 'OTHER') return 'O';
  return null;
}
