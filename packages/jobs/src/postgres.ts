import PgBoss from 'pg-boss';
// kysely, prom-client: resolved through @imago/db's and @imago/core's dependencies (not yet declared in this package.json).
import { CompiledQuery } from 'kysely';
import { conflict, notFound, type Config, type FailureClass } from '@imago/core';
import type { Database, DbOrTrx, ImagoDb, Kysely, Transaction } from '@imago/db';
import { BaseJobQueue, type Claimed, type FailureDecision, type JobQueueOptions } from './base.js';
import { JOB_STATES, type JobCounts, type JobData, type JobInfo, type JobState, type SendOptions } from './types.js';
import { DEAD_LETTER_SUFFIX, resolveSendOptions, validateData, validateName } from './validate.js';

type Exec = (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/**
 * What we store as the pg-boss job's `data`: the caller's payload plus our
 * retry policy, which pg-boss has no columns for (its retry_delay is whole
 * seconds and its backoff has no cap). `l` keeps the retry limit as sent,
 * because dead-lettering a permanent failure lowers pg-boss's retry_limit.
 */
interface Envelope {
  d: JobData;
  r: [delayMs: number, maxDelayMs: number, retryLimit: number];
}

function isEnvelope(v: unknown): v is Envelope {
  return typeof v === 'object' && v !== null && 'd' in v && Array.isArray((v as { r?: unknown }).r);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** pg-boss state → ours. pg-boss 'retry' is a failed attempt waiting for its retry; its 'failed' is our dead. */
const STATE_MAP: Record<string, JobState> = {
  created: 'created',
  retry: 'failed',
  active: 'active',
  completed: 'completed',
  failed: 'dead',
  cancelled: 'dead',
};

function kyselyExec(db: Kysely<Database> | Transaction<Database>): Exec {
  return async (text, values) => {
    const r = await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(text, values ?? []));
    return { rows: [...r.rows] };
  };
}

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

/**
 * PostgreSQL queue on pg-boss v10. What pg-boss does: schema and
 * migrations, queues (one partition each), insert (also inside the caller's
 * transaction through its `db.executeSql` hook), the fetch (FOR UPDATE SKIP
 * LOCKED), complete/fail, expiry of abandoned runs in its maintenance, and
 * dead-lettering: each queue NAME is created with `deadLetter: NAME__dead`,
 * so a job that ends up failed also leaves a copy in that queue.
 *
 * What we add on top, and why:
 *  - our own polling loop (BaseJobQueue) instead of boss.work(): boss.work
 *    completes or fails the job itself from the handler's outcome, so it
 *    cannot dead-letter a *permanent* error early, has no backoff cap and a
 *    1-second resolution, and polls at ≥ 500 ms.
 *  - permanent errors: before boss.fail() we lower the job's retry_limit to
 *    its retry_count in the same transaction, so pg-boss's own fail path
 *    moves it to 'failed' and writes the dead-letter copy.
 *  - retries: boss.fail() puts the job in 'retry' (retry_delay 0), and in the
 *    same transaction we set start_after to our full-jitter backoff.
 *  - singleton keys: pg-boss's policies do not give "one created-or-retry-or-
 *    active job per key", so send() takes a transaction-scoped advisory lock
 *    on (name, key) and checks for a live job before inserting.
 *  - every completion/failure first checks, under a row lock, that the job is
 *    still the run we claimed (state active, same retry_count), so a run that
 *    was expired and re-run elsewhere cannot be completed by its late first
 *    run.
 * Our API shows the original job (the id send() returned) as the dead
 * letter; retryDead() resets it and removes its copy from NAME__dead.
 */
export class PgJobQueue extends BaseJobQueue {
  readonly backend = 'postgres' as const;
  private readonly boss: PgBoss;
  private readonly s: string;
  private readonly kdb: Kysely<Database>;
  private readonly poolExec: Exec;
  private readonly queues = new Map<string, Promise<void>>();

  constructor(imagoDb: ImagoDb, config: Config['jobs'], opts: JobQueueOptions = {}) {
    const pool = imagoDb.pgPool;
    if (!pool) throw new Error('jobs: a postgres ImagoDb has no pgPool');
    const schema = opts.schema ?? 'pgboss';
    if (!/^[a-z_][a-z0-9_]{0,49}$/.test(schema)) throw new Error('jobs: invalid pg-boss schema name');
    const connKey = (pool as unknown as { options?: { connectionString?: string } }).options?.connectionString ?? 'pg';
    super(config, opts, `postgres:${connKey}#${schema}`);
    this.s = schema;
    this.kdb = imagoDb.db;
    this.poolExec = async (text, values) => {
      const r = await pool.query(text, values);
      return { rows: r.rows as Record<string, unknown>[] };
    };
    const maintenance = opts.maintenanceIntervalSeconds ?? Math.max(1, Math.min(120, Math.floor(config.expireSeconds / 2)));
    this.boss = new PgBoss({
      // pg-boss runs on the application's pool (its Db interface), not a pool of its own.
      db: { executeSql: (text: string, values: unknown[]) => this.poolExec(text, values) },
      schema,
      migrate: true,
      supervise: true,
      maintenanceIntervalSeconds: maintenance,
      schedule: false,
      // Dead jobs ('failed' in pg-boss) are kept for inspection and retryDead()
      // rather than archived after the default 12 hours.
      archiveFailedAfterSeconds: 10 * 365 * 24 * 60 * 60,
      retentionDays: 30,
    });
    this.boss.on('error', (e) => this.logger.error({ err: e }, 'jobs: pg-boss error'));
  }

  async start(): Promise<this> {
    await this.boss.start();
    // Re-run what expired while no worker was up, without waiting for the first maintenance tick.
    await this.boss.expire();
    this.registerMetrics();
    return this;
  }

  private ensureQueue(name: string): Promise<void> {
    let p = this.queues.get(name);
    if (!p) {
      const dlq = name + DEAD_LETTER_SUFFIX;
      p = (async () => {
        await this.boss.createQueue(dlq, { name: dlq, policy: 'standard' });
        await this.boss.createQueue(name, { name, policy: 'standard', deadLetter: dlq });
      })();
      p.catch(() => this.queues.delete(name));
      this.queues.set(name, p);
    }
    return p;
  }

  /** Run `fn` in the caller's transaction, or in one of our own when `needTx`, or straight on the pool. */
  private async withExec<T>(trx: DbOrTrx | undefined, needTx: boolean, fn: (exec: Exec) => Promise<T>): Promise<T> {
    if (trx?.isTransaction) return fn(kyselyExec(trx));
    const db = (trx as Kysely<Database> | undefined) ?? this.kdb;
    if (needTx) return db.transaction().execute((t) => fn(kyselyExec(t)));
    return fn(trx ? kyselyExec(db) : this.poolExec);
  }

  private async singletonTaken(exec: Exec, name: string, key: string): Promise<boolean> {
    await exec('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [JSON.stringify(['imago.jobs.singleton', name, key])]);
    const r = await exec(
      `SELECT 1 FROM ${this.s}.job WHERE name = $1 AND singleton_key = $2 AND state IN ('created', 'retry', 'active') LIMIT 1`,
      [name, key],
    );
    return r.rows.length > 0;
  }

  async send(name: string, data: JobData, opts?: SendOptions, trx?: DbOrTrx): Promise<string | null> {
    validateName(name);
    validateData(data);
    const o = resolveSendOptions(opts, this.config);
    await this.ensureQueue(name);
    const envelope: Envelope = { d: data, r: [o.retryDelayMs, o.retryMaxDelayMs, o.retryLimit] };
    const id = await this.withExec(trx, o.singletonKey !== null, async (exec) => {
      if (o.singletonKey !== null && (await this.singletonTaken(exec, name, o.singletonKey))) return null;
      return this.boss.send(name, envelope, {
        db: { executeSql: exec },
        priority: o.priority,
        retryLimit: o.retryLimit,
        // Retries we schedule ourselves; these two only shape pg-boss's own
        // retry of an expired run: immediately.
        retryDelay: 0,
        retryBackoff: false,
        expireInSeconds: o.expireSeconds,
        ...(o.singletonKey !== null ? { singletonKey: o.singletonKey } : {}),
        ...(o.startAfterMs > 0 ? { startAfter: new Date(Date.now() + o.startAfterMs) } : {}),
      });
    });
    if (id && !trx?.isTransaction && o.startAfterMs === 0) this.notify(name);
    return id;
  }

  protected override async prepareWork(name: string): Promise<void> {
    await this.ensureQueue(name);
  }

  protected async claim(name: string): Promise<Claimed | null> {
    if (this.stopping) return null;
    const [job] = await this.boss.fetch<unknown>(name, { includeMetadata: true, batchSize: 1 });
    if (!job) return null;
    const env = isEnvelope(job.data) ? job.data : { d: (job.data ?? {}) as JobData, r: [this.config.retryDelayMs, this.config.retryMaxDelayMs, job.retryLimit] as Envelope['r'] };
    return {
      id: job.id,
      name: job.name,
      data: env.d,
      retryCount: job.retryCount,
      retryLimit: job.retryLimit,
      retryDelayMs: env.r[0],
      retryMaxDelayMs: env.r[1],
      expireSeconds: Number(job.expireInSeconds),
      token: job.retryCount,
    };
  }

  /** Lock the job row if it is still the run we claimed; returns its output (last failure), or false. */
  private async stillOurs(exec: Exec, c: Claimed): Promise<{ output: object | null } | false> {
    const r = await exec(`SELECT output FROM ${this.s}.job WHERE name = $1 AND id = $2 AND state = 'active' AND retry_count = $3 FOR UPDATE`, [
      c.name,
      c.id,
      c.token,
    ]);
    const row = r.rows[0];
    return row ? { output: (row.output as object | null) ?? null } : false;
  }

  protected async markCompleted(c: Claimed): Promise<boolean> {
    return this.kdb.transaction().execute(async (t) => {
      const exec = kyselyExec(t);
      const mine = await this.stillOurs(exec, c);
      if (!mine) return false;
      // Keep the last failure (if any) as the output, as the SQLite queue keeps last_error.
      await this.boss.complete(c.name, c.id, mine.output ?? {}, { db: { executeSql: exec } });
      return true;
    });
  }

  protected async markFailed(c: Claimed, d: FailureDecision): Promise<boolean> {
    const ok = await this.kdb.transaction().execute(async (t) => {
      const exec = kyselyExec(t);
      if (!(await this.stillOurs(exec, c))) return false;
      if (d.dead) {
        // Make pg-boss's fail path give up now (permanent error), whatever retries are left.
        await exec(`UPDATE ${this.s}.job SET retry_limit = retry_count WHERE name = $1 AND id = $2`, [c.name, c.id]);
      }
      const output = { jobId: c.id, message: d.message, failureClass: d.failureClass, attempt: c.retryCount + 1 };
      await this.boss.fail(c.name, c.id, output, { db: { executeSql: exec } });
      if (!d.dead) {
        await exec(`UPDATE ${this.s}.job SET start_after = now() + $3 * interval '1 millisecond' WHERE name = $1 AND id = $2 AND state = 'retry'`, [
          c.name,
          c.id,
          d.delayMs,
        ]);
      }
      return true;
    });
    if (ok && !d.dead && d.delayMs === 0) this.notify(c.name);
    return ok;
  }

  private rowToInfo(r: Record<string, unknown>): JobInfo {
    const env = isEnvelope(r.data) ? r.data : undefined;
    const out = (r.output ?? null) as { message?: unknown; failureClass?: unknown; value?: { message?: unknown } } | null;
    const message = out?.message ?? out?.value?.message;
    return {
      id: String(r.id),
      name: String(r.name),
      data: env ? env.d : ((r.data ?? {}) as JobData),
      state: STATE_MAP[String(r.state)] ?? 'dead',
      // pg-boss counts a retry when the job is fetched again; we count it when
      // the attempt fails (as the SQLite queue does), i.e. the retryCount the
      // next run will see.
      retryCount: Number(r.retry_count) + (r.state === 'retry' && r.started_on !== null ? 1 : 0),
      retryLimit: env ? env.r[2] : Number(r.retry_limit),
      singletonKey: (r.singleton_key as string | null) ?? null,
      priority: Number(r.priority),
      expireSeconds: Number(r.expire_seconds),
      createdAt: iso(r.created_on)!,
      startAfter: iso(r.start_after)!,
      startedAt: iso(r.started_on),
      completedAt: iso(r.completed_on),
      lastError: typeof message === 'string' ? message : null,
      failureClass:
        typeof out?.failureClass === 'string'
          ? (out.failureClass as FailureClass)
          : typeof out?.value?.message === 'string' && out.value.message.includes('timeout')
            ? 'ambiguous' // pg-boss expired the run (its worker died or hung)
            : null,
    };
  }

  private readonly cols = `id, name, data, state, retry_count, retry_limit, singleton_key, priority,
    EXTRACT(epoch FROM expire_in)::int AS expire_seconds, created_on, start_after, started_on, completed_on, output`;

  async getJob(id: string): Promise<JobInfo | null> {
    if (!UUID.test(id)) return null;
    const live = await this.poolExec(`SELECT ${this.cols} FROM ${this.s}.job WHERE id = $1`, [id]);
    const row = live.rows[0] ?? (await this.poolExec(`SELECT ${this.cols} FROM ${this.s}.archive WHERE id = $1`, [id])).rows[0];
    return row ? this.rowToInfo(row) : null;
  }

  /** Queues that are somebody's dead-letter queue are internal and left out. */
  private notDlq(col: string): string {
    return `NOT EXISTS (SELECT 1 FROM ${this.s}.queue dq WHERE dq.dead_letter = ${col})`;
  }

  async counts(): Promise<JobCounts> {
    const r = await this.poolExec(
      `SELECT q.name, j.state, count(j.id)::int AS n
         FROM ${this.s}.queue q LEFT JOIN ${this.s}.job j ON j.name = q.name
        WHERE ${this.notDlq('q.name')}
        GROUP BY q.name, j.state`,
    );
    const out: JobCounts = {};
    for (const row of r.rows) {
      const byState = (out[String(row.name)] ??= Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>);
      const st = row.state === null ? undefined : STATE_MAP[String(row.state)];
      if (st) byState[st] += Number(row.n);
    }
    return out;
  }

  async deadLetters(name?: string): Promise<JobInfo[]> {
    const r = await this.poolExec(
      `SELECT ${this.cols} FROM ${this.s}.job j
        WHERE state = 'failed' AND ($1::text IS NULL OR name = $1) AND ${this.notDlq('j.name')}
        ORDER BY completed_on DESC, id DESC LIMIT 1000`,
      [name ?? null],
    );
    return r.rows.map((row) => this.rowToInfo(row));
  }

  async retryDead(id: string): Promise<void> {
    if (!UUID.test(id)) throw notFound(`no dead job ${id}`);
    const name = await this.kdb.transaction().execute(async (t) => {
      const exec = kyselyExec(t);
      const r = await exec(`SELECT name, singleton_key, data, retry_limit FROM ${this.s}.job WHERE id = $1 AND state = 'failed' FOR UPDATE`, [id]);
      const row = r.rows[0];
      if (!row) throw notFound(`no dead job ${id}`);
      const jobName = String(row.name);
      if (row.singleton_key !== null && (await this.singletonTaken(exec, jobName, String(row.singleton_key)))) {
        throw conflict('another job with the same singleton key is queued or running');
      }
      const limit = isEnvelope(row.data) ? row.data.r[2] : Number(row.retry_limit);
      await exec(
        `UPDATE ${this.s}.job
            SET state = 'created', retry_count = 0, retry_limit = $3, started_on = NULL, completed_on = NULL,
                start_after = now(), keep_until = GREATEST(keep_until, now() + interval '14 days')
          WHERE name = $1 AND id = $2`,
        [jobName, id, limit],
      );
      // Its copy in the dead-letter queue is no longer a dead letter.
      await exec(`DELETE FROM ${this.s}.job WHERE name = $1 AND output->>'jobId' = $2`, [jobName + DEAD_LETTER_SUFFIX, id]);
      return jobName;
    });
    this.notify(name);
  }

  protected override async close(): Promise<void> {
    await this.boss.stop({ graceful: false, close: false, wait: true });
  }
}
