/**
 * A worker process killed with SIGKILL mid-job: after a restart the job runs
 * again to completion, and a job that completed before the kill does not run
 * again. Both backends: SQLite re-runs at once because the owner process is
 * provably dead (expireSeconds is 60 s here, far longer than the test), and
 * pg-boss re-runs after the job's expiry (2 s here).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@imago/db';
import { freshPostgresDb, tempDir } from '@imago/testkit';
import { openJobQueue } from '../src/index.js';
import { jobsConfig, silent, sleep, uniqueName, waitFor } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/kill-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function startWorker(dbUrl: string, runs: string, mode: 'hang' | 'normal', name: string, expireSeconds: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dbUrl, runs, mode, name], {
    cwd: ROOT,
    env: { ...process.env, EXPIRE_SECONDS: String(expireSeconds), IMAGO_LOG__LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}

function killed(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

async function killAndRestart(dbUrl: string, expireSeconds: number): Promise<void> {
  const runs = join(tempDir('imago-kill-'), 'runs.log');
  const name = uniqueName('kill-test');
  const db = await openDatabase(dbUrl);
  const q = await openJobQueue(db, jobsConfig(), { logger: silent });
  const children: ChildProcess[] = [];
  try {
    // "quick" first (higher priority), then "hang"; the worker runs one at a time.
    const quick = await q.send(name, { tag: 'quick' }, { priority: 10 });
    const hang = await q.send(name, { tag: 'hang' }, { expireSeconds });
    assert.ok(quick && hang);

    const first = await startWorker(dbUrl, runs, 'hang', name, expireSeconds);
    children.push(first);
    await waitFor(() => lines(runs).some((l) => l.startsWith('start hang')), '"hang" to start', 15_000);
    assert.equal((await q.getJob(quick))?.state, 'completed');
    await killed(first, 'SIGKILL');
    assert.equal((await q.getJob(hang))?.state, 'active', 'the killed run is still claimed');

    const t0 = Date.now();
    const second = await startWorker(dbUrl, runs, 'normal', name, expireSeconds);
    children.push(second);
    await waitFor(async () => (await q.getJob(hang))?.state === 'completed', '"hang" to complete after restart', 20_000);
    const rerunAfterMs = Date.now() - t0;
    await sleep(300); // a wrongly re-queued "quick" would run in this window

    const log = lines(runs);
    const [p1, p2] = [first.pid, second.pid];
    assert.deepEqual(
      log.filter((l) => l.includes('quick')),
      [`start quick ${p1} 0`, `done quick ${p1}`],
      'the job completed before the kill ran exactly once',
    );
    assert.deepEqual(
      log.filter((l) => l.includes('hang')),
      [`start hang ${p1} 0`, `start hang ${p2} 1`, `done hang ${p2}`],
      'the killed job ran again, in the new process, as retry 1',
    );
    const info = await q.getJob(hang);
    assert.equal(info?.retryCount, 1);
    if (expireSeconds >= 60) assert.ok(rerunAfterMs < 10_000, `re-run promptly after restart (${rerunAfterMs} ms), not after expiry`);
  } finally {
    await Promise.all(children.map((c) => killed(c, 'SIGKILL')));
    await q.stop();
    await db.close();
  }
}

describe('a worker killed with SIGKILL', () => {
  it('sqlite: the killed job re-runs right after restart; a finished one does not', async () => {
    await killAndRestart(`sqlite:${join(tempDir('imago-kill-db-'), 'jobs.db')}`, 60);
  });

  it('postgres: the killed job re-runs after its expiry; a finished one does not', async () => {
    await killAndRestart(await freshPostgresDb('jobkill'), 2);
  });
});
