/**
 * The JobQueue contract, run against both backends (sqlite.test.ts,
 * postgres.test.ts).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { ClassifiedError, badRequest, isImagoError, metricsRegistry, newId, unavailable, type Config } from '@imago/core';
import { nowIso, type ImagoDb } from '@imago/db';
import { openJobQueue, type Job, type JobQueue, type JobQueueOptions } from '../src/index.js';
import { jobsConfig, silent, sleep, uniqueName, waitFor } from './helpers.js';

export interface Backend {
  label: string;
  /** A fresh, migrated database for the suite. */
  openDb(): Promise<ImagoDb>;
}

const untilAborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve())));

function isCode(code: string) {
  return (e: unknown) => {
    assert.ok(isImagoError(e), `expected ImagoError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

export function jobQueueContract(backend: Backend): void {
  describe(`JobQueue contract: ${backend.label}`, () => {
    let db: ImagoDb;
    const queues: JobQueue[] = [];
    const open = async (cfg: Partial<Config['jobs']> = {}, opts: JobQueueOptions = {}) => {
      const q = await openJobQueue(db, jobsConfig(cfg), { logger: silent, ...opts });
      queues.push(q);
      return q;
    };

    before(async () => {
      db = await backend.openDb();
    });
    afterEach(async () => {
      await Promise.all(queues.splice(0).map((q) => q.stop({ graceful: false })));
    });
    after(async () => {
      await db.close();
    });

    it('runs a sent job once, with its data, and records it completed', async () => {
      const q = await open();
      const name = uniqueName('roundtrip');
      const seen: Job[] = [];
      await q.work(name, async (job) => {
        seen.push(job);
      });
      const data = { studyId: 'st-1', n: 3, flag: true, none: null };
      const id = await q.send(name, data);
      assert.ok(id);
      const info = await waitFor(async () => ((await q.getJob(id))?.state === 'completed' ? q.getJob(id) : null), 'completion');
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.id, id);
      assert.equal(seen[0]!.name, name);
      assert.deepEqual(seen[0]!.data, data);
      assert.equal(seen[0]!.retryCount, 0);
      assert.deepEqual(info.data, data);
      assert.equal(info.name, name);
      assert.equal(info.retryCount, 0);
      assert.ok(info.completedAt && info.startedAt && info.createdAt);
      const counts = await q.counts();
      assert.deepEqual(counts[name], { created: 0, active: 0, failed: 0, completed: 1, dead: 0 });
      await sleep(100);
      assert.equal(seen.length, 1, 'not run twice');
      assert.equal(await q.getJob(newId()), null);
      assert.equal(await q.getJob('not-an-id'), null);
    });

    it('a singleton key allows one live job: duplicates return null, until it has finished', async () => {
      const q = await open();
      const name = uniqueName('singleton');
      const first = await q.send(name, { studyId: 'a' }, { singletonKey: 'study-a' });
      assert.ok(first);
      assert.equal(await q.send(name, { studyId: 'a' }, { singletonKey: 'study-a' }), null);
      const concurrent = await Promise.all(Array.from({ length: 5 }, () => q.send(name, { studyId: 'b' }, { singletonKey: 'study-b' })));
      assert.equal(concurrent.filter((x) => x !== null).length, 1, 'exactly one of five concurrent sends wins');
      assert.ok(await q.send(uniqueName('other'), { studyId: 'a' }, { singletonKey: 'study-a' }), 'same key, other name is independent');
      assert.ok(await q.send(name, { studyId: 'a' }), 'no key: no singleton');
      // While the job is failed and waiting for its retry it is still live.
      let runs = 0;
      await q.work(name, async (job) => {
        if (job.data.studyId === 'a' && job.retryCount === 0 && ++runs) throw new Error('flaky');
      });
      await waitFor(async () => (await q.getJob(first))?.state === 'completed', 'singleton job completion');
      const again = await q.send(name, { studyId: 'a' }, { singletonKey: 'study-a' });
      assert.ok(again && again !== first, 'a finished job frees its key');
    });

    it('a singleton job waiting for a retry still holds its key', async () => {
      const q = await open({}, { random: () => 1 });
      const name = uniqueName('singleton-retry');
      const id = await q.send(name, { x: 1 }, { singletonKey: 'k', retryDelayMs: 60_000, retryMaxDelayMs: 60_000 });
      assert.ok(id);
      await q.work(name, async () => {
        throw new Error('fails, retry in a minute');
      });
      await waitFor(async () => (await q.getJob(id))?.state === 'failed', 'failed state');
      assert.equal(await q.send(name, { x: 2 }, { singletonKey: 'k' }), null);
    });

    it('send in a transaction: rolled back → no job; committed → job and data together', async () => {
      const q = await open();
      const name = uniqueName('trx');
      let rolledBackId: string | null = null;
      await assert.rejects(
        db.transaction(async (trx) => {
          await trx.insertInto('organisations').values({ id: 'org-rb', code: `RB${Date.now()}`, name: 'x', kind: 'hospital', created_at: nowIso() }).execute();
          rolledBackId = await q.send(name, { orgId: 'org-rb' }, {}, trx);
          throw new Error('abort the transaction');
        }),
        /abort the transaction/,
      );
      assert.ok(rolledBackId, 'send returned an id inside the transaction');
      assert.equal(await q.getJob(rolledBackId), null);
      assert.equal((await q.counts())[name]?.created ?? 0, 0);
      assert.equal(await db.db.selectFrom('organisations').select('id').where('id', '=', 'org-rb').executeTakeFirst(), undefined);

      const committedId = await db.transaction(async (trx) => {
        await trx.insertInto('organisations').values({ id: 'org-ok', code: `OK${Date.now()}`, name: 'x', kind: 'hospital', created_at: nowIso() }).execute();
        return q.send(name, { orgId: 'org-ok' }, { singletonKey: 'org-ok' }, trx);
      });
      assert.ok(committedId);
      const ran: string[] = [];
      await q.work(name, async (job) => {
        // The data written in the same transaction is there when the job runs.
        const org = await db.db.selectFrom('organisations').select('id').where('id', '=', String(job.data.orgId)).executeTakeFirst();
        ran.push(org?.id ?? 'missing');
      });
      await waitFor(async () => (await q.getJob(committedId))?.state === 'completed', 'committed job');
      assert.deepEqual(ran, ['org-ok']);
    });

    it('retries with capped exponential backoff, then succeeds', async () => {
      // random() = 1 makes full jitter take its ceiling: 250 ms, then 500 ms.
      const q = await open({}, { random: () => 1 });
      const name = uniqueName('retry');
      const attempts: { at: number; retryCount: number }[] = [];
      await q.work(name, async (job) => {
        attempts.push({ at: Date.now(), retryCount: job.retryCount });
        if (attempts.length === 1) throw new Error('temporary');
        if (attempts.length === 2) throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
      });
      const id = await q.send(name, { id: 'x' }, { retryLimit: 5, retryDelayMs: 250, retryMaxDelayMs: 10_000 });
      assert.ok(id);
      await waitFor(async () => (await q.getJob(id))?.state === 'failed', 'first failure');
      const failed = await q.getJob(id);
      assert.equal(failed?.lastError, 'temporary');
      assert.equal(failed?.failureClass, 'transient');
      assert.equal(failed?.retryCount, 1, 'the next run is retry 1');
      await waitFor(async () => (await q.getJob(id))?.state === 'completed', 'eventual success');
      assert.deepEqual(attempts.map((a) => a.retryCount), [0, 1, 2]);
      const gap1 = attempts[1]!.at - attempts[0]!.at;
      const gap2 = attempts[2]!.at - attempts[1]!.at;
      assert.ok(gap1 >= 240 && gap1 < 2000, `first retry after ~250 ms, was ${gap1}`);
      assert.ok(gap2 >= 490 && gap2 < 2500, `second retry after ~500 ms, was ${gap2}`);
      const info = await q.getJob(id);
      assert.equal(info?.retryCount, 2);
      assert.equal(info?.lastError, 'connection reset', 'a completed job still shows its last failure');
      assert.equal(info?.failureClass, 'ambiguous', 'ECONNRESET is ambiguous, and was retried');
      const text = await metricsRegistry.metrics();
      assert.match(text, new RegExp(`imago_job_runs_total\\{name="${name}",outcome="failed"\\} 2`));
      assert.match(text, new RegExp(`imago_job_runs_total\\{name="${name}",outcome="completed"\\} 1`));
      assert.match(text, new RegExp(`imago_jobs\\{name="${name}",state="completed"\\} 1`));
    });

    it('the backoff cap bounds the delay', async () => {
      const q = await open({}, { random: () => 1 });
      const name = uniqueName('cap');
      const at: number[] = [];
      await q.work(name, async () => {
        at.push(Date.now());
        if (at.length < 4) throw new Error('again');
      });
      // Uncapped the waits would be 100, 200, 400 ms; capped at 120 ms.
      const id = await q.send(name, {}, { retryLimit: 5, retryDelayMs: 100, retryMaxDelayMs: 120 });
      await waitFor(async () => (await q.getJob(id!))?.state === 'completed', 'completion');
      assert.equal(at.length, 4);
      const gap3 = at[3]! - at[2]!;
      assert.ok(gap3 >= 110 && gap3 < 350, `third wait capped at 120 ms, was ${gap3}`);
    });

    it('after retryLimit retries the job is dead and listed in deadLetters()', async () => {
      const q = await open();
      const name = uniqueName('exhaust');
      let runs = 0;
      await q.work(name, async () => {
        runs++;
        throw unavailable('hub unreachable');
      });
      const id = await q.send(name, { caseId: 'c1' }, { retryLimit: 2, retryDelayMs: 1, retryMaxDelayMs: 5 });
      assert.ok(id);
      await waitFor(async () => (await q.getJob(id))?.state === 'dead', 'dead state');
      await sleep(150);
      assert.equal(runs, 3, 'first run + 2 retries, then no more');
      const dead = await q.deadLetters(name);
      assert.equal(dead.length, 1);
      assert.equal(dead[0]!.id, id);
      assert.equal(dead[0]!.state, 'dead');
      assert.equal(dead[0]!.lastError, 'ImagoError: hub unreachable');
      assert.equal(dead[0]!.failureClass, 'transient');
      assert.equal(dead[0]!.retryLimit, 2);
      assert.deepEqual(dead[0]!.data, { caseId: 'c1' });
      assert.ok((await q.deadLetters()).some((j) => j.id === id), 'listed without a name filter too');
      assert.deepEqual(await q.deadLetters(uniqueName('nothing')), []);
      assert.equal((await q.counts())[name]?.dead, 1);
    });

    it('a permanent error dead-letters at once, without retries', async () => {
      const q = await open();
      const name = uniqueName('permanent');
      const runs: string[] = [];
      await q.work(name, async (job) => {
        runs.push(String(job.data.kind));
        if (job.data.kind === 'imago') throw badRequest('study has no pixel data');
        throw new ClassifiedError('permanent', 'consent withdrawn');
      });
      const a = await q.send(name, { kind: 'imago' }, { retryLimit: 5, retryDelayMs: 1 });
      const b = await q.send(name, { kind: 'classified' }, { retryLimit: 5, retryDelayMs: 1 });
      await waitFor(async () => (await q.getJob(a!))?.state === 'dead' && (await q.getJob(b!))?.state === 'dead', 'both dead');
      await sleep(150);
      assert.deepEqual(runs.sort(), ['classified', 'imago']);
      const infoA = await q.getJob(a!);
      assert.equal(infoA?.failureClass, 'permanent');
      assert.equal(infoA?.lastError, 'ImagoError: study has no pixel data');
      assert.equal(infoA?.retryCount, 0);
      assert.equal(infoA?.retryLimit, 5);
      assert.equal((await q.getJob(b!))?.lastError, 'ClassifiedError: consent withdrawn');
    });

    it('retryDead re-runs a dead job from scratch', async () => {
      const q = await open();
      const name = uniqueName('retrydead');
      let fixed = false;
      const seen: number[] = [];
      await q.work(name, async (job) => {
        seen.push(job.retryCount);
        if (!fixed) throw new ClassifiedError('permanent', 'needs a person');
      });
      const id = await q.send(name, { x: 1 }, { singletonKey: 'only', retryLimit: 1 });
      assert.ok(id);
      await waitFor(async () => (await q.getJob(id))?.state === 'dead', 'dead');
      await assert.rejects(q.retryDead(newId()), isCode('notFound'));
      fixed = true;
      await q.retryDead(id);
      await waitFor(async () => (await q.getJob(id))?.state === 'completed', 'completed after retryDead');
      assert.deepEqual(seen, [0, 0]);
      assert.deepEqual(await q.deadLetters(name), []);
      await assert.rejects(q.retryDead(id), isCode('notFound'), 'a completed job is not dead');
    });

    it('retryDead refuses when the singleton key is live again', async () => {
      const q = await open();
      const name = uniqueName('retrydead-conflict');
      await q.work(name, async (job) => {
        if (job.data.v === 1) throw new ClassifiedError('permanent', 'no');
        await untilAborted(job.signal); // v2 stays active
      });
      const id = await q.send(name, { v: 1 }, { singletonKey: 'k' });
      await waitFor(async () => (await q.getJob(id!))?.state === 'dead', 'dead');
      const id2 = await q.send(name, { v: 2 }, { singletonKey: 'k' });
      assert.ok(id2, 'a dead job does not hold its key');
      await assert.rejects(q.retryDead(id!), isCode('conflict'));
      assert.equal((await q.getJob(id!))?.state, 'dead');
    });

    it('validates payloads, names and options, and enqueues nothing invalid', async () => {
      const q = await open();
      const name = uniqueName('validate');
      const bad: unknown[] = [
        { nested: { a: 1 } },
        { list: [1, 2] },
        { fn: () => 1 },
        { u: undefined },
        { n: Number.NaN },
        { inf: Infinity },
        { nul: 'a\u0000b' },
        { big: 'x'.repeat(2100) },
        [1, 2],
        null,
        'string',
        new Date(),
        new Map(),
      ];
      for (const d of bad) {
        await assert.rejects(q.send(name, d as never), isCode('badRequest'), `data ${String(d)}`);
      }
      // 2 KB is measured as UTF-8 JSON: 700 three-byte characters are too many.
      await assert.rejects(q.send(name, { s: '€'.repeat(700) }), isCode('badRequest'));
      assert.ok(await q.send(name, { s: 'x'.repeat(2000) }), 'just under 2 KB is fine');
      for (const n of ['', 'has space', 'x'.repeat(101), 'a/b', 'q__dead', '-lead']) {
        await assert.rejects(q.send(n, {}), isCode('badRequest'), `name ${n}`);
      }
      const badOpts = [{ retryLimit: -1 }, { retryLimit: 1.5 }, { expireSeconds: 0 }, { expireSeconds: 24 * 3600 }, { priority: 0.5 }, { startAfterMs: -1 }, { singletonKey: '' }, { singletonKey: 'a\u0000' }];
      for (const o of badOpts) {
        await assert.rejects(q.send(name, {}, o), isCode('badRequest'), JSON.stringify(o));
      }
      const c = (await q.counts())[name];
      assert.equal(c?.created, 1, 'only the valid job was enqueued');
    });

    it('honours priority and startAfterMs', async () => {
      const q = await open();
      const name = uniqueName('order');
      const order: string[] = [];
      const t0 = Date.now();
      const later = await q.send(name, { tag: 'later' }, { startAfterMs: 400, priority: 100 });
      await q.send(name, { tag: 'low' }, { priority: -1 });
      await q.send(name, { tag: 'high' }, { priority: 5 });
      await q.send(name, { tag: 'mid' });
      let laterAt = 0;
      await q.work(name, async (job) => {
        order.push(String(job.data.tag));
        if (job.data.tag === 'later') laterAt = Date.now();
      });
      await waitFor(async () => (await q.getJob(later!))?.state === 'completed', 'delayed job');
      assert.deepEqual(order, ['high', 'mid', 'low', 'later']);
      assert.ok(laterAt - t0 >= 390, `startAfter respected (${laterAt - t0} ms)`);
    });

    it('runs up to `concurrency` jobs of a name at once', async () => {
      const q = await open();
      const name = uniqueName('concurrency');
      let now = 0;
      let max = 0;
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => q.send(name, { i })));
      await q.work(
        name,
        async () => {
          max = Math.max(max, ++now);
          await sleep(150);
          now--;
        },
        { concurrency: 3 },
      );
      await waitFor(async () => (await Promise.all(ids.map((id) => q.getJob(id!)))).every((j) => j?.state === 'completed'), 'all done');
      assert.equal(max, 3);
      await assert.rejects(q.work(name, async () => {}), isCode('conflict'), 'one registration per name');
    });

    it('a run longer than expireSeconds is aborted and retried', async () => {
      const q = await open();
      const name = uniqueName('expire');
      const signals: AbortSignal[] = [];
      await q.work(name, async (job) => {
        signals.push(job.signal);
        if (job.retryCount === 0) await untilAborted(job.signal);
      });
      const id = await q.send(name, {}, { expireSeconds: 1, retryDelayMs: 1 });
      const t0 = Date.now();
      await waitFor(async () => (await q.getJob(id!))?.state === 'completed', 'completion after expiry', 8000);
      assert.ok(Date.now() - t0 >= 950);
      assert.equal(signals.length, 2);
      assert.equal(signals[0]!.aborted, true, 'the expired run was told to stop');
      assert.equal(signals[1]!.aborted, false);
    });

    it('graceful stop waits for running jobs; stop without waiting hands them back', async () => {
      const q1 = await open();
      const name = uniqueName('stop');
      let finished = 0;
      await q1.work(name, async () => {
        await sleep(300);
        finished++;
      });
      const a = await q1.send(name, {});
      await waitFor(async () => (await q1.getJob(a!))?.state === 'active', 'a active');
      await q1.stop();
      assert.equal(finished, 1);
      assert.equal((await q1.getJob(a!))?.state, 'completed');
      await assert.rejects(q1.work(uniqueName('after-stop'), async () => {}), isCode('conflict'));

      const q2 = await open();
      let started = false;
      let aborted = false;
      await q2.work(name, async (job) => {
        started = true;
        await untilAborted(job.signal);
        aborted = true;
      });
      const b = await q2.send(name, {}, { retryDelayMs: 60_000 });
      await waitFor(() => started, 'b started');
      await q2.stop({ graceful: false });
      assert.equal(aborted, true);
      const info = await q2.getJob(b!);
      assert.equal(info?.state, 'failed', 'handed back for a retry');
      assert.equal(info?.retryCount, 1);
      // Another worker picks it up at once (no backoff for a stopped worker).
      const q3 = await open();
      await q3.work(name, async () => {});
      await waitFor(async () => (await q3.getJob(b!))?.state === 'completed', 'b completed by another worker', 5000);
    });
  });
}
