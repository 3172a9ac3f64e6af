import { badRequest, classifyFailure, conflict, createLogger, type Config, type FailureClass, type Logger } from '@imago/core';
import type { DbOrTrx } from '@imago/db';
import { addCountSource, jobRunsCounter, removeCountSource, type RunOutcome } from './metrics.js';
import type { Job, JobCounts, JobData, JobHandler, JobInfo, JobQueue, SendOptions, StopOptions, WorkOptions } from './types.js';
import { backoffDelayMs, validateName } from './validate.js';

export interface JobQueueOptions {
  logger?: Logger;
  /** Random source for backoff jitter (tests make it deterministic). */
  random?: () => number;
  /** SQLite: how often to look for abandoned runs. Default min(60 s, expireSeconds/2), at least 1 s. */
  reapIntervalMs?: number;
  /** SQLite: completed jobs are deleted after this long. Default 7 days. */
  completedRetentionMs?: number;
  /** Postgres: pg-boss maintenance (expiry, archiving) interval. Default min(120, expireSeconds/2), at least 1. */
  maintenanceIntervalSeconds?: number;
  /** Postgres: schema for pg-boss's tables. Default `pgboss`. */
  schema?: string;
}

/** A run this process has claimed. `token` identifies the claim, so a late finish of an abandoned run cannot overwrite a newer one. */
export interface Claimed {
  id: string;
  name: string;
  data: JobData;
  retryCount: number;
  retryLimit: number;
  retryDelayMs: number;
  retryMaxDelayMs: number;
  expireSeconds: number;
  token: unknown;
}

export interface FailureDecision {
  dead: boolean;
  delayMs: number;
  message: string;
  failureClass: FailureClass;
}

interface Registration {
  name: string;
  handler: JobHandler;
  loops: Promise<void>[];
}

interface Running {
  claimed: Claimed;
  abort: AbortController;
  released: boolean;
}

/** Error message safe to store: the message only (no stack), bounded. */
export function errorMessage(e: unknown): string {
  const m = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
  return m.length > 1000 ? `${m.slice(0, 997)}...` : m;
}

/**
 * The worker machinery both backends share: polling loops with a local
 * wake-up on send, per-name concurrency, the handler timeout, the
 * retry/dead-letter decision (classifyFailure + backoff) and graceful stop.
 * Backends supply claim/complete/fail and the queries.
 */
export abstract class BaseJobQueue implements JobQueue {
  abstract readonly backend: 'sqlite' | 'postgres';
  protected readonly logger: Logger;
  protected readonly random: () => number;
  protected stopping = false;
  private readonly registrations = new Map<string, Registration>();
  private readonly sleepers = new Map<string, Set<() => void>>();
  private readonly running = new Set<Running>();
  private readonly claiming = new Set<Promise<Claimed | null>>();
  private readonly runs = jobRunsCounter();

  constructor(
    protected readonly config: Config['jobs'],
    opts: JobQueueOptions,
    private readonly metricsKey: string,
  ) {
    this.logger = opts.logger ?? createLogger({ name: 'imago-jobs', level: process.env.IMAGO_LOG__LEVEL ?? 'info' });
    this.random = opts.random ?? Math.random;
  }

  private countSource: { counts(): Promise<JobCounts>; logger: Logger } | undefined;

  /** Feed this queue's counts to the imago_jobs gauge (backends call this once started). */
  protected registerMetrics(): void {
    this.countSource = { counts: () => this.counts(), logger: this.logger };
    addCountSource(this.metricsKey, this.countSource);
  }

  abstract send(name: string, data: JobData, opts?: SendOptions, trx?: DbOrTrx): Promise<string | null>;
  abstract getJob(id: string): Promise<JobInfo | null>;
  abstract counts(): Promise<JobCounts>;
  abstract deadLetters(name?: string): Promise<JobInfo[]>;
  abstract retryDead(id: string): Promise<void>;
  protected abstract claim(name: string): Promise<Claimed | null>;
  /** Mark the claimed run completed; false if the claim was lost (the run was reclaimed). */
  protected abstract markCompleted(c: Claimed): Promise<boolean>;
  /** Record a failed run: dead, or scheduled for retry after delayMs; false if the claim was lost. */
  protected abstract markFailed(c: Claimed, d: FailureDecision): Promise<boolean>;
  /** Backend-specific preparation before the loops start (e.g. create the pg-boss queue). */
  protected async prepareWork(_name: string): Promise<void> {}
  /** Backend-specific shutdown after the loops have stopped. */
  protected async close(): Promise<void> {}

  async work(name: string, handler: JobHandler, opts: WorkOptions = {}): Promise<void> {
    validateName(name);
    if (this.stopping) throw conflict('job queue is stopped');
    if (this.registrations.has(name)) throw conflict(`already working jobs named ${name} in this queue`);
    const concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100) throw badRequest('concurrency must be an integer in [1, 100]');
    await this.prepareWork(name);
    const reg: Registration = { name, handler, loops: [] };
    this.registrations.set(name, reg);
    for (let i = 0; i < concurrency; i++) reg.loops.push(this.loop(reg));
  }

  /** Wake idle workers of `name` in this process (after a local send). */
  protected notify(name: string): void {
    for (const wake of this.sleepers.get(name) ?? []) wake();
  }

  private sleep(name: string, ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.sleepers.get(name);
      if (!set) this.sleepers.set(name, (set = new Set()));
      const s = set;
      const done = () => {
        clearTimeout(timer);
        s.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      s.add(done);
    });
  }

  private async loop(reg: Registration): Promise<void> {
    let errorBackoff = 0;
    while (!this.stopping) {
      let claimed: Claimed | null = null;
      // Track the claim, so that stop() can wait for it: a job claimed while
      // stop() runs is handed straight back (counted as an attempt, like any
      // interrupted run) instead of starting after the queue has stopped.
      const step = this.claim(reg.name).then(async (c) => {
        if (c && this.stopping) {
          await this.recordFailure(c, new Error('worker stopped before the job started'), 'transient', true);
          return null;
        }
        return c;
      });
      this.claiming.add(step);
      try {
        claimed = await step;
        errorBackoff = 0;
      } catch (e) {
        if (this.stopping) break;
        errorBackoff = Math.min(errorBackoff * 2 || this.config.pollIntervalMs, 30_000);
        this.logger.error({ err: e, job: reg.name }, 'jobs: cannot fetch jobs; backing off');
        await this.sleep(reg.name, errorBackoff);
        continue;
      } finally {
        this.claiming.delete(step);
      }
      if (!claimed) {
        await this.sleep(reg.name, this.config.pollIntervalMs);
        continue;
      }
      await this.run(reg, claimed);
    }
  }

  private async run(reg: Registration, claimed: Claimed): Promise<void> {
    const abort = new AbortController();
    const entry: Running = { claimed, abort, released: false };
    this.running.add(entry);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), claimed.expireSeconds * 1000);
    });
    const job: Job = { id: claimed.id, name: claimed.name, data: claimed.data, retryCount: claimed.retryCount, signal: abort.signal };
    try {
      // (A run released by stop() before the handler got going never starts.)
      const result = await Promise.race([Promise.resolve().then(() => (entry.released ? undefined : reg.handler(job))), expired]);
      if (entry.released) return;
      if (result === 'expired') {
        abort.abort(new Error('job expired'));
        await this.recordFailure(claimed, new Error(`job exceeded expireSeconds (${claimed.expireSeconds} s)`), 'ambiguous');
        return;
      }
      if (await this.markCompleted(claimed)) this.count(claimed.name, 'completed');
      else this.logger.warn({ job: claimed.name, id: claimed.id }, 'jobs: run finished after its claim was lost (expired or reclaimed); result ignored');
    } catch (e) {
      if (entry.released) return;
      await this.recordFailure(claimed, e);
    } finally {
      clearTimeout(timer);
      this.running.delete(entry);
    }
  }

  /** Decide retry vs dead: permanent failures and exhausted retries are dead-lettered; the rest back off. */
  protected decide(c: Claimed, e: unknown, cls: FailureClass = classifyFailure(e), immediate = false): FailureDecision {
    const dead = cls === 'permanent' || c.retryCount >= c.retryLimit;
    return {
      dead,
      delayMs: dead || immediate ? 0 : backoffDelayMs(c.retryCount + 1, c.retryDelayMs, c.retryMaxDelayMs, this.random),
      message: errorMessage(e),
      failureClass: cls,
    };
  }

  private async recordFailure(c: Claimed, e: unknown, cls?: FailureClass, immediate = false): Promise<void> {
    const d = this.decide(c, e, cls, immediate);
    try {
      if (await this.markFailed(c, d)) {
        this.count(c.name, d.dead ? 'dead' : 'failed');
        const log = { job: c.name, id: c.id, attempt: c.retryCount + 1, failureClass: d.failureClass, error: d.message };
        if (d.dead) this.logger.error(log, 'jobs: job is dead (dead-lettered)');
        else this.logger.warn({ ...log, retryInMs: d.delayMs }, 'jobs: job failed; will retry');
      } else {
        this.logger.warn({ job: c.name, id: c.id }, 'jobs: run failed after its claim was lost; ignored');
      }
    } catch (err) {
      // The claim stays active; expiry (or the restart check) will re-run it.
      this.logger.error({ err, job: c.name, id: c.id }, 'jobs: cannot record job failure');
    }
  }

  private count(name: string, outcome: RunOutcome): void {
    this.runs.inc({ name, outcome });
  }

  async stop(opts: StopOptions = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.countSource) removeCountSource(this.metricsKey, this.countSource);
    for (const set of this.sleepers.values()) for (const wake of [...set]) wake();
    await Promise.allSettled([...this.claiming]);
    const loops = [...this.registrations.values()].flatMap((r) => r.loops);
    if (opts.graceful !== false) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, opts.timeoutMs ?? 30_000)));
      await Promise.race([Promise.allSettled(loops), timeout]);
      clearTimeout(timer);
    }
    // Whatever is still running is abandoned: abort it and hand the job back
    // for a retry now (it counts as an attempt, like a crash would).
    await Promise.all(
      [...this.running].map(async (r) => {
        r.released = true;
        r.abort.abort(new Error('job queue stopped'));
        await this.recordFailure(r.claimed, new Error('worker stopped before the job finished'), 'transient', true);
      }),
    );
    await this.close();
  }
}
