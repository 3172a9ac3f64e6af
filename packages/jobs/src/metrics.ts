import { Counter, Gauge } from 'prom-client';
import { metricsRegistry, type Logger } from '@imago/core';
import { JOB_STATES, type JobCounts } from './types.js';

/**
 * Queues whose counts feed the `imago_jobs` gauge, keyed by database so that
 * two handles on one database are not counted twice (the latest wins).
 */
const sources = new Map<string, { counts(): Promise<JobCounts>; logger: Logger }>();

export function addCountSource(key: string, src: { counts(): Promise<JobCounts>; logger: Logger }): void {
  sources.set(key, src);
  jobsGauge();
}

export function removeCountSource(key: string, src: object): void {
  if (sources.get(key) === src) sources.delete(key);
}

function jobsGauge(): Gauge<'name' | 'state'> {
  const existing = metricsRegistry.getSingleMetric('imago_jobs');
  if (existing) return existing as Gauge<'name' | 'state'>;
  return new Gauge({
    name: 'imago_jobs',
    help: 'Jobs in the queue by name and state',
    labelNames: ['name', 'state'] as const,
    registers: [metricsRegistry],
    async collect() {
      const total = new Map<string, number>();
      for (const src of sources.values()) {
        try {
          const counts = await src.counts();
          for (const [name, byState] of Object.entries(counts)) {
            for (const state of JOB_STATES) {
              const k = `${name}\u0000${state}`;
              total.set(k, (total.get(k) ?? 0) + byState[state]);
            }
          }
        } catch (e) {
          src.logger.warn({ err: e }, 'jobs: cannot read queue counts for metrics');
          return; // keep the previous values rather than report zeros
        }
      }
      this.reset();
      for (const [k, v] of total) {
        const [name, state] = k.split('\u0000') as [string, string];
        this.set({ name, state }, v);
      }
    },
  });
}

export type RunOutcome = 'completed' | 'failed' | 'dead';

export function jobRunsCounter(): Counter<'name' | 'outcome'> {
  const existing = metricsRegistry.getSingleMetric('imago_job_runs_total');
  if (existing) return existing as Counter<'name' | 'outcome'>;
  return new Counter({
    name: 'imago_job_runs_total',
    help: 'Job runs by name and outcome (completed; failed = will be retried; dead = gave up)',
    labelNames: ['name', 'outcome'] as const,
    registers: [metricsRegistry],
  });
}
