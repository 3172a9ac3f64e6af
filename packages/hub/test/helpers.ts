import { join } from 'node:path';
import { loadConfig, type Config } from '@imago/core';
import { AuditLog, type Actor } from '@imago/audit';
import { openDatabase, sql, type ImagoDb } from '@imago/db';
import { Identity } from '@imago/identity';
import { openBlobStore, type BlobStore } from '@imago/storage';
import { tempDir } from '@imago/testkit';
import { Hub } from '../src/index.js';

export const OPERATOR: Actor = { principal: { kind: 'user', id: 'op', name: 'operator', grants: [{ role: 'platform_operator', orgId: null }] }, ip: '127.0.0.1' };

export interface Env {
  hub: Hub;
  db: ImagoDb;
  audit: AuditLog;
  identity: Identity;
  blobs: BlobStore;
  config: Config;
  blobDir: string;
  close(): Promise<void>;
}

export async function hubEnv(dbUrl: string, over: Record<string, unknown> = {}): Promise<Env> {
  const dir = tempDir('imago-hub-');
  const blobDir = join(dir, 'blobs');
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, db: { url: dbUrl }, storage: { url: `file:${blobDir}` }, log: { level: 'silent' }, hub: { splitSecret: 'test-split-secret', ...over } } });
  const db = await openDatabase(dbUrl);
  const audit = new AuditLog(db);
  const identity = new Identity(db, audit, config.auth);
  const blobs = openBlobStore(config.storage.url);
  const hub = new Hub({ db, audit, identity, blobs, config, secret: 'test-split-secret' });
  return { hub, db, audit, identity, blobs, config, blobDir, close: async () => { await blobs.close(); await db.close(); } };
}

/** The actor of a site's uplink token. */
export async function siteActor(env: Env, token: string): Promise<Actor> {
  const p = await env.identity.principalForToken(token);
  if (!p) throw new Error('bad token');
  return { principal: p, ip: '10.0.0.1' };
}

/** Every row of every table, as text, for "nothing of the patient remains" scans. */
export async function dumpAllTables(db: ImagoDb): Promise<Map<string, string>> {
  const tables = db.dialect === 'sqlite'
    ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db.db)).rows.map((r) => r.name)
    : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = 'public'`.execute(db.db)).rows.map((r) => r.name);
  const out = new Map<string, string>();
  for (const t of tables) {
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(db.db)).rows;
    out.set(t, JSON.stringify(rows));
  }
  return out;
}

export async function allBlobs(blobs: BlobStore): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const k of blobs.list('')) {
    const parts: Buffer[] = [];
    for await (const c of await blobs.get(k)) parts.push(c as Buffer);
    out.set(k, Buffer.concat(parts));
  }
  return out;
}
