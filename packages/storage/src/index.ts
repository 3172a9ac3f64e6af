import { FileBlobStore, type FileBlobStoreOptions } from './file.js';
import { S3BlobStore, type S3BlobStoreOptions, type S3Options } from './s3.js';
import type { BlobStore } from './types.js';

export type * from './types.js';
export { FileBlobStore, type FileBlobStoreOptions } from './file.js';
export { S3BlobStore, parseS3Url, type S3BlobStoreOptions, type S3Options } from './s3.js';
export { HashingStream, MAX_KEY_LENGTH, validateKey } from './keys.js';

/**
 * Open the blob store named by `storage.url`: `file:PATH` (embedded default)
 * or `s3://BUCKET/PREFIX` with connection settings from `storage.s3`.
 */
export function openBlobStore(url: string, s3opts?: S3Options, opts: FileBlobStoreOptions & S3BlobStoreOptions = {}): BlobStore {
  if (url.startsWith('file:')) return new FileBlobStore(url.slice('file:'.length), opts);
  if (url.startsWith('s3://')) return new S3BlobStore(url, s3opts, opts);
  throw new Error('storage.url: unsupported scheme (use file:PATH or s3://BUCKET/PREFIX)');
}
