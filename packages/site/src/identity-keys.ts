import { createHmac } from 'node:crypto';

/** NHS number check (modulus 11). */
export function isNhsNumber(id: string): boolean {
  if (!/^\d{10}$/.test(id)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(id[i]) * (10 - i);
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  if (check === 10) return false;
  return check === Number(id[9]);
}

export function normaliseId(id: string): string {
  const t = id.trim();
  const compact = t.replace(/[\s-]+/g, '');
  return /^\d{10}$/.test(compact) ? compact : t;
}

export function normaliseIssuer(issuer: string | null | undefined, siteCode: string): string {
  const t = (issuer ?? '').trim().toUpperCase();
  if (!t) return siteCode.toUpperCase();
  if (['NHS', 'NHS NUMBER', 'NHSNUMBER', 'HTTPS://FHIR.NHS.UK/ID/NHS-NUMBER', '2.16.840.1.113883.2.1.4.1'].includes(t)) return 'NHS';
  return t;
}

/**
 * Keyed hashes under which an identity is looked up on the opt-out list. A
 * valid NHS number matches under issuer NHS whatever issuer the instance names,
 * so an opt-out by NHS number catches images that carry it as PatientID.
 */
export function optoutHashes(secret: Buffer, id: string, issuer: string | null | undefined, siteCode: string): string[] {
  const idN = normaliseId(id);
  const iss = normaliseIssuer(issuer, siteCode);
  const out = new Set<string>([optoutHash(secret, iss, idN)]);
  if (isNhsNumber(idN)) out.add(optoutHash(secret, 'NHS', idN));
  return [...out];
}

/** The one hash stored for an opt-out entry. */
export function optoutEntryHash(secret: Buffer, id: string, issuer: string | null | undefined, siteCode: string): string {
  const idN = normaliseId(id);
  const iss = !issuer?.trim() && isNhsNumber(idN) ? 'NHS' : normaliseIssuer(issuer, siteCode);
  return optoutHash(secret, iss, idN);
}

function optoutHash(secret: Buffer, issuer: string, id: string): string {
  return createHmac('sha256', secret).update('imago/optout/v1').update('\0').update(issuer).update('\0').update(id).digest('hex');
}
