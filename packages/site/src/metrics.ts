import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '@imago/core';

function metric<T>(name: string, make: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Instances (or records) through each pipeline stage, by outcome. */
export const stageTotal = metric('imago_site_stage_total', () => new Counter({
  name: 'imago_site_stage_total', help: 'Site pipeline items through each stage, by outcome', labelNames: ['stage', 'outcome'] as const, registers: [metricsRegistry],
}));

export const stageSeconds = metric('imago_site_stage_seconds', () => new Histogram({
  name: 'imago_site_stage_seconds', help: 'Site pipeline stage latency', labelNames: ['stage'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [metricsRegistry],
}));

export const receivedBytes = metric('imago_site_received_bytes_total', () => new Counter({
  name: 'imago_site_received_bytes_total', help: 'Bytes received by the site node', labelNames: ['source'] as const, registers: [metricsRegistry],
}));

/** Queue depth per state; set by the site's status sampler. */
export const queueDepth = metric('imago_site_queue_depth', () => new Gauge({
  name: 'imago_site_queue_depth', help: 'Site items per state', labelNames: ['kind', 'state'] as const, registers: [metricsRegistry],
}));

export async function timed<T>(stage: string, fn: () => Promise<T>): Promise<T> {
  const end = stageSeconds.startTimer({ stage });
  try {
    return await fn();
  } finally {
    end();
  }
}
