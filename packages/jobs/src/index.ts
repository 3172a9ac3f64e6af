import type { Config } from '@imago/core';
import type { ImagoDb } from '@imago/db';
import type { JobQueueOptions } from './base.js';
import { PgJobQueue } from './postgres.js';
import { SqliteJobQueue } from './sqlite.js';
import type { JobQueue } from './types.js';

export type * from './types.js';
export { JOB_STATES } from './types.js';
export type { JobQueueOptions } from './base.js';
export { MAX_PAYLOAD_BYTES, backoffDelayMs, validateData, validateName } from './validate.js';
export { SqliteJobQueue, ownerIsDead } from './sqlite.js';
export { PgJobQueue } from './postgres.js';

/**
 * Open the durable job queue on the platform database: a table-backed queue
 * for SQLite (embedded), pg-boss for PostgreSQL (scale). The queue does not
 * own the database; stop() it before closing the database.
 */
export async function openJobQueue(imagoDb: ImagoDb, config: Config['jobs'], opts: JobQueueOptions = {}): Promise<JobQueue> {
  if (imagoDb.dialect === 'sqlite') return new SqliteJobQueue(imagoDb, config, opts).start();
  return new PgJobQueue(imagoDb, config, opts).start();
}
