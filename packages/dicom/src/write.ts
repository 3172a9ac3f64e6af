import { LONG_VRS, UNDEFINED } from './parse.js';
import type { Encoding } from './uids.js';

/** Output pieces: new bytes, or a byte range copied from the data set source. */
export type Chunk = Buffer | { start: number; end: number };

export class ChunkList {
  readonly chunks: Chunk[] = [];
  size = 0;
  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.size += b.length;
  }
  pushRange(start: number, end: number): void {
    if (end <= start) return;
    const last = this.chunks[this.chunks.length - 1];
    if (last && !Buffer.isBuffer(last) && last.end === start) last.end = end;
    else this.chunks.push({ start, end });
    this.size += end - start;
  }
  append(other: ChunkList): void {
    for (const c of other.chunks) {
      if (Buffer.isBuffer(c)) this.push(c);
      else this.pushRange(c.start, c.end);
    }
  }
}

function tagBytes(b: Buffer, off: number, tag: number, little: boolean): void {
  if (little) {
    b.writeUInt16LE(tag >>> 16, off);
    b.writeUInt16LE(tag & 0xffff, off + 2);
  } else {
    b.writeUInt16BE(tag >>> 16, off);
    b.writeUInt16BE(tag & 0xffff, off + 2);
  }
}

/** Header of a data element (length UNDEFINED for undefined length). */
export function elementHeader(tag: number, vr: string, length: number, enc: Encoding): Buffer {
  if (!enc.explicit) {
    const b = Buffer.alloc(8);
    tagBytes(b, 0, tag, enc.little);
    if (enc.little) b.writeUInt32LE(length, 4);
    else b.writeUInt32BE(length, 4);
    return b;
  }
  if (LONG_VRS.has(vr) || length > 0xffff) {
    const b = Buffer.alloc(12);
    tagBytes(b, 0, tag, enc.little);
    b.write(LONG_VRS.has(vr) ? vr : 'UN', 4, 'latin1');
    if (enc.little) b.writeUInt32LE(length, 8);
    else b.writeUInt32BE(length, 8);
    return b;
  }
  const b = Buffer.alloc(8);
  tagBytes(b, 0, tag, enc.little);
  b.write(vr, 4, 'latin1');
  if (enc.little) b.writeUInt16LE(length, 6);
  else b.writeUInt16BE(length, 6);
  return b;
}

/** Item, item-delimiter or sequence-delimiter header. */
export function itemHeader(tag: number, length: number, enc: Encoding): Buffer {
  const b = Buffer.alloc(8);
  tagBytes(b, 0, tag, enc.little);
  if (enc.little) b.writeUInt32LE(length >>> 0, 4);
  else b.writeUInt32BE(length >>> 0, 4);
  return b;
}

/** Encode a string value with the VR's padding to even length. */
export function padValue(value: string | Buffer, vr: string): Buffer {
  const b = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (b.length % 2 === 0) return b;
  const pad = vr === 'UI' || vr === 'OB' || vr === 'UN' ? 0 : 0x20;
  return Buffer.concat([b, Buffer.from([pad])]);
}

/** A complete element with a string (or raw) value. */
export function encodeElement(tag: number, vr: string, value: string | Buffer, enc: Encoding): Buffer {
  const v = padValue(value, vr);
  return Buffer.concat([elementHeader(tag, vr, v.length, enc), v]);
}

export { UNDEFINED };
