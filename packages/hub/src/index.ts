import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { newSecret, type Config, type Logger } from '@imago/core';
import type { AuditLog } from '@imago/audit';
import type { ImagoDb } from '@imago/db';
import type { Identity } from '@imago/identity';
import { openBlobStore, type BlobStore } from '@imago/storage';
import { Hub } from './hub.js';

export * from './hub.js';
export * from './util.js';
export * from './release.js';
export * from './stats.js';
export * from './dicomweb.js';
export * from './routes.js';
export { parseInstanceHeader, dataSetToJson, tagOf, type DicomJson, type InstanceHeader } from './dicom.js';
export { renderThumbnail } from '@imago/dicom';

/**
 * The hub's keyed-hash secret: `hub.splitSecret` if configured, else one
 * generated once and kept in DATA/hub-secret (mode 600). Changing it would
 * change the group of patients not yet assigned, never of those assigned.
 */
export function resolveHubSecret(config: Config): string {
  if (config.hub.splitSecret) return config.hub.splitSecret;
  const dir = resolve(config.dataDir);
  const file = join(dir, 'hub-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true });
  const s = newSecret(32);
  writeFileSync(file, s + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return s;
}

export interface HubCore {
  config: Config;
  db: ImagoDb;
  audit: AuditLog;
  identity: Identity;
  logger?: Logger;
}

/** Build the hub over the shared services; opens the configured blob store unless one is given. */
export function createHub(core: HubCore, opts: { blobs?: BlobStore; secret?: string } = {}): Hub {
  const c = core.config;
  const blobs = opts.blobs ?? openBlobStore(c.storage.url, c.storage.s3 as Parameters<typeof openBlobStore>[1]);
  return new Hub({ db: core.db, audit: core.audit, identity: core.identity, blobs, config: c, secret: opts.secret ?? resolveHubSecret(c), ...(core.logger ? { logger: core.logger } : {}) });
}
