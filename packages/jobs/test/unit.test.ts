import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { metricsRegistry } from '@imago/core';
import { openDatabase } from '@imago/db';
import { tempDir } from '@imago/testkit';
import { MAX_PAYLOAD_BYTES, backoffDelayMs, openJobQueue, ownerIsDead, validateData } from '../src/index.js';
import { PROCESS_OWNER } from '../src/sqlite.js';
import { jobsConfig, silent, uniqueName, waitFor } from './helpers.js';

describe('backoffDelayMs (exponential, full jitter, capped)', () => {
  it('is uniform in [0, min(max, base·2^(n-1))]', () => {
    const top = () => 1;
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, 100, 1000, top)), [100, 200, 400, 800, 1000]);
    assert.equal(backoffDelayMs(3, 100, 1000, () => 0), 0);
    assert.equal(backoffDelayMs(3, 100, 1000, () => 0.5), 200);
    assert.equal(backoffDelayMs(500, 100, 60_000, top), 60_000, 'huge attempt numbers do not overflow');
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(4, 100, 1000);
      assert.ok(d >= 0 && d <= 800 && Number.isInteger(d));
    }
  });
});

describe('validateData', () => {
  it('accepts flat scalar objects up to 2 KB', () => {
    assert.deepEqual(validateData({ a: 'x', b: 1, c: false, d: null }), { a: 'x', b: 1, c: false, d: null });
    assert.deepEqual({ ...validateData(Object.assign(Object.create(null) as object, { a: 1 })) }, { a: 1 });
    const justFits = { k: 'x'.repeat(MAX_PAYLOAD_BYTES - '{"k":""}'.length) };
    assert.equal(Buffer.byteLength(JSON.stringify(justFits)), MAX_PAYLOAD_BYTES);
    validateData(justFits);
    assert.throws(() => validateData({ k: `${justFits.k}x` }), /at most 2048/);
  });

  it('names each offending field', () => {
    try {
      validateData({ ok: 1, nested: { a: 1 }, list: [] });
      assert.fail('should throw');
    } catch (e) {
      assert.deepEqual((e as { issues: { path: string }[] }).issues.map((i) => i.path), ['nested', 'list']);
    }
  });
});

describe('ownerIsDead', () => {
  it('knows our own process is alive and an exited process on this host is dead', () => {
    assert.equal(ownerIsDead(PROCESS_OWNER), false);
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    assert.equal(ownerIsDead(`${hostname()}:${exited.stdout}:abc123`), true);
    assert.equal(ownerIsDead(`${hostname()}:${process.ppid}:abc123`), false, 'a live process (our parent)');
  });

  it('treats an earlier incarnation with our pid as dead (containers restart as the same pid)', () => {
    assert.equal(ownerIsDead(`${hostname()}:${process.pid}:ffffffffffff`), true);
  });

  it('cannot judge another host, so leaves it to expiry', () => {
    assert.equal(ownerIsDead(`some-other-host.example:1:abc123`), false);
    assert.equal(ownerIsDead('garbage'), false);
  });
});

describe('metrics registration', () => {
  it('two queues in one process register the metrics once, and the gauge follows the live queue', async () => {
    const db = await openDatabase(`sqlite:${tempDir('imago-jobs-m-')}/m.db`);
    const q1 = await openJobQueue(db, jobsConfig(), { logger: silent });
    const q2 = await openJobQueue(db, jobsConfig(), { logger: silent });
    try {
      const name = uniqueName('metrics');
      await q1.send(name, { a: 1 });
      await q1.send(name, { a: 2 });
      // Both handles are on one database: counted once, not twice.
      assert.match(await metricsRegistry.metrics(), new RegExp(`imago_jobs\\{name="${name}",state="created"\\} 2\\n`));
      await q2.work(name, async () => {});
      await waitFor(async () => (await q2.counts())[name]?.completed === 2, 'both done');
      const text = await metricsRegistry.metrics();
      assert.match(text, new RegExp(`imago_jobs\\{name="${name}",state="completed"\\} 2\\n`));
      assert.match(text, new RegExp(`imago_job_runs_total\\{name="${name}",outcome="completed"\\} 2\\n`));
      assert.equal(metricsRegistry.getMetricsAsArray().filter((m) => m.name === 'imago_jobs').length, 1);
    } finally {
      await q1.stop();
      await q2.stop();
      await db.close();
    }
  });
});
