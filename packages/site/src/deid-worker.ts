// A de-identification worker thread (see deid-pool.ts): parses and de-identifies off the main
// event loop, so that the DIMSE/STOW receivers keep answering while the pipeline runs.
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { createDeidEngine, readHeader } from '@imago/deid';
import { smallHeader, type DeidTask, type DeidReply, type EngineInput } from './deid-pool.js';

const input = workerData as EngineInput;
const engine = createDeidEngine({ secret: input.secret, issuerDefault: input.issuerDefault, allow: input.allow });

async function handle(t: DeidTask): Promise<DeidReply> {
  try {
    if (t.op === 'header') {
      const h = readHeader(t.inPath);
      return { id: t.id, ok: true, header: smallHeader(h) };
    }
    const h = readHeader(t.inPath);
    const result = await engine.deidentifyFile(t.inPath, t.outPath, { released: t.released });
    if (result.written) {
      // The output is durable before the pipeline records it.
      const fh = await open(t.outPath, 'r+');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    return { id: t.id, ok: true, header: smallHeader(h), result };
  } catch (e) {
    return { id: t.id, ok: false, error: { message: (e as Error).message || String(e), code: (e as NodeJS.ErrnoException).code ?? null } };
  }
}

parentPort!.on('message', (t: DeidTask) => {
  void handle(t).then((r) => parentPort!.postMessage(r));
});
parentPort!.postMessage({ ready: true });
