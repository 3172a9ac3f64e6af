import { createHash, randomBytes } from 'node:crypto';

/**
 * Deterministic keys derived from DICOM UIDs, so that storing the same
 * instance twice lands on the same row and blob ("already stored" is success).
 * The form follows Orthanc's idea: a hash of the identifying UIDs, shown in
 * hex groups. We use SHA-256 truncated to 160 bits.
 */
export function dicomKey(...uids: string[]): string {
  for (const u of uids) {
    if (!isValidUid(u)) throw new TypeError('dicomKey: not a DICOM UID');
  }
  const h = createHash('sha256').update(uids.join('|')).digest('hex').slice(0, 40);
  return `${h.slice(0, 8)}-${h.slice(8, 16)}-${h.slice(16, 24)}-${h.slice(24, 32)}-${h.slice(32, 40)}`;
}

export const studyKey = (studyUid: string) => dicomKey(studyUid);
export const seriesKey = (studyUid: string, seriesUid: string) => dicomKey(studyUid, seriesUid);
export const instanceKey = (studyUid: string, seriesUid: string, sopUid: string) => dicomKey(studyUid, seriesUid, sopUid);

/** A DICOM UID: dotted decimal components, no leading zeros, at most 64 chars. */
export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= 64 && /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.test(uid);
}

/**
 * A new random identifier, time-ordered (UUIDv7 layout) so that rows sort by
 * creation and index locality stays good.
 */
export function newId(): string {
  const ms = BigInt(Date.now());
  const b = randomBytes(16);
  b[0] = Number((ms >> 40n) & 0xffn);
  b[1] = Number((ms >> 32n) & 0xffn);
  b[2] = Number((ms >> 24n) & 0xffn);
  b[3] = Number((ms >> 16n) & 0xffn);
  b[4] = Number((ms >> 8n) & 0xffn);
  b[5] = Number(ms & 0xffn);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A random secret token, URL-safe. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
