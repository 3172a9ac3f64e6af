import { badRequest, type Config } from '@imago/core';
import type { JobData, SendOptions } from './types.js';

export const MAX_PAYLOAD_BYTES = 2048;
/** pg-boss refuses expirations of 24 hours or more. */
export const MAX_EXPIRE_SECONDS = 23 * 60 * 60;
export const DEAD_LETTER_SUFFIX = '__dead';

export function validateName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/.test(name) || name.endsWith(DEAD_LETTER_SUFFIX)) {
    throw badRequest(`invalid job name: ${JSON.stringify(name)} (letters, digits, _ . : -; at most 100; not ending in ${DEAD_LETTER_SUFFIX})`);
  }
  return name;
}

/** Payloads hold ids only: a plain, flat object of finite scalars, ≤ 2 KB as JSON. */
export function validateData(data: unknown): JobData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw badRequest('job data must be a plain object');
  const proto = Object.getPrototypeOf(data) as unknown;
  if (proto !== Object.prototype && proto !== null) throw badRequest('job data must be a plain object');
  const issues: { path: string; message: string }[] = [];
  for (const [k, v] of Object.entries(data)) {
    const ok = v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
    if (!ok) issues.push({ path: k, message: 'must be a string, finite number, boolean or null (payloads carry ids, not objects)' });
    // PostgreSQL text and jsonb cannot hold NUL; refuse it on both backends alike.
    else if (typeof v === 'string' && v.includes('\u0000')) issues.push({ path: k, message: 'must not contain NUL' });
  }
  if (issues.length) throw badRequest('job data must be a flat object of scalar values', { issues });
  const bytes = Buffer.byteLength(JSON.stringify(data));
  if (bytes > MAX_PAYLOAD_BYTES) throw badRequest(`job data is ${bytes} bytes; at most ${MAX_PAYLOAD_BYTES} (send ids, not content)`);
  return data as JobData;
}

export interface ResolvedSendOptions {
  singletonKey: string | null;
  retryLimit: number;
  retryDelayMs: number;
  retryMaxDelayMs: number;
  startAfterMs: number;
  priority: number;
  expireSeconds: number;
}

function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badRequest(`${name} must be an integer in [${min}, ${max}]`);
  return v;
}

export function resolveSendOptions(opts: SendOptions | undefined, defaults: Config['jobs']): ResolvedSendOptions {
  const o = opts ?? {};
  if (o.singletonKey !== undefined && (typeof o.singletonKey !== 'string' || o.singletonKey.length === 0 || o.singletonKey.length > 200 || o.singletonKey.includes('\u0000'))) {
    throw badRequest('singletonKey must be a non-empty string of at most 200 characters, without NUL');
  }
  const day = 24 * 60 * 60 * 1000;
  return {
    singletonKey: o.singletonKey ?? null,
    retryLimit: int(o.retryLimit ?? defaults.retryLimit, 'retryLimit', 0, 1000),
    retryDelayMs: int(o.retryDelayMs ?? defaults.retryDelayMs, 'retryDelayMs', 0, day),
    retryMaxDelayMs: int(o.retryMaxDelayMs ?? defaults.retryMaxDelayMs, 'retryMaxDelayMs', 0, 7 * day),
    startAfterMs: int(o.startAfterMs ?? 0, 'startAfterMs', 0, 365 * day),
    priority: int(o.priority ?? 0, 'priority', -1_000_000, 1_000_000),
    expireSeconds: int(o.expireSeconds ?? Math.min(defaults.expireSeconds, MAX_EXPIRE_SECONDS), 'expireSeconds', 1, MAX_EXPIRE_SECONDS),
  };
}

/**
 * Delay before retry number `attempt` (1 = first retry): exponential backoff
 * with FULL JITTER — uniform in [0, min(maxDelayMs, baseDelayMs · 2^(attempt-1))].
 * Full jitter spreads retries of many jobs that failed together (a site link
 * dropping) instead of having them retry in lock-step; the cap bounds the
 * wait. `random` is injectable for tests.
 */
export function backoffDelayMs(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 40);
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** exp);
  return Math.floor(random() * ceiling);
}
