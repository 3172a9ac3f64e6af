import { parentPort, workerData } from 'node:worker_threads';
import { writeInstance } from './render.js';
import type { InstancePlan } from './iods.js';

/** Worker thread: renders and writes instances posted by the generator. */
const outDir = (workerData as { outDir: string }).outDir;
parentPort!.on('message', (msg: { id: number; plans: InstancePlan[] }) => {
  try {
    let bytes = 0;
    for (const p of msg.plans) bytes += writeInstance(outDir, p);
    parentPort!.postMessage({ id: msg.id, bytes });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).stack ?? String(e) });
  }
});
