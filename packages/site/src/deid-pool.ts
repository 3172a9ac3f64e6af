import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { createDeidEngine, readHeader, type DeidEngine, type DeidResult } from '@imago/deid';

const INLINE_BYTES = 64 << 20;

export interface EngineInput {
  secret: string;
  issuerDefault: string;
  allow: string[];
}

export type DeidTask =
  | { id: number; op: 'header'; inPath: string }
  | { id: number; op: 'deid'; inPath: string; outPath: string; released: boolean };

export type DeidReply =
  | { id: number; ok: true; header: SmallHeader; result?: DeidResult }
  | { id: number; ok: false; error: { message: string; code: string | null } };

export interface SmallHeader {
  patientID: string;
  issuerOfPatientID: string;
  /** Other Patient IDs Sequence entries: other identifiers of the same patient. */
  otherPatientIDs: Array<{ id: string; issuer: string | null }>;
}

/** The identifiers the pipeline needs from a header (nothing else crosses the thread boundary). */
export function smallHeader(h: { patientID?: string; issuerOfPatientID?: string; otherPatientIDs?: Array<{ id: string; issuer: string | null }> }): SmallHeader {
  return { patientID: h.patientID ?? '', issuerOfPatientID: h.issuerOfPatientID ?? '', otherPatientIDs: h.otherPatientIDs ?? [] };
}

/**
 * Runs header reads and de-identification in worker threads (`size` of them),
 * or in this thread when size is 0. Errors come back as Error objects with
 * the original `code` (ENOENT stays ENOENT).
 */
export class DeidPool {
  private workers: Array<{ w: Worker; busy: number }> = [];
  private pending = new Map<number, { resolve: (r: DeidReply & { ok: true }) => void; reject: (e: Error) => void; worker: Worker }>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly input: EngineInput, private readonly size: number, private readonly local: DeidEngine = createDeidEngine({ secret: input.secret, issuerDefault: input.issuerDefault, allow: input.allow })) {}

  /** Under tsx, a worker's entry module needs tsx's ESM hooks registered first (cf. @imago/synth startWorker). */
  private spawn(): { w: Worker; busy: number } {
    const entry = new URL('./deid-worker.ts', import.meta.url);
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })
  .catch((e) => { console.error(e); process.exit(1); });`;
    const w = new Worker(boot, { eval: true, workerData: this.input });
    w.unref();
    const slot = { w, busy: 0 };
    w.on('message', (m: DeidReply | { ready: true }) => {
      if ('ready' in m) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      slot.busy--;
      if (m.ok) p.resolve(m);
      else p.reject(Object.assign(new Error(m.error.message), m.error.code ? { code: m.error.code } : {}));
    });
    const fail = (e: Error) => {
      this.workers = this.workers.filter((x) => x !== slot);
      for (const [id, p] of this.pending) {
        if (p.worker !== w) continue;
        this.pending.delete(id);
        p.reject(Object.assign(new Error(`de-identification worker failed: ${e.message}`), { code: 'EWORKER' }));
      }
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (!this.closed) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }

  private run(t: { op: 'header'; inPath: string } | { op: 'deid'; inPath: string; outPath: string; released: boolean }): Promise<DeidReply & { ok: true }> {
    if (this.closed) return Promise.reject(new Error('de-identification pool is closed'));
    if (this.workers.length < this.size) this.workers.push(this.spawn());
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: slot.w });
      slot.w.postMessage({ ...t, id });
    });
  }

  /** PatientID and issuer (the parse stops before PixelData); large instances are read in this thread, like deidentify(). */
  async header(inPath: string, size = 0): Promise<SmallHeader> {
    if (this.size === 0 || size > INLINE_BYTES) {
      return smallHeader(readHeader(inPath));
    }
    return (await this.run({ op: 'header', inPath })).header;
  }

  /**
   * De-identify inPath into outPath; a written output is fdatasynced before this resolves.
   * Instances larger than INLINE_BYTES are streamed in this thread instead: the engine's
   * memory is bounded either way, and a second thread's buffers on top of the receiver's
   * would raise the process's peak RSS for the largest objects.
   */
  async deidentify(inPath: string, outPath: string, released: boolean, size = 0): Promise<{ header: SmallHeader; result: DeidResult }> {
    if (this.size === 0 || size > INLINE_BYTES) {
      const h = readHeader(inPath);
      const result = await this.local.deidentifyFile(inPath, outPath, { released });
      if (result.written) {
        const fh = await open(outPath, 'r+');
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }
      return { header: smallHeader(h), result };
    }
    const r = await this.run({ op: 'deid', inPath, outPath, released });
    return { header: r.header, result: r.result! };
  }

  async close(): Promise<void> {
    this.closed = true;
    const ws = this.workers;
    this.workers = [];
    for (const [, p] of this.pending) p.reject(new Error('de-identification pool closed'));
    this.pending.clear();
    await Promise.all(ws.map((s) => s.w.terminate()));
  }
}
