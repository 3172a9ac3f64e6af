import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@imago/core';
import { openDatabase, sql } from '@imago/db';
import { freePort, tempDir } from '@imago/testkit';
import { openCore, startPlatform, type Platform } from '@imago/cli';
import { OPERATOR, storescu, waitFor } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/site-process.ts', import.meta.url));

async function startHub(dir: string, port: number): Promise<{ platform: Platform; token: string }> {
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

async function writeSiteConfig(dir: string, hubPort: number, token: string): Promise<{ file: string; dimsePort: number; dbUrl: string }> {
  const c = { file: join(dir, 'site.json'), dbUrl: `sqlite:${join(dir, 'site', 'site.db')}` };
  const dimsePort = await freePort();
  const httpPort = await freePort();
  writeFileSync(c.file, JSON.stringify({
    dataDir: join(dir, 'site'), db: { url: c.dbUrl }, storage: { url: `file:${join(dir, 'site', 'blobs')}` },
    http: { port: httpPort }, log: { level: 'error' }, parts: { site: true, hub: false },
    jobs: { retryDelayMs: 100, retryMaxDelayMs: 1000, pollIntervalMs: 20 },
    site: { dimsePort, allowedCallingAeTitles: ['STORESCU'], secret: 'crash-site-secret', hubUrl: `http://127.0.0.1:${hubPort}`, hubToken: token, uplinkTimeoutMs: 10000 },
  }));
  return { ...c, dimsePort };
}

function startSiteProcess(configFile: string): Promise<ChildProcess> {
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

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

function makeCorpus(dir: string, n: number): string[] {
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

async function hubCounts(platform: Platform): Promise<{ n: number; shas: Set<string> }> {
  const rows = (await sql<{ sha256: string; sop_uid: string }>`SELECT sha256, sop_uid FROM hub_instances`.execute(platform.db.db)).rows;
  return { n: new Set(rows.map((r) => r.sop_uid)).size, shas: new Set(rows.map((r) => r.sha256)) };
}

async function siteRows(dbUrl: string): Promise<Array<{ state: string; sha256: string | null }>> {
  const db = await openDatabase(dbUrl, { migrate: false });
  try {
    return await db.db.selectFrom('site_instances').select(['state', 'sha256']).execute();
  } finally {
    await db.close();
  }
}

test('crash safety: 500 instances sent while the site node is SIGKILLed 3 times at random moments; the hub ends with exactly 500, checksums matching', { timeout: 600_000 }, async () => {
  const dir = tempDir('imago-crash-');
  const hubPort = await freePort();
  const { platform: hub, token } = await startHub(dir, hubPort);
  try {
    const files = makeCorpus(join(dir, 'corpus'), 500);
    const site = await writeSiteConfig(dir, hubPort, token);
    for (let round = 0; round < 3; round++) {
      const child = await startSiteProcess(site.file);
      const send = storescu(site.dimsePort, files);
      const at = 300 + Math.floor(Math.random() * 2500);
      await new Promise((r) => setTimeout(r, at));
      await kill9(child);
      const r = await send;
      console.log(`round ${round + 1}: SIGKILL after ${at} ms; storescu exit ${r.code}`);
    }
    // Final run: resend everything (duplicates are harmless), then let it drain.
    const child = await startSiteProcess(site.file);
    try {
      const r = await storescu(site.dimsePort, files);
      assert.equal(r.code, 0, r.stderr);
      await waitFor('hub to hold 500', async () => (await hubCounts(hub)).n >= 500 && (await siteRows(site.dbUrl)).every((x) => !['received', 'checked', 'outbox'].includes(x.state)), 240_000, 500);
    } finally {
      await kill9(child);
    }
    const h = await hubCounts(hub);
    assert.equal(h.n, 500, 'exactly 500 distinct instances at the hub');
    const total = (await sql<{ n: number }>`SELECT count(*) AS n FROM hub_instances`.execute(hub.db.db)).rows[0]!.n;
    assert.equal(Number(total), 500, 'no duplicate rows at the hub');
    const rows = await siteRows(site.dbUrl);
    const by: Record<string, number> = {};
    for (const r of rows) by[r.state] = (by[r.state] ?? 0) + 1;
    console.log('site states after crashes:', by);
    const siteShas = new Set(rows.filter((r) => r.state === 'uploaded' || r.state === 'duplicate').map((r) => r.sha256!));
    assert.equal(siteShas.size, 500);
    for (const s of siteShas) assert.ok(h.shas.has(s), 'hub checksum matches the site');
    assert.equal(rows.filter((r) => r.state === 'parked' || r.state === 'quarantine').length, 0);
  } finally {
    await hub.close();
  }
});

test('hub outage: the site keeps accepting while the hub is down, then drains with no loss and no duplicates', { timeout: 300_000 }, async () => {
  const dir = tempDir('imago-outage-');
  const hubPort = await freePort();
  let { platform: hub, token } = await startHub(dir, hubPort);
  const site = await writeSiteConfig(dir, hubPort, token);
  const child = await startSiteProcess(site.file);
  try {
    const files = makeCorpus(join(dir, 'corpus'), 120);
    assert.equal((await storescu(site.dimsePort, files.slice(0, 40))).code, 0);
    await waitFor('first 40 at hub', async () => (await hubCounts(hub)).n === 40, 60_000);
    await hub.close(); // outage
    assert.equal((await storescu(site.dimsePort, files.slice(40))).code, 0, 'site accepts during the outage');
    await new Promise((r) => setTimeout(r, 3000));
    const during = await siteRows(site.dbUrl);
    assert.ok(during.filter((r) => r.state === 'outbox').length > 0, 'items wait in the outbox');
    hub = (await startHub(dir, hubPort)).platform; // back
    await waitFor('drain', async () => (await hubCounts(hub)).n === 120 && (await siteRows(site.dbUrl)).every((r) => r.state === 'uploaded'), 120_000, 500);
    const total = (await sql<{ n: number }>`SELECT count(*) AS n FROM hub_instances`.execute(hub.db.db)).rows[0]!.n;
    assert.equal(Number(total), 120);
  } finally {
    await kill9(child);
    await hub.close();
  }
});
