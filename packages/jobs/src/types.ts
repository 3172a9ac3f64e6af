import type { FailureClass } from '@imago/core';
import type { DbOrTrx } from '@imago/db';

/** Job payloads hold identifiers only: a flat object of scalars, at most 2 KB as JSON. */
export type JobScalar = string | number | boolean | null;
export type JobData = Record<string, JobScalar>;

/**
 * created   waiting to run (start_after may be in the future)
 * active    claimed by a worker and running
 * failed    the last attempt failed; a retry is scheduled (start_after)
 * completed done
 * dead      gave up: retries exhausted or a permanent error; kept for
 *           inspection until retryDead() re-runs it
 */
export type JobState = 'created' | 'active' | 'failed' | 'completed' | 'dead';
export const JOB_STATES: readonly JobState[] = ['created', 'active', 'failed', 'completed', 'dead'];

export interface SendOptions {
  /** At most one created/failed(awaiting retry)/active job per (name, singletonKey); a duplicate send returns null. */
  singletonKey?: string;
  /** Retries after the first attempt (so at most retryLimit + 1 runs). Default config jobs.retryLimit. */
  retryLimit?: number;
  /** Base of the exponential backoff. Default config jobs.retryDelayMs. */
  retryDelayMs?: number;
  /** Cap of the exponential backoff. Default config jobs.retryMaxDelayMs. */
  retryMaxDelayMs?: number;
  /** Do not run before this many ms from now. */
  startAfterMs?: number;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** A run not finished after this long is abandoned (its signal aborted) and counted as a failed attempt. Default config jobs.expireSeconds; at most 23 hours. */
  expireSeconds?: number;
}

export interface Job {
  id: string;
  name: string;
  data: JobData;
  /** Failed attempts before this one (0 on the first run). */
  retryCount: number;
  /** Aborted when the run exceeds expireSeconds or the queue is stopped without waiting. */
  signal: AbortSignal;
}

export type JobHandler = (job: Job) => Promise<void>;

export interface WorkOptions {
  /** Jobs of this name run at most this many at a time in this process. Default 1. */
  concurrency?: number;
}

export interface StopOptions {
  /** Wait for running handlers to finish (default true). Otherwise, or once timeoutMs passes, running jobs are aborted and released for a retry. */
  graceful?: boolean;
  /** Longest wait for running handlers in a graceful stop. Default 30 s. */
  timeoutMs?: number;
}

export interface JobInfo {
  id: string;
  name: string;
  data: JobData;
  state: JobState;
  retryCount: number;
  retryLimit: number;
  singletonKey: string | null;
  priority: number;
  expireSeconds: number;
  createdAt: string;
  startAfter: string;
  startedAt: string | null;
  completedAt: string | null;
  /** Message of the last failure (never a stack; may be null). */
  lastError: string | null;
  failureClass: FailureClass | null;
}

export type JobCounts = Record<string, Record<JobState, number>>;

export interface JobQueue {
  readonly backend: 'sqlite' | 'postgres';
  /**
   * Enqueue a job. Returns its id, or null when `singletonKey` names a job
   * that is still live. With `trx`, the job is written in that transaction
   * and exists only if it commits.
   */
  send(name: string, data: JobData, opts?: SendOptions, trx?: DbOrTrx): Promise<string | null>;
  /** Start working jobs of `name` in this process. */
  work(name: string, handler: JobHandler, opts?: WorkOptions): Promise<void>;
  /** Stop all workers and timers. Does not close the database. */
  stop(opts?: StopOptions): Promise<void>;
  getJob(id: string): Promise<JobInfo | null>;
  /** Jobs per name and state (every state present, zero-filled). */
  counts(): Promise<JobCounts>;
  /** Dead jobs, most recent first (at most 1000). */
  deadLetters(name?: string): Promise<JobInfo[]>;
  /** Re-run a dead job from scratch (retry count reset). notFound unless it is dead; conflict if its singleton key is live again. */
  retryDead(id: string): Promise<void>;
}
