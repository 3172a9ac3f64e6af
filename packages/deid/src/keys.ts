import { createHmac } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function base32(bytes: Buffer, chars: number): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += CROCKFORD[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
    if (out.length >= chars) break;
  }
  return out;
}

/** Keyed derivations under the site secret. Separate labels keep the uses independent. */
export class Keys {
  private readonly secret: Buffer;
  constructor(secret: string | Buffer) {
    this.secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    if (this.secret.length === 0) throw new RangeError('empty secret');
  }
  mac(label: string, ...parts: string[]): Buffer {
    const h = createHmac('sha256', this.secret);
    h.update(label);
    for (const p of parts) {
      h.update('\0');
      h.update(p, 'utf8');
    }
    return h.digest();
  }
  /** `IMG-XXXX-XXXX-XXXX-XXXX`: 80 bits of HMAC-SHA256(issuer, id) in Crockford base32. */
  pseudonym(patientId: string, issuer: string): string {
    const s = base32(this.mac('imago/pseudonym/v1', issuer, patientId), 16);
    return `IMG-${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}`;
  }
  /** `2.25.<integer>` from 128 bits of HMAC, shaped as a version-8 UUID (ISO/IEC 9834-8). */
  uid(original: string): string {
    const b = Buffer.from(this.mac('imago/uid/v1', original).subarray(0, 16));
    b[6] = (b[6]! & 0x0f) | 0x80;
    b[8] = (b[8]! & 0x3f) | 0x80;
    return `2.25.${BigInt('0x' + b.toString('hex')).toString(10)}`;
  }
  /** Whole-day shift, negative, within [-max, -min]. */
  shiftDays(patientKey: string[], min: number, max: number): number {
    const n = this.mac('imago/dateshift/v1', ...patientKey).readUInt32BE(0);
    return -(min + (n % (max - min + 1)));
  }
}
