import type { Readable } from 'node:stream';

export interface PutResult {
  key: string;
  /** Lower-case hex SHA-256 of the bytes stored. */
  sha256: string;
  size: number;
}

export interface PutOptions {
  /** When given, the bytes must hash to this (hex, any case); otherwise nothing is kept and `unprocessable` is thrown. */
  expectedSha256?: string;
  contentType?: string;
}

/** Inclusive byte range, like an HTTP Range header. `end` defaults to the last byte; an `end` past the last byte is clamped. */
export interface ByteRange {
  start: number;
  end?: number;
}

/**
 * Where blobs (DICOM instances, exports, model artefacts) live. Two
 * implementations: `file:` (embedded default) and `s3://` (scale).
 *
 * Keys are relative, slash-separated paths: 1..512 characters, no NUL or
 * control characters, no backslash, no leading `/`, no empty, `.` or `..`
 * segment. Invalid keys are rejected with `badRequest`.
 */
export interface BlobStore {
  /** Stream `body` into the store. SHA-256 and size are computed while writing. */
  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<PutResult>;
  /** A stream of the blob (or of a byte range of it). Throws `notFound` if missing. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  stat(key: string): Promise<{ size: number } | null>;
  exists(key: string): Promise<boolean>;
  /** Remove the blob. True if it existed; deleting a missing key is not an error. */
  delete(key: string): Promise<boolean>;
  /** Every key starting with `prefix` (a plain string prefix, not a glob). Order is unspecified. */
  list(prefix: string): AsyncIterable<string>;
  /** The URL the store was opened with. */
  readonly url: string;
  /** Release sockets and timers. The store must not be used afterwards. */
  close(): Promise<void>;
}
