import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { conflict, newId, notFound, type Config, type FailureClass } from '@imago/core';
import { nowIso, type Database, type DbOrTrx, type ImagoDb, type JobsTable, type Kysely } from '@imago/db';
import { BaseJobQueue, type Claimed, type FailureDecision, type JobQueueOptions } from './base.js';
import { JOB_STATES, type JobCounts, type JobData, type JobInfo, type JobState, type SendOptions } from './types.js';
import { resolveSendOptions, validateData, validateName } from './validate.js';

/** The jobs table plus the `owner` column added by migration 002_jobs_owner. */
type JobsDb = Omit<Database, 'jobs'> & { jobs: JobsTable & { owner: string | null } };
type JobRow = JobsDb['jobs'];

/**
 * Who claimed a job: host, pid and a nonce drawn once per process. All queue
 * handles in one process share it.
 */
const PROCESS_NONCE = randomBytes(6).toString('hex');
const HOST = hostname();
export const PROCESS_OWNER = `${HOST}:${process.pid}:${PROCESS_NONCE}`;

/**
 * Is the process that claimed a job certainly gone?
 *
 * Why not "reset every active job at start"? The embedded default is one
 * server process, but other processes open the same SQLite file (the CLI,
 * a second worker someone starts by mistake); a blanket reset at their start
 * would run a live worker's jobs twice. So each claim records its owner, and
 * at start (and periodically) a job is reclaimed at once when its owner is
 * provably dead:
 *  - same host, and the pid no longer exists (kill(pid, 0) → ESRCH); or
 *  - same host and same pid as us but another nonce: an earlier incarnation
 *    (containers restart their main process with the same pid, often 1).
 * Anything else (another host, a pid reused by an unrelated process) is left
 * to expiry: a run active for longer than its expireSeconds is reclaimed.
 */
export function ownerIsDead(owner: string | null): boolean {
  if (owner === null) return true;
  const m = /^(.*):(\d+):([0-9a-f]+)$/.exec(owner);
  if (!m) return false;
  const [, host, pidStr, nonce] = m as unknown as [string, string, string, string];
  if (host !== HOST) return false;
  const pid = Number(pidStr);
  if (pid === process.pid) return nonce !== PROCESS_NONCE;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

interface Token {
  owner: string | null;
  startedAt: string;
  retryCount: number;
}

function toInfo(r: JobRow): JobInfo {
  return {
    id: r.id,
    name: r.name,
    data: JSON.parse(r.data) as JobData,
    state: r.state as JobState,
    retryCount: r.retry_count,
    retryLimit: r.retry_limit,
    singletonKey: r.singleton_key,
    priority: r.priority,
    expireSeconds: r.expire_seconds,
    createdAt: r.created_at,
    startAfter: r.start_after,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    lastError: r.last_error,
    failureClass: (r.failure_class as FailureClass | null) ?? null,
  };
}

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

/**
 * Table-backed queue on the `jobs` table, for the embedded (SQLite)
 * deployment. A claim is one atomic statement
 * (UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING *), so several worker
 * processes on one file never run a job twice.
 */
export class SqliteJobQueue extends BaseJobQueue {
  readonly backend = 'sqlite' as const;
  private readonly db: Kysely<JobsDb>;
  private reapTimer: NodeJS.Timeout | undefined;
  private readonly reapIntervalMs: number;
  private readonly completedRetentionMs: number;
  private lastPurge = 0;
  private reaping: Promise<void> | undefined;
  private readonly localNames = new Set<string>();

  constructor(imagoDb: ImagoDb, config: Config['jobs'], opts: JobQueueOptions = {}) {
    super(config, opts, `sqlite:${imagoDb.sqlitePath ?? ''}`);
    this.db = imagoDb.db as unknown as Kysely<JobsDb>;
    this.reapIntervalMs = opts.reapIntervalMs ?? Math.max(1000, Math.min(60_000, (config.expireSeconds * 1000) / 2));
    this.completedRetentionMs = opts.completedRetentionMs ?? 7 * 24 * 60 * 60 * 1000;
  }

  async start(): Promise<this> {
    await this.reap();
    this.reapTimer = setInterval(() => void this.reap(), this.reapIntervalMs);
    this.reapTimer.unref();
    this.registerMetrics();
    return this;
  }

  async send(name: string, data: JobData, opts?: SendOptions, trx?: DbOrTrx): Promise<string | null> {
    validateName(name);
    validateData(data);
    const o = resolveSendOptions(opts, this.config);
    const now = Date.now();
    const db = (trx as unknown as Kysely<JobsDb> | undefined) ?? this.db;
    const row = await db
      .insertInto('jobs')
      .values({
        id: newId(),
        name,
        data: JSON.stringify(data),
        state: 'created',
        singleton_key: o.singletonKey,
        priority: o.priority,
        retry_count: 0,
        retry_limit: o.retryLimit,
        retry_delay_ms: o.retryDelayMs,
        retry_max_delay_ms: o.retryMaxDelayMs,
        start_after: nowIso(new Date(now + o.startAfterMs)),
        started_at: null,
        expire_seconds: o.expireSeconds,
        completed_at: null,
        created_at: nowIso(new Date(now)),
        last_error: null,
        failure_class: null,
        owner: null,
      })
      // The partial unique index on (name, singleton_key) for live states is
      // the singleton guarantee; a duplicate is silently not inserted.
      .onConflict((oc) => oc.doNothing())
      .returning('id')
      .executeTakeFirst();
    if (row && !trx && o.startAfterMs === 0) this.notify(name);
    return row?.id ?? null;
  }

  protected async claim(name: string): Promise<Claimed | null> {
    const now = nowIso();
    const r = await this.db
      .updateTable('jobs')
      .set({ state: 'active', started_at: now, owner: PROCESS_OWNER })
      .where('id', '=', (eb) =>
        eb
          .selectFrom('jobs')
          .select('id')
          .where('name', '=', name)
          .where('state', 'in', ['created', 'failed'])
          .where('start_after', '<=', now)
          .orderBy('priority', 'desc')
          .orderBy('created_at')
          .orderBy('id')
          .limit(1),
      )
      .where('state', 'in', ['created', 'failed'])
      .returningAll()
      .executeTakeFirst();
    if (!r) return null;
    const token: Token = { owner: PROCESS_OWNER, startedAt: now, retryCount: r.retry_count };
    return {
      id: r.id,
      name: r.name,
      data: JSON.parse(r.data) as JobData,
      retryCount: r.retry_count,
      retryLimit: r.retry_limit,
      retryDelayMs: r.retry_delay_ms,
      retryMaxDelayMs: r.retry_max_delay_ms,
      expireSeconds: r.expire_seconds,
      token,
    };
  }

  private guard(id: string, t: Token) {
    return this.db
      .updateTable('jobs')
      .where('id', '=', id)
      .where('state', '=', 'active')
      .where('owner', t.owner === null ? 'is' : '=', t.owner)
      .where('started_at', '=', t.startedAt)
      .where('retry_count', '=', t.retryCount);
  }

  protected async markCompleted(c: Claimed): Promise<boolean> {
    const r = await this.guard(c.id, c.token as Token).set({ state: 'completed', completed_at: nowIso(), owner: null }).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  protected async markFailed(c: Claimed, d: FailureDecision): Promise<boolean> {
    const t = c.token as Token;
    const now = Date.now();
    const common = { last_error: d.message, failure_class: d.failureClass, owner: null };
    const r = d.dead
      ? await this.guard(c.id, t).set({ ...common, state: 'dead', completed_at: nowIso(new Date(now)) }).executeTakeFirst()
      : await this.guard(c.id, t)
          .set({ ...common, state: 'failed', retry_count: t.retryCount + 1, start_after: nowIso(new Date(now + d.delayMs)) })
          .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1 && !d.dead && d.delayMs === 0) this.notify(c.name);
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Reclaim abandoned runs — owner provably dead (see ownerIsDead) or active
   * past expireSeconds — as failed attempts (so a job that kills its worker
   * every time ends up dead, not in a crash loop), retried at once. Also
   * deletes completed jobs past the retention period.
   */
  reap(): Promise<void> {
    this.reaping ??= this.doReap()
      .catch((e: unknown) => this.logger.error({ err: e }, 'jobs: reaper failed'))
      .finally(() => (this.reaping = undefined));
    return this.reaping;
  }

  private async doReap(): Promise<void> {
    const active = await this.db
      .selectFrom('jobs')
      .select(['id', 'name', 'data', 'owner', 'started_at', 'expire_seconds', 'retry_count', 'retry_limit', 'retry_delay_ms', 'retry_max_delay_ms'])
      .where('state', '=', 'active')
      .execute();
    const now = Date.now();
    for (const j of active) {
      const started = j.started_at ? Date.parse(j.started_at) : 0;
      const expired = now - started > j.expire_seconds * 1000;
      const dead = j.owner !== PROCESS_OWNER && ownerIsDead(j.owner);
      if (!expired && !dead) continue;
      const c: Claimed = {
        id: j.id,
        name: j.name,
        data: JSON.parse(j.data) as JobData,
        retryCount: j.retry_count,
        retryLimit: j.retry_limit,
        retryDelayMs: j.retry_delay_ms,
        retryMaxDelayMs: j.retry_max_delay_ms,
        expireSeconds: j.expire_seconds,
        token: { owner: j.owner, startedAt: j.started_at ?? '', retryCount: j.retry_count } satisfies Token,
      };
      const why = dead ? `worker ${j.owner} died while running the job` : `job was active for more than expireSeconds (${j.expire_seconds} s)`;
      const d = this.decide(c, new Error(why), 'ambiguous', true);
      if (await this.markFailed(c, d)) {
        this.logger.warn({ job: j.name, id: j.id, reason: why, dead: d.dead }, 'jobs: reclaimed an abandoned job');
      }
    }
    if (now - this.lastPurge > 60 * 60 * 1000) {
      this.lastPurge = now;
      await this.db
        .deleteFrom('jobs')
        .where('state', '=', 'completed')
        .where('completed_at', '<', nowIso(new Date(now - this.completedRetentionMs)))
        .execute();
    }
  }

  protected override async prepareWork(name: string): Promise<void> {
    this.localNames.add(name);
    await this.reap();
  }

  async getJob(id: string): Promise<JobInfo | null> {
    const r = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toInfo(r) : null;
  }

  async counts(): Promise<JobCounts> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(['name', 'state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['name', 'state'])
      .execute();
    const out: JobCounts = {};
    const zero = () => Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const name of this.localNames) out[name] = zero();
    for (const r of rows) {
      const byState = (out[r.name] ??= zero());
      if ((JOB_STATES as readonly string[]).includes(r.state)) byState[r.state as JobState] += Number(r.n);
    }
    return out;
  }

  async deadLetters(name?: string): Promise<JobInfo[]> {
    let q = this.db.selectFrom('jobs').selectAll().where('state', '=', 'dead');
    if (name !== undefined) q = q.where('name', '=', name);
    const rows = await q.orderBy('completed_at', 'desc').orderBy('id', 'desc').limit(1000).execute();
    return rows.map(toInfo);
  }

  async retryDead(id: string): Promise<void> {
    let n: number;
    try {
      const r = await this.db
        .updateTable('jobs')
        .set({ state: 'created', retry_count: 0, start_after: nowIso(), started_at: null, completed_at: null, owner: null })
        .where('id', '=', id)
        .where('state', '=', 'dead')
        .executeTakeFirst();
      n = Number(r.numUpdatedRows);
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict('another job with the same singleton key is queued or running');
      throw e;
    }
    if (n !== 1) throw notFound(`no dead job ${id}`);
    const j = await this.db.selectFrom('jobs').select('name').where('id', '=', id).executeTakeFirst();
    if (j) this.notify(j.name);
  }

  protected override async close(): Promise<void> {
    if (this.reapTimer) clearInterval(this.reapTimer);
    await this.reaping;
  }
}
