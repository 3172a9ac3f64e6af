import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { badRequest } from '@imago/core';
import type { ByteRange } from './types.js';

export const MAX_KEY_LENGTH = 512;

/** Throws `badRequest` unless `key` is a safe relative blob key (see BlobStore). */
export function validateKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw badRequest('blob key must be a non-empty string');
  if (key.length > MAX_KEY_LENGTH) throw badRequest(`blob key longer than ${MAX_KEY_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw badRequest('blob key contains a control character');
  if (key.includes('\\')) throw badRequest('blob key contains a backslash');
  if (key.startsWith('/')) throw badRequest('blob key must be relative');
  for (const seg of key.split('/')) {
    if (seg === '') throw badRequest('blob key has an empty path segment');
    if (seg === '.' || seg === '..') throw badRequest('blob key has a "." or ".." segment');
  }
  return key;
}

/** A prefix for list(): like a key, but may be empty or end with '/'. */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw badRequest('blob prefix must be a string');
  if (prefix === '') return prefix;
  // eslint-disable-next-line no-control-regex
  if (prefix.length > MAX_KEY_LENGTH || /[\u0000-\u001f\u007f\\]/.test(prefix) || prefix.startsWith('/')) {
    throw badRequest('invalid blob prefix');
  }
  return prefix;
}

export function validateRange(range: ByteRange | undefined): ByteRange | undefined {
  if (range === undefined) return undefined;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw badRequest('range start must be a non-negative integer');
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) throw badRequest('range end must be an integer >= start');
  return range;
}

export function normaliseSha256(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw badRequest('expectedSha256 must be 64 hex digits');
  return s.toLowerCase();
}

/** Pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  /**
   * Bytes seen so far. (Deliberately not called `size` or `length`:
   * lib-storage's Upload reads those to guess the body length up front.)
   */
  bytes = 0;
  private digestHex: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digestHex = this.hash.digest('hex');
    cb();
  }

  /** The hex digest; only valid once the stream has ended. */
  get sha256(): string {
    if (this.digestHex === undefined) throw new Error('HashingStream: digest read before end of stream');
    return this.digestHex;
  }
}
