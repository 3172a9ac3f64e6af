import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './types.js';

/**
 * Jobs (owned by @imago/jobs):
 *  - `owner`: which process claimed an active job (host:pid:nonce), so that
 *    after a crash the jobs of a dead process are re-run at once instead of
 *    after expireSeconds.
 *  - The singleton index also covers 'failed' (a retry is scheduled): a job
 *    waiting for its retry is still live, and a duplicate must not be queued.
 *  - An index for the reaper's and status pages' look-ups by state.
 */
export async function up(db: Kysely<unknown>, _ctx: MigrationContext): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('owner', 'text').execute();
  await sql`DROP INDEX jobs_singleton`.execute(db);
  await sql`CREATE UNIQUE INDEX jobs_singleton ON jobs (name, singleton_key) WHERE singleton_key IS NOT NULL AND state IN ('created', 'failed', 'active')`.execute(db);
  await db.schema.createIndex('jobs_state').on('jobs').columns(['state', 'name']).execute();
}
