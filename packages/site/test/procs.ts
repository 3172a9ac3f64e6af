import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@imago/core';
import { openDatabase, sql } from '@imago/db';
import { freePort } from '@imago/testkit';
import { openCore, startPlatform, type Platform } from '@imago/cli';
import { OPERATOR } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/site-process.ts', import.meta.url));

export async function startHub(dir: string, port: number): Promise<{ platform: Platform; token: string }> {
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: join(dir, 'hub'), db: { url: `sqlite:${join(dir, 'hub', 'hub.db')}` }, storage: { url: `file:${join(dir, 'hub', 'blobs')}` },
      http: { port }, log: { level: 'error' }, parts: { site: false, hub: true }, hub: { splitSecret: 'hub-secret' },
    },
  });
  mkdirSync(config.dataDir, { recursive: true });
  const core = await openCore(config);
  const { createHub } = await import('@imago/hub');
  const hub = createHub({ config, db: core.db, audit: core.audit, identity: core.identity, logger: core.logger });
  const existing = await core.db.db.selectFrom('hub_sites' as never).selectAll().execute();
  let token = '';
  if (!existing.length) token = (await hub.registerSite(OPERATOR, { code: 'DEMO1', name: 'Demo', region: 'London', splitMode: 'training' })).token;
  await core.close();
  return { platform: await startPlatform(config), token };
}

export async function writeSiteConfig(dir: string, hubPort: number, token: string, site: Record<string, unknown> = {}): Promise<{ file: string; dimsePort: number; dbUrl: string }> {
  const c = { file: join(dir, 'site.json'), dbUrl: `sqlite:${join(dir, 'site', 'site.db')}` };
  const dimsePort = await freePort();
  const httpPort = await freePort();
  writeFileSync(c.file, JSON.stringify({
    dataDir: join(dir, 'site'), db: { url: c.dbUrl }, storage: { url: `file:${join(dir, 'site', 'blobs')}` },
    http: { port: httpPort }, log: { level: 'error' }, parts: { site: true, hub: false },
    jobs: { retryDelayMs: 100, retryMaxDelayMs: 1000, pollIntervalMs: 20 },
    site: { dimsePort, allowedCallingAeTitles: ['STORESCU'], secret: 'crash-site-secret', hubUrl: `http://127.0.0.1:${hubPort}`, hubToken: token, uplinkTimeoutMs: 10000, ...site },
  }));
  return { ...c, dimsePort };
}

export function startSiteProcess(configFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const t = setTimeout(() => reject(new Error(`site process did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(t);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`site process exited ${code}: ${err}`)));
  });
}

export function kill9(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

export function makeCorpus(dir: string, n: number): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = join(dir, `ct${String(i).padStart(4, '0')}.dcm`);
    const p = i % 25;
    writeInstance(f, { patientId: `MRN${1000 + p}`, patientName: `Patient^${p}`, studyUid: uid(9, p), seriesUid: uid(9, p, 1), sopUid: uid(9, p, 1, i + 1), seed: i + 1 });
    files.push(f);
  }
  return files;
}

export async function hubCounts(platform: Platform): Promise<{ n: number; shas: Set<string> }> {
  const rows = (await sql<{ sha256: string; sop_uid: string }>`SELECT sha256, sop_uid FROM hub_instances`.execute(platform.db.db)).rows;
  return { n: new Set(rows.map((r) => r.sop_uid)).size, shas: new Set(rows.map((r) => r.sha256)) };
}

export async function siteRows(dbUrl: string): Promise<Array<{ state: string; sha256: string | null }>> {
  const db = await openDatabase(dbUrl, { migrate: false });
  try {
    return await db.db.selectFrom('site_instances').select(['state', 'sha256']).execute();
  } finally {
    await db.close();
  }
}

