import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase, type Kysely } from '@imago/db';
import { tempDir } from '@imago/testkit';
import { openJobQueue } from '../src/index.js';
import { jobQueueContract } from './contract.js';
import { jobsConfig, silent } from './helpers.js';

jobQueueContract({
  label: 'sqlite',
  openDb: () => openDatabase(`sqlite:${join(tempDir('imago-jobs-'), 'jobs.db')}`),
});

describe('SQLite reclaim of abandoned runs', () => {
  it('at start: expired runs and runs of dead owners are re-queued (or dead when out of retries); live ones are left alone', async () => {
    const db = await openDatabase(`sqlite:${join(tempDir('imago-jobs-'), 'reap.db')}`);
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
    const row = (id: string, owner: string | null, startedAt: string, retryCount = 0, retryLimit = 3) => ({
      id,
      name: 'reap',
      data: '{}',
      state: 'active',
      singleton_key: null,
      priority: 0,
      retry_count: retryCount,
      retry_limit: retryLimit,
      retry_delay_ms: 1000,
      retry_max_delay_ms: 1000,
      start_after: minutesAgo(10),
      started_at: startedAt,
      expire_seconds: 60,
      completed_at: null,
      created_at: minutesAgo(10),
      last_error: null,
      failure_class: null,
      owner,
    });
    const jobs = db.db as unknown as Kysely<{ jobs: ReturnType<typeof row> }>;
    await jobs
      .insertInto('jobs')
      .values([
        row('expired-other-host', 'elsewhere.example:7:abcdef', minutesAgo(2)),
        row('fresh-other-host', 'elsewhere.example:7:abcdef', minutesAgo(0)),
        row('dead-owner', `${hostname()}:${exited}:abcdef`, minutesAgo(0)),
        row('dead-owner-no-retries-left', `${hostname()}:${exited}:abcdef`, minutesAgo(0), 3, 3),
      ])
      .execute();
    const q = await openJobQueue(db, jobsConfig(), { logger: silent });
    try {
      const state = async (id: string) => (await q.getJob(id))?.state;
      assert.equal(await state('expired-other-host'), 'failed');
      assert.equal(await state('dead-owner'), 'failed');
      assert.equal(await state('fresh-other-host'), 'active', 'another host may be alive: wait for expiry');
      const dead = await q.getJob('dead-owner-no-retries-left');
      assert.equal(dead?.state, 'dead', 'a job that keeps killing its worker ends up dead, not in a crash loop');
      assert.match(dead?.lastError ?? '', /died while running/);
      assert.equal(dead?.failureClass, 'ambiguous');
      const requeued = await q.getJob('dead-owner');
      assert.equal(requeued?.retryCount, 1, 'the lost run counts as an attempt');
      assert.ok(Date.parse(requeued!.startAfter) <= Date.now(), 'and is retried at once');
    } finally {
      await q.stop();
      await db.close();
    }
  });
});
