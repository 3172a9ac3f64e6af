import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sql } from '@imago/db';
import { freePort, tempDir } from '@imago/testkit';
import { storescu, waitFor } from './helpers.js';
import { hubCounts, kill9, makeCorpus, siteRows, startHub, startSiteProcess, writeSiteConfig } from './procs.js';

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
  const started = await startHub(dir, hubPort);
  const token = started.token;
  let hub = started.platform;
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
