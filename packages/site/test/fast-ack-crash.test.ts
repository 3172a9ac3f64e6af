import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, sql } from '@imago/db';
import { freePort, tempDir } from '@imago/testkit';
import { storescu, waitFor } from './helpers.js';
import { hubCounts, kill9, makeCorpus, startHub, startSiteProcess, writeSiteConfig } from './procs.js';

async function rows(dbUrl: string): Promise<Array<{ id: string; state: string; source: string; calling_ae: string | null }>> {
  const db = await openDatabase(dbUrl, { migrate: false });
  try {
    return await db.db.selectFrom('site_instances').select(['id', 'state', 'source', 'calling_ae']).execute();
  } finally {
    await db.close();
  }
}

test('DIMSE fast path: the node is SIGKILLed after every C-STORE was answered and before any row was committed; the next start adopts each file exactly once and the hub gets all of them', { timeout: 180_000 }, async () => {
  const N = 60;
  const dir = tempDir('imago-fastack-');
  const hubPort = await freePort();
  const { platform: hub, token } = await startHub(dir, hubPort);
  try {
    const files = makeCorpus(join(dir, 'corpus'), N);
    // The group commit is held (test hook), so every success below went out before its row existed.
    const held = await writeSiteConfig(dir, hubPort, token, { commitDelayMs: 600_000 });
    let child = await startSiteProcess(held.file);
    try {
      const r = await storescu(held.dimsePort, files);
      assert.equal(r.code, 0, `every C-STORE answered with success: ${r.stderr}`);
      assert.equal((await rows(held.dbUrl)).length, 0, 'no row committed before the kill');
      const marked = readdirSync(join(dir, 'site', 'site', 'incoming')).filter((f) => f.endsWith('.r.dcm'));
      assert.ok(marked.length >= N, 'the received files are on disk');
    } finally {
      await kill9(child);
    }
    const site = await writeSiteConfig(dir, hubPort, token); // no hold: a normal start
    child = await startSiteProcess(site.file);
    try {
      await waitFor(`hub to hold ${N}`, async () => (await hubCounts(hub)).n >= N && (await rows(site.dbUrl)).every((x) => x.state === 'uploaded'), 120_000, 250);
    } finally {
      await kill9(child);
    }
    const after = await rows(site.dbUrl);
    assert.equal(after.length, N, 'one row per answered instance: nothing lost, nothing doubled');
    assert.equal(new Set(after.map((x) => x.id)).size, N);
    for (const x of after) {
      assert.equal(x.source, 'recovered');
      assert.equal(x.calling_ae, 'STORESCU', 'calling AE recovered from the file meta information');
    }
    assert.equal((await hubCounts(hub)).n, N);
    const total = (await sql<{ n: number }>`SELECT count(*) AS n FROM hub_instances`.execute(hub.db.db)).rows[0]!.n;
    assert.equal(Number(total), N, 'no duplicate rows at the hub');
  } finally {
    await hub.close();
  }
});
