import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Migration, type MigrationProvider, type Transaction } from 'kysely';
import pg from 'pg';
import { MIGRATIONS } from './migrations/index.js';
import type { Database } from './schema/index.js';

export type * from './schema/index.js';
export { sql };
export type { Kysely, Transaction };

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;
/** Either the database handle or an open transaction: what repositories accept. */
export type DbOrTrx = Kysely<Database> | Transaction<Database>;

export interface ImagoDb {
  db: Db;
  dialect: Dialect;
  /** Run `fn` in a transaction, retrying on SQLITE_BUSY or serialization failure. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>, opts?: { retries?: number }): Promise<T>;
  /** For Postgres: the pg pool (used by pg-boss). */
  pgPool?: pg.Pool;
  /** For SQLite: the file path. */
  sqlitePath?: string;
  close(): Promise<void>;
}

// int8 (bigint) columns come back as strings by default; every bigint we store
// (sizes, sequence numbers) fits in a double.
pg.types.setTypeParser(20, (v) => Number(v));

export function parseDbUrl(url: string): { dialect: Dialect; path?: string; connectionString?: string } {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (!path) throw new Error('db.url: sqlite: needs a path, e.g. sqlite:./data/imago.db');
    return { dialect: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { dialect: 'postgres', connectionString: url };
  throw new Error(`db.url: unsupported scheme (use sqlite:PATH or postgres://…)`);
}

/** True for errors worth retrying a whole transaction for. */
export function isRetryableTxError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  // SQLite: busy/locked. Postgres: serialization_failure, deadlock_detected.
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_SNAPSHOT' || code === '40001' || code === '40P01';
}

export async function openDatabase(url: string, opts: { poolSize?: number; migrate?: boolean } = {}): Promise<ImagoDb> {
  const parsed = parseDbUrl(url);
  let db: Db;
  let pool: pg.Pool | undefined;
  let sqlitePath: string | undefined;
  if (parsed.dialect === 'sqlite') {
    sqlitePath = parsed.path === ':memory:' ? ':memory:' : resolve(parsed.path!);
    if (sqlitePath !== ':memory:') mkdirSync(dirname(sqlitePath), { recursive: true });
    const conn = new SQLite(sqlitePath);
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.pragma('foreign_keys = ON');
    conn.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  } else {
    pool = new pg.Pool({ connectionString: parsed.connectionString, max: opts.poolSize ?? 10 });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const handle: ImagoDb = {
    db,
    dialect: parsed.dialect,
    ...(pool ? { pgPool: pool } : {}),
    ...(sqlitePath ? { sqlitePath } : {}),
    async transaction(fn, o = {}) {
      const retries = o.retries ?? 8;
      for (let attempt = 0; ; attempt++) {
        try {
          return await db.transaction().execute(fn);
        } catch (e) {
          if (attempt >= retries || !isRetryableTxError(e)) throw e;
          const delay = Math.min(2000, 10 * 2 ** attempt) * (0.5 + Math.random());
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    },
    async close() {
      await db.destroy();
    },
  };
  if (opts.migrate !== false) await migrate(handle);
  return handle;
}

export async function migrate(h: ImagoDb): Promise<string[]> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, m] of Object.entries(MIGRATIONS)) {
        out[name] = { up: (db: Kysely<unknown>) => m.up(db, { dialect: h.dialect }) };
      }
      return out;
    },
  };
  const migrator = new Migrator({ db: h.db, provider, migrationTableName: 'imago_migrations', migrationLockTableName: 'imago_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw new Error(`database migration failed: ${(error as Error).message}`, { cause: error });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Current time as the ISO string every timestamp column holds. */
export function nowIso(d: Date = new Date()): string {
  return d.toISOString();
}
