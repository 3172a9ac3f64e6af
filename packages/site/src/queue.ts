import type { Config, Logger } from '@imago/core';
import type { ImagoDb } from '@imago/db';
import { openJobQueue, type JobQueue } from '@imago/jobs';

export type { JobQueue, SendOptions } from '@imago/jobs';

/**
 * The site pipeline's durable queue: `@imago/jobs` on the platform database
 * (SQLite: jobs whose owning process died are reclaimed; PostgreSQL: pg-boss).
 */
export function openQueue(db: ImagoDb, config: Config, logger: Logger): Promise<JobQueue> {
  return openJobQueue(db, config.jobs, { logger });
}
