import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  paginateListObjectsV2,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ClassifiedError, badRequest, notFound, unprocessable, type Config } from '@imago/core';
import { HashingStream, normaliseSha256, validateKey, validatePrefix, validateRange } from './keys.js';
import type { BlobStore, ByteRange, PutOptions, PutResult } from './types.js';

export type S3Options = Partial<Config['storage']['s3']>;

export interface S3BlobStoreOptions {
  /** Multipart part size in bytes (S3 minimum 5 MiB). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded in parallel per put. Default 4. */
  queueSize?: number;
}

/** Parse `s3://bucket/optional/prefix` into bucket and a prefix ending in '/' (or ''). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  if (!url.startsWith('s3://')) throw new Error('storage.url: expected s3://BUCKET/PREFIX');
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`storage.url: invalid S3 bucket name "${bucket}"`);
  prefix = prefix.replace(/^\/+/, '');
  if (prefix && !prefix.endsWith('/')) prefix += '/';
  return { bucket, prefix };
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function isMissing(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(e) === 404;
}

/**
 * Turn an S3 error we cannot act on into our vocabulary: other 4xx answers
 * (access denied, bad bucket) will not get better by retrying, so they are
 * marked permanent; 5xx and network errors are rethrown unchanged, which
 * classifyFailure treats as transient.
 */
function mapS3Error(e: unknown, what: string): unknown {
  const status = httpStatus(e);
  if (status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408) {
    return new ClassifiedError('permanent', `S3 ${what} failed: ${(e as Error).name ?? 'error'} (HTTP ${status})`, { cause: e });
  }
  return e;
}

/**
 * `s3://` blob store on AWS SDK v3. Puts stream through a SHA-256 transform
 * into a lib-storage multipart Upload, so memory use is bounded by
 * partSize × queueSize whatever the blob size.
 *
 * Difference from the file store: S3 has no "write then rename", so with
 * `expectedSha256` the object is uploaded, then checked, then deleted on a
 * mismatch. The mismatching object is briefly visible, and an object that
 * was at that key before is gone afterwards (the file store keeps it).
 */
export class S3BlobStore implements BlobStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(url: string, s3: S3Options = {}, opts: S3BlobStoreOptions = {}) {
    const { bucket, prefix } = parseS3Url(url);
    this.url = url;
    this.bucket = bucket;
    this.prefix = prefix;
    this.partSize = Math.max(opts.partSize ?? 8 * 1024 * 1024, 5 * 1024 * 1024);
    this.queueSize = opts.queueSize ?? 4;
    const cfg: S3ClientConfig = {
      region: s3.region ?? 'us-east-1',
      forcePathStyle: s3.forcePathStyle ?? true,
      // Only send/verify the optional CRC checksums when an operation
      // requires them: S3-compatible stores (MinIO, Ceph, s3rver) do not all
      // understand aws-chunked trailing checksums. We verify SHA-256 ourselves.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (s3.endpoint) cfg.endpoint = s3.endpoint;
    if (s3.accessKeyId && s3.secretAccessKey) cfg.credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    this.client = new S3Client(cfg);
  }

  private objectKey(key: string): string {
    return this.prefix + validateKey(key);
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<PutResult> {
    const Key = this.objectKey(key);
    const expected = normaliseSha256(opts.expectedSha256);
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const hasher = new HashingStream();
    let sourceError: unknown;
    source.on('error', (e) => {
      sourceError = e;
      hasher.destroy(e);
    });
    source.pipe(hasher);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: hasher, ...(opts.contentType ? { ContentType: opts.contentType } : {}) },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (e) {
      source.unpipe(hasher);
      if (!source.destroyed) source.destroy();
      hasher.destroy();
      // If the body failed, that is the cause; a failure to abort the
      // multipart upload afterwards (lib-storage tries) is secondary.
      if (sourceError !== undefined) throw sourceError;
      throw mapS3Error(e, 'put');
    }
    const result = { key, sha256: hasher.sha256, size: hasher.bytes };
    if (expected !== undefined && result.sha256 !== expected) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
      throw unprocessable('blob content does not match the expected SHA-256', { detail: { key, expectedSha256: expected, sha256: result.sha256 } });
    }
    return result;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const Key = this.objectKey(key);
    validateRange(range);
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}) }),
      );
      const body = out.Body;
      if (body instanceof Readable) return body;
      if (body) return Readable.fromWeb(body.transformToWebStream() as WebReadableStream);
      throw new Error('S3 get: response has no body');
    } catch (e) {
      if (isMissing(e)) throw notFound(`blob not found: ${key}`);
      if (httpStatus(e) === 416) throw badRequest(`range start ${range?.start} is beyond the end of the blob`);
      throw mapS3Error(e, 'get');
    }
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const Key = this.objectKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { size: out.ContentLength ?? 0 };
    } catch (e) {
      if (isMissing(e)) return null;
      throw mapS3Error(e, 'stat');
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async delete(key: string): Promise<boolean> {
    const Key = this.objectKey(key);
    // S3's DELETE succeeds whether or not the object exists; ask first so we
    // can report it. A race with a concurrent delete only changes the answer.
    const existed = (await this.stat(key)) !== null;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (e) {
      if (!isMissing(e)) throw mapS3Error(e, 'delete');
    }
    return existed;
  }

  async *list(prefix: string): AsyncIterable<string> {
    validatePrefix(prefix);
    try {
      for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: this.prefix + prefix })) {
        for (const obj of page.Contents ?? []) {
          if (obj.Key && obj.Key.startsWith(this.prefix)) yield obj.Key.slice(this.prefix.length);
        }
      }
    } catch (e) {
      throw mapS3Error(e, 'list');
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
