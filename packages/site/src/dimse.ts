import { closeSync, fdatasync, fdatasyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createRequire } from 'node:module';
import { encodeElement } from '@imago/dicom';
import { stageTotal } from './metrics.js';
import { completionMarker, type IncomingFile, type SiteNode } from './node.js';
import { createHash, type Hash } from 'node:crypto';

const dimse = createRequire(import.meta.url)('dcmjs-dimse') as typeof import('dcmjs-dimse');
const { Server, Scp, Dataset, log: dimseLog } = dimse;
const { CEchoResponse, CStoreResponse } = dimse.responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason } = dimse.constants;

export const IMPLEMENTATION_CLASS_UID = '2.25.80302813137786398554742050926734630921';
export const IMPLEMENTATION_VERSION = 'IMAGO_SITE_01';

const VERIFICATION = '1.2.840.10008.1.1';
const LE = { explicit: true, little: true };

/** Storage SOP classes: the standard storage tree, the other standard storage classes, and private (non-standard) classes. */
export function isStorageClass(uid: string): boolean {
  if (uid.startsWith('1.2.840.10008.5.1.4.1.1.')) return true;
  if (/^1\.2\.840\.10008\.5\.1\.4\.(34\.|38\.|39\.|43\.|44\.|45\.)/.test(uid)) return true;
  if (uid.startsWith('1.2.840.10008.')) return false;
  return /^[0-9.]+$/.test(uid);
}

/** Transfer syntaxes stored as received: every standard one (uncompressed, deflate, JPEG family, RLE, MPEG, HTJ2K). */
export function isAcceptedTransferSyntax(ts: string): boolean {
  return ts === '1.2.840.10008.1.2' || ts.startsWith('1.2.840.10008.1.2.');
}

/** The Part 10 preamble and file meta information for a data set received over the network. */
export function part10Header(sopClass: string, sopInstance: string, ts: string, sourceAe: string): Buffer {
  const els = [
    encodeElement(0x00020001, 'OB', Buffer.from([0, 1]), LE),
    encodeElement(0x00020002, 'UI', sopClass, LE),
    encodeElement(0x00020003, 'UI', sopInstance, LE),
    encodeElement(0x00020010, 'UI', ts, LE),
    encodeElement(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID, LE),
    encodeElement(0x00020013, 'SH', IMPLEMENTATION_VERSION, LE),
    ...(sourceAe ? [encodeElement(0x00020016, 'AE', sourceAe, LE)] : []),
  ];
  const body = Buffer.concat(els);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(body.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), encodeElement(0x00020000, 'UL', gl, LE), body]);
}

const COMMAND_TAGS: Record<string, [number, 'UI' | 'US']> = {
  AffectedSOPClassUID: [0x0002, 'UI'], CommandField: [0x0100, 'US'], MessageID: [0x0110, 'US'], MessageIDBeingRespondedTo: [0x0120, 'US'],
  CommandDataSetType: [0x0800, 'US'], Status: [0x0900, 'US'], AffectedSOPInstanceUID: [0x1000, 'UI'],
};

/**
 * A command set (group 0000, implicit VR little endian, group length first) byte for byte as
 * dcmjs-dimse writes it, without its generic dcmjs writer (a third of the main thread's time per
 * small C-STORE). Null when the command holds an element this does not know: the caller then
 * leaves the encoding to dcmjs-dimse.
 */
export function encodeCommandSet(elements: Record<string, unknown>): Buffer | null {
  const parts: Array<[number, Buffer]> = [];
  for (const [k, v] of Object.entries(elements)) {
    if (v === undefined) continue;
    const t = COMMAND_TAGS[k];
    if (!t) return null;
    let val: Buffer;
    if (t[1] === 'US') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) return null;
      val = Buffer.allocUnsafe(2);
      val.writeUInt16LE(v);
    } else {
      if (typeof v !== 'string' || !/^[0-9.]*$/.test(v)) return null;
      val = Buffer.from(v.length % 2 ? `${v}\0` : v, 'latin1');
    }
    parts.push([t[0], val]);
  }
  parts.sort((a, b) => a[0] - b[0]);
  const body = parts.reduce((n, [, v]) => n + 8 + v.length, 0);
  const out = Buffer.allocUnsafe(12 + body);
  out.writeUInt32LE(0, 0); // (0000,0000) group length, UL
  out.writeUInt32LE(4, 4);
  out.writeUInt32LE(body, 8);
  let o = 12;
  for (const [el, v] of parts) {
    out.writeUInt16LE(0, o);
    out.writeUInt16LE(el, o + 2);
    out.writeUInt32LE(v.length, o + 4);
    v.copy(out, o + 8);
    o += 8 + v.length;
  }
  return out;
}

/** Let dcmjs-dimse send this response's command set pre-encoded (see encodeCommandSet). */
function preencodeCommand(r: InstanceType<typeof CStoreResponse>): void {
  const cds = r.getCommandDataset() as unknown as { getElements(): Record<string, unknown>; getDenaturalizedCommandDataset: () => Buffer };
  const buf = encodeCommandSet(cds.getElements());
  if (buf) cds.getDenaturalizedCommandDataset = () => buf;
}

export interface DimseServer {
  port: number;
  close(): Promise<void>;
}

/**
 * One received data set on its way to disk. Writes are synchronous (page
 * cache, no thread-pool round trip per PDU). Up to 2 MB into a pre-created
 * `.r.dcm` whose name is already durable: at the end the completion marker
 * goes into the preamble and one fdatasync makes data and marker durable
 * (what start-up recovery adopts). Larger, or without a spare: fdatasynced,
 * closed and renamed to its final `.dcm` name (directory fsynced at commit).
 */
const MARKER_LIMIT = 2 << 20;
const SYNC_INLINE_LIMIT = 256 << 10;

class DurableFile extends Writable {
  private fd: number | null;
  private md5: Hash | null;
  bytes = 0;
  failed?: Error;
  /** spare: a pre-created file with a durable name (see SiteNode.takeSpare); otherwise `.part` + rename. */
  constructor(public f: IncomingFile, public spare: boolean) {
    super({ highWaterMark: 1 << 20 });
    this.fd = openSync(spare ? f.path : f.part, spare ? 'r+' : 'w', 0o600);
    this.md5 = spare ? createHash('md5') : null;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      let off = 0;
      while (off < chunk.length) off += writeSync(this.fd!, chunk, off, chunk.length - off);
      this.bytes += chunk.length;
      // Large instances: hashing would cost more than the directory fsync it saves; they get renamed instead.
      if (this.md5 && this.bytes > MARKER_LIMIT) this.md5 = null;
      this.md5?.update(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    this._write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), 'latin1', cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    const fd = this.fd!;
    try {
      // The marker goes into the preamble in the same fdatasync as the data; recovery accepts the file only
      // if size and MD5 match, so a torn write is never mistaken for a complete one.
      if (this.md5) writeSync(fd, completionMarker(this.bytes, this.md5.digest('hex')), 0, 128, 0);
    } catch (e) {
      cb(e as Error);
      return;
    }
    const after = (e: Error | null) => {
      try {
        closeSync(fd);
        this.fd = null;
        if (e) throw e;
        if (!this.spare) renameSync(this.f.part, this.f.path);
        else if (!this.md5) {
          // A spare without a marker would be discarded by recovery: give it its final '.dcm' name
          // (the commit then fsyncs the directory).
          const path = this.f.path.replace(/\.r\.dcm$/, '.dcm');
          renameSync(this.f.path, path);
          this.f = { ...this.f, path, rel: this.f.rel.replace(/\.r\.dcm$/, '.dcm') };
          this.spare = false;
        }
        cb();
      } catch (err) {
        cb(err as Error);
      }
    };
    if (this.bytes <= SYNC_INLINE_LIMIT) {
      // Small instances: fdatasync right here. The sender waits for this answer anyway, and a
      // thread-pool round trip (shared with the pipeline's file I/O) costs more than the sync.
      let err: Error | null = null;
      try {
        fdatasyncSync(fd);
      } catch (e) {
        err = e as Error;
      }
      after(err);
    } else fdatasync(fd, after);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = null;
    }
    cb(err);
  }
}

/**
 * The DIMSE server: C-ECHO and C-STORE for every storage SOP class. Each
 * data set streams straight to its own file (meta header first) and is
 * fdatasynced. An instance up to 2 MB (a pre-created file with a completion
 * marker) is answered with success at once, its row and first job committed
 * in the next group commit (recovery adopts the file if that never happens);
 * a larger one is renamed, committed with its job, and only then answered.
 */
export async function startDimseServer(node: SiteNode, opts: { port?: number } = {}): Promise<DimseServer> {
  const cfg = node.config.site;
  dimseLog.setLevel?.('error');
  const allowed = new Set(cfg.allowedCallingAeTitles.map((a) => a.trim()));
  const logger = node.log;

  class SiteScp extends Scp {
    private association: InstanceType<typeof dimse.association.Association> | undefined;
    private callingAe = '';

    override associationRequested(association: InstanceType<typeof dimse.association.Association>): void {
      this.association = association;
      // dcmjs-dimse leaves Nagle's algorithm on; each C-STORE response is one small write that must not wait.
      (this as unknown as { socket?: { setNoDelay?(on: boolean): void } }).socket?.setNoDelay?.(true);
      const calling = association.getCallingAeTitle().trim();
      const called = association.getCalledAeTitle().trim();
      this.callingAe = calling;
      if (called !== cfg.aeTitle) {
        logger.warn({ called, calling }, 'site: association refused (called AE title)');
        stageTotal.inc({ stage: 'associate', outcome: 'refused-called-ae' });
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
        return;
      }
      if (!allowed.has(calling)) {
        logger.warn({ calling }, 'site: association refused (calling AE title not allowed)');
        stageTotal.inc({ stage: 'associate', outcome: 'refused-calling-ae' });
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized);
        return;
      }
      association.setMaxPduLength(cfg.maxPduLength);
      for (const c of association.getPresentationContexts()) {
        const ctx = association.getPresentationContext(c.id);
        const as = ctx.getAbstractSyntaxUid();
        if (as !== VERIFICATION && !isStorageClass(as)) {
          ctx.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const ts = ctx.getTransferSyntaxUids().find(isAcceptedTransferSyntax);
        if (ts) ctx.setResult(PresentationContextResult.Accept, ts);
        else ctx.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      stageTotal.inc({ stage: 'associate', outcome: 'accepted' });
      this.sendAssociationAccept();
    }

    override abort(): void {
      // The peer aborted: nothing unfinished was acknowledged; drop the connection.
      (this as unknown as { socket?: { destroy(): void } }).socket?.destroy();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(request: InstanceType<typeof dimse.requests.CEchoRequest>, callback: (r: InstanceType<typeof CEchoResponse>) => void): void {
      const r = CEchoResponse.fromRequest(request);
      r.setStatus(Status.Success);
      callback(r);
    }

    override createStoreWritableStream(context: InstanceType<typeof dimse.association.PresentationContext>, request: InstanceType<typeof dimse.requests.CStoreRequest>): Writable {
      node.noteReceive();
      const spare = node.takeSpare();
      const ws = new DurableFile(spare ?? node.newIncomingPath(), !!spare);
      ws.on('error', (e) => {
        ws.failed = e;
      });
      ws.write(part10Header(request.getAffectedSopClassUid(), request.getAffectedSopInstanceUid(), context.getAcceptedTransferSyntaxUid() ?? '1.2.840.10008.1.2', this.callingAe));
      return ws;
    }

    override createDatasetFromStoreWritableStream(writable: Writable, _context: unknown, callback: (ds: InstanceType<typeof Dataset>) => void): void {
      const ws = writable as DurableFile;
      const ds = new Dataset();
      (ds as unknown as { imago: DurableFile }).imago = ws;
      let called = false;
      const done = () => {
        if (called) return;
        called = true;
        callback(ds);
      };
      if (ws.writableFinished || ws.destroyed) done();
      else {
        ws.once('finish', done);
        ws.once('close', done);
      }
    }

    override cStoreRequest(request: InstanceType<typeof dimse.requests.CStoreRequest>, callback: (r: InstanceType<typeof CStoreResponse>) => void): void {
      const ds = request.getDataset() as unknown as { imago?: DurableFile } | undefined;
      const w = ds?.imago;
      const f = w?.f;
      const respond = (status: number) => {
        const r = CStoreResponse.fromRequest(request);
        r.setStatus(status);
        preencodeCommand(r);
        callback(r);
      };
      if (!w || !f || w.failed || !w.writableFinished) {
        logger.error({ err: w?.failed?.message ?? 'incomplete' }, 'site: C-STORE could not be written to disk');
        stageTotal.inc({ stage: 'receive-dimse', outcome: 'failed' });
        if (f) {
          node.releaseIncoming(f.id);
          void Promise.all([rm(f.part, { force: true }), rm(f.path, { force: true })]);
        }
        respond(0xa700); // Refused: out of resources
        return;
      }
      if (w.spare) {
        // Fast path: a pre-created '.r.dcm' (durable name) with its completion marker, fdatasynced in
        // _final. That file alone is what start-up recovery adopts, so success goes back now and the
        // row and first job follow in the next group commit (see SiteNode.queueIncoming).
        node.queueIncoming(f, { source: 'dimse', callingAe: this.callingAe }, w.bytes);
        respond(Status.Success);
        return;
      }
      node.commitIncoming(f, { source: 'dimse', callingAe: this.callingAe }, { fsynced: true, renamed: true, size: w.bytes, nameDurable: w.spare }).then(
        () => respond(Status.Success),
        (e: unknown) => {
          logger.error({ err: (e as Error).message }, 'site: C-STORE commit failed');
          stageTotal.inc({ stage: 'receive-dimse', outcome: 'failed' });
          void rm(f.path, { force: true });
          respond(0xa700);
        },
      );
    }
  }

  // The first instances get pre-created receive files too (and so the fast path).
  await node.prepareSpares().catch((e: unknown) => logger.warn({ err: (e as Error).message }, 'site: cannot pre-create receive files'));
  const server = new Server(SiteScp as unknown as typeof Scp);
  server.on('networkError', (e: Error) => logger.debug({ err: e.message }, 'site: DIMSE network error'));
  const listening = new Promise<void>((res, rej) => {
    server.once('listening', () => res());
    server.once('networkError', (e: Error) => rej(e));
  });
  server.listen(opts.port ?? cfg.dimsePort, { associationTimeout: 60_000, pduTimeout: 120_000 });
  await listening;
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  return {
    port,
    async close() {
      server.close();
    },
  };
}
