import { classifyFailure, newId, type Config, type Logger } from '@imago/core';
import { nowIso, sql, type DbOrTrx, type ImagoDb } from '@imago/db';

/**
 * The subset of `@imago/jobs` the site node uses. When that package is present
 * it is used; until then (and as a fallback) `LocalJobQueue` implements the
 * same contract on the foundation's `jobs` table.
 */
export interface SendOptions {
  singletonKey?: string;
  retryLimit?: number;
  retryDelayMs?: number;
  retryMaxDelayMs?: number;
  startAfterMs?: number;
}

export interface JobQueue {
  send(name: string, data: Record<string, string | number | boolean | null>, opts?: SendOptions, trx?: DbOrTrx): Promise<string | null>;
  work(name: string, handler: (job: { id: string; data: Record<string, unknown> }) => Promise<void>, opts?: { concurrency?: number }): Promise<void> | void;
  stop(): Promise<void>;
  counts?(): Promise<unknown>;
}

export async function openQueue(db: ImagoDb, config: Config, logger: Logger): Promise<JobQueue> {
  try {
    const name = '@imago/jobs';
    const mod = (await import(name)) as { openJobQueue?: (db: ImagoDb, cfg: Config['jobs'], opts?: unknown) => Promise<JobQueue> | JobQueue };
    if (typeof mod.openJobQueue === 'function') {
      return await mod.openJobQueue(db, config.jobs, { logger });
    }
  } catch (e) {
    logger.warn({ err: (e as Error).message }, 'site: @imago/jobs not available, using the local job queue');
  }
  return new LocalJobQueue(db, config.jobs, logger);
}

/**
 * A small durable queue on the `jobs` table: at-least-once, singleton keys,
 * exponential backoff, expiry of abandoned jobs (a killed process), and
 * classifyFailure: permanent errors dead-letter at once.
 */
export class LocalJobQueue implements JobQueue {
  private stopped = false;
  private loops: Promise<void>[] = [];
  private wake = new Set<() => void>();
  constructor(private readonly h: ImagoDb, private readonly cfg: Config['jobs'], private readonly logger: Logger) {}

  async send(name: string, data: Record<string, unknown>, opts: SendOptions = {}, trx?: DbOrTrx): Promise<string | null> {
    const id = newId();
    const now = Date.now();
    const row = {
      id, name, data: JSON.stringify(data), state: 'created', singleton_key: opts.singletonKey ?? null, priority: 0, retry_count: 0,
      retry_limit: opts.retryLimit ?? this.cfg.retryLimit, retry_delay_ms: opts.retryDelayMs ?? this.cfg.retryDelayMs,
      retry_max_delay_ms: opts.retryMaxDelayMs ?? this.cfg.retryMaxDelayMs, start_after: nowIso(new Date(now + (opts.startAfterMs ?? 0))),
      started_at: null, expire_seconds: this.cfg.expireSeconds, completed_at: null, created_at: nowIso(new Date(now)), last_error: null, failure_class: null,
    };
    const db = trx ?? this.h.db;
    const r = await db.insertInto('jobs').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    for (const w of this.wake) w();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0 ? id : null;
  }

  work(name: string, handler: (job: { id: string; data: Record<string, unknown> }) => Promise<void>, opts: { concurrency?: number } = {}): void {
    const n = opts.concurrency ?? 1;
    for (let i = 0; i < n; i++) this.loops.push(this.loop(name, handler));
  }

  private async fetch(name: string): Promise<{ id: string; data: string; retry_count: number; retry_limit: number; retry_delay_ms: number; retry_max_delay_ms: number } | undefined> {
    const now = nowIso();
    return this.h.transaction(async (trx) => {
      // Abandoned jobs (process killed while active) go back to created.
      const cand = await trx.selectFrom('jobs').select(['id', 'data', 'retry_count', 'retry_limit', 'retry_delay_ms', 'retry_max_delay_ms', 'state', 'started_at', 'expire_seconds'])
        .where('name', '=', name).where('state', '=', 'created').where('start_after', '<=', now)
        .orderBy('start_after').limit(1).executeTakeFirst();
      if (!cand) return undefined;
      const upd = await trx.updateTable('jobs').set({ state: 'active', started_at: now }).where('id', '=', cand.id).where('state', '=', 'created').executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) return undefined;
      return cand;
    });
  }

  /** Re-queue jobs left active by a killed process (older than their expiry, or all of them at start). */
  async recoverAbandoned(all = false): Promise<number> {
    let q = this.h.db.updateTable('jobs').set({ state: 'created', started_at: null }).where('state', '=', 'active');
    if (!all) q = q.where('started_at', '<', nowIso(new Date(Date.now() - this.cfg.expireSeconds * 1000)));
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  private async loop(name: string, handler: (job: { id: string; data: Record<string, unknown> }) => Promise<void>): Promise<void> {
    let idle = 0;
    while (!this.stopped) {
      let job;
      try {
        job = await this.fetch(name);
      } catch (e) {
        this.logger.warn({ err: (e as Error).message, name }, 'job fetch failed');
      }
      if (!job) {
        idle = Math.min(idle + 1, 8);
        await new Promise<void>((res) => {
          const wake = this.wake;
          const done = (): void => {
            clearTimeout(t);
            wake.delete(done);
            res();
          };
          const t = setTimeout(done, Math.min(this.cfg.pollIntervalMs * idle, 1000));
          wake.add(done);
        });
        continue;
      }
      idle = 0;
      try {
        await handler({ id: job.id, data: JSON.parse(job.data) as Record<string, unknown> });
        await this.h.db.updateTable('jobs').set({ state: 'completed', completed_at: nowIso() }).where('id', '=', job.id).execute();
      } catch (e) {
        const cls = classifyFailure(e);
        const retry = cls !== 'permanent' && job.retry_count < job.retry_limit;
        const delay = Math.min(job.retry_max_delay_ms, job.retry_delay_ms * 2 ** job.retry_count) * (0.75 + Math.random() / 2);
        try {
          await this.h.db.updateTable('jobs').set({
            state: retry ? 'created' : 'dead', retry_count: job.retry_count + 1, last_error: String((e as Error).message ?? e).slice(0, 500),
            failure_class: cls, start_after: nowIso(new Date(Date.now() + (retry ? delay : 0))), started_at: null,
          }).where('id', '=', job.id).execute();
        } catch (e2) {
          this.logger.error({ err: (e2 as Error).message }, 'job state update failed');
        }
      }
    }
  }

  async counts(): Promise<Array<{ name: string; state: string; n: number }>> {
    const rows = await this.h.db.selectFrom('jobs').select(['name', 'state', sql<number>`count(*)`.as('n')]).groupBy(['name', 'state']).execute();
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of [...this.wake]) w();
    await Promise.allSettled(this.loops);
  }
}
