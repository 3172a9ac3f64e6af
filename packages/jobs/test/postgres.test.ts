import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClassifiedError } from '@imago/core';
import { openDatabase, sql, type ImagoDb } from '@imago/db';
import { freshPostgresDb } from '@imago/testkit';
import { openJobQueue } from '../src/index.js';
import { jobQueueContract } from './contract.js';
import { jobsConfig, silent, uniqueName, waitFor } from './helpers.js';

jobQueueContract({
  label: 'postgres (pg-boss)',
  openDb: async () => openDatabase(await freshPostgresDb('jobs')),
});

describe('pg-boss specifics', () => {
  let db: ImagoDb;
  before(async () => {
    db = await openDatabase(await freshPostgresDb('jobs'));
  });
  after(async () => {
    await db.close();
  });

  it('dead jobs are also copied to NAME__dead (pg-boss deadLetter); retryDead removes the copy', async () => {
    const q = await openJobQueue(db, jobsConfig(), { logger: silent });
    try {
      const name = uniqueName('dlq');
      let fail = true;
      await q.work(name, async () => {
        if (fail) throw new ClassifiedError('permanent', 'bad');
      });
      const id = await q.send(name, { studyId: 's9' });
      await waitFor(async () => (await q.getJob(id!))?.state === 'dead', 'dead');
      const queue = await sql<{ dead_letter: string }>`SELECT dead_letter FROM pgboss.queue WHERE name = ${name}`.execute(db.db);
      assert.equal(queue.rows[0]?.dead_letter, `${name}__dead`);
      const copies = await sql<{ data: { d: unknown }; output: { jobId: string; failureClass: string } }>`
        SELECT data, output FROM pgboss.job WHERE name = ${`${name}__dead`}`.execute(db.db);
      assert.equal(copies.rows.length, 1);
      assert.deepEqual(copies.rows[0]!.data.d, { studyId: 's9' });
      assert.equal(copies.rows[0]!.output.jobId, id);
      assert.equal(copies.rows[0]!.output.failureClass, 'permanent');
      // The dead-letter queue is internal: not in counts().
      assert.equal((await q.counts())[`${name}__dead`], undefined);
      fail = false;
      await q.retryDead(id!);
      const left = await sql`SELECT 1 FROM pgboss.job WHERE name = ${`${name}__dead`}`.execute(db.db);
      assert.equal(left.rows.length, 0);
      await waitFor(async () => (await q.getJob(id!))?.state === 'completed', 'completed');
    } finally {
      await q.stop();
    }
  });

  it('runs on the application pool: pg-boss opens no connections of its own', async () => {
    const before = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgboss'`.execute(db.db);
    const q = await openJobQueue(db, jobsConfig(), { logger: silent });
    try {
      await q.send(uniqueName('pool'), { a: 1 });
      const during = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgboss'`.execute(db.db);
      assert.equal(during.rows[0]!.n, before.rows[0]!.n);
    } finally {
      await q.stop();
    }
  });
});
