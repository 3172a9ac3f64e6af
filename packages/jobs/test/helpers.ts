import { createLogger, type Config } from '@imago/core';

export const silent = createLogger({ level: 'silent' });

export function jobsConfig(over: Partial<Config['jobs']> = {}): Config['jobs'] {
  return { pollIntervalMs: 25, retryLimit: 3, retryDelayMs: 5, retryMaxDelayMs: 50, expireSeconds: 30, ...over };
}

export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let seq = 0;
/** A job name no other test uses. */
export const uniqueName = (base: string) => `${base}-${process.pid}-${seq++}`;
