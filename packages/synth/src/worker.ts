import { parentPort, workerData } from 'node:worker_threads';
import { FileSlab, writeInstanceAsync } from './render.js';
import type { InstancePlan } from './iods.js';

/**
 * Worker thread: renders and writes instances posted by the generator.
 *
 * Two file slabs are used in turn: while one file is being written by the
 * libuv thread pool, the next image renders into the other slab. A batch is
 * reported done when all of its files are written. The pool keeps two
 * batches queued per worker so a worker never waits for the main thread.
 */
const outDir = (workerData as { outDir: string }).outDir;
const slabs = [new FileSlab(), new FileSlab()];
const inFlight: Array<Promise<unknown> | null> = [null, null];
let turn = 0;
let chain: Promise<void> = Promise.resolve();

async function run(msg: { id: number; plans: InstancePlan[] }): Promise<void> {
  const writes: Array<Promise<number>> = [];
  try {
    for (const p of msg.plans) {
      const k = turn++ & 1;
      await inFlight[k];
      const w = writeInstanceAsync(outDir, p, slabs[k]!);
      inFlight[k] = w.catch(() => undefined);
      writes.push(w);
    }
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).stack ?? String(e) });
    return;
  }
  // report when this batch's files are on disk, without holding up the next batch
  Promise.all(writes).then(
    (n) => parentPort!.postMessage({ id: msg.id, bytes: n.reduce((a, b) => a + b, 0) }),
    (e: unknown) => parentPort!.postMessage({ id: msg.id, error: (e as Error).stack ?? String(e) }),
  );
}

parentPort!.on('message', (msg: { id: number; plans: InstancePlan[] }) => {
  chain = chain.then(() => run(msg));
});
// modules are loaded: ask for work
parentPort!.postMessage({ ready: true });
