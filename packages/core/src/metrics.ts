import { Registry, collectDefaultMetrics } from 'prom-client';

/** One Prometheus registry per process; every package registers on it. */
export const metricsRegistry = new Registry();
let defaultsCollected = false;

export function enableDefaultMetrics(): void {
  if (defaultsCollected) return;
  collectDefaultMetrics({ register: metricsRegistry, prefix: 'imago_' });
  defaultsCollected = true;
}
