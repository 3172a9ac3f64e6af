import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Random-access bytes: a whole buffer, or a file read on demand. */
export interface ByteSource {
  readonly length: number;
  /** `len` bytes at `pos`; the caller must not read past `length`. */
  read(pos: number, len: number): Buffer;
  close(): void;
}

export class BufferSource implements ByteSource {
  constructor(readonly buf: Buffer) {}
  get length(): number {
    return this.buf.length;
  }
  read(pos: number, len: number): Buffer {
    return this.buf.subarray(pos, pos + len);
  }
  close(): void {}
}

const BLOCK = 64 * 1024;

/**
 * A file read on demand in 64 KB blocks (a few kept), so that parsing the
 * header of a 1 GB instance touches only the blocks that hold element headers.
 */
export class FileSource implements ByteSource {
  readonly fd: number;
  readonly length: number;
  private cache = new Map<number, Buffer>();
  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    this.length = fstatSync(this.fd).size;
  }
  private block(i: number): Buffer {
    let b = this.cache.get(i);
    if (!b) {
      const start = i * BLOCK;
      const len = Math.min(BLOCK, this.length - start);
      b = Buffer.allocUnsafe(len);
      readSync(this.fd, b, 0, len, start);
      if (this.cache.size >= 16) this.cache.delete(this.cache.keys().next().value as number);
      this.cache.set(i, b);
    }
    return b;
  }
  read(pos: number, len: number): Buffer {
    const i = Math.floor(pos / BLOCK);
    if (Math.floor((pos + len - 1) / BLOCK) === i || len === 0) {
      const b = this.block(i);
      const off = pos - i * BLOCK;
      return b.subarray(off, off + len);
    }
    const out = Buffer.allocUnsafe(len);
    readSync(this.fd, out, 0, len, pos);
    return out;
  }
  close(): void {
    closeSync(this.fd);
  }
}
