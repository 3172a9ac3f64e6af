import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { createRequire } from 'node:module';
import { encodeElement } from '@imago/dicom';
import { stageTotal } from './metrics.js';
import type { SiteNode } from './node.js';

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

export interface DimseServer {
  port: number;
  close(): Promise<void>;
}

interface StoreStream extends WriteStream {
  imago?: { id: string; path: string; rel: string; failed?: Error };
}

/**
 * The DIMSE server: C-ECHO and C-STORE for every storage SOP class. Each
 * data set streams straight to its own file (meta header first), is fsynced,
 * committed with its first pipeline job, and only then answered with success.
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
      const f = node.newIncomingPath();
      // flush: fsync before 'close', so the file is durable when the stream closes.
      const ws = createWriteStream(f.path, { flush: true, highWaterMark: 1 << 20 }) as StoreStream;
      ws.imago = { ...f };
      ws.on('error', (e) => {
        ws.imago!.failed = e;
      });
      // Backpressure: dcmjs-dimse does not wait for 'drain' after the first time, so pause the socket
      // whenever the file stream's buffer is full; a slow disk then slows the sender instead of growing memory.
      const sock = (this as unknown as { socket?: { pause(): void; resume(): void; isPaused?(): boolean } }).socket;
      const write = ws.write.bind(ws) as (chunk: unknown, ...rest: unknown[]) => boolean;
      (ws as unknown as { write: typeof write }).write = (chunk: unknown, ...rest: unknown[]) => {
        const ok = write(chunk, ...rest);
        if (!ok && sock && !sock.isPaused?.()) {
          sock.pause();
          ws.once('drain', () => sock.resume());
          ws.once('close', () => sock.resume());
        }
        return ok;
      };
      ws.write(part10Header(request.getAffectedSopClassUid(), request.getAffectedSopInstanceUid(), context.getAcceptedTransferSyntaxUid() ?? '1.2.840.10008.1.2', this.callingAe));
      return ws;
    }

    override createDatasetFromStoreWritableStream(writable: Writable, _context: unknown, callback: (ds: InstanceType<typeof Dataset>) => void): void {
      const ws = writable as StoreStream;
      const ds = new Dataset();
      (ds as unknown as { imago: StoreStream['imago'] }).imago = ws.imago;
      const done = () => callback(ds);
      if (ws.closed) done();
      else ws.once('close', done);
    }

    override cStoreRequest(request: InstanceType<typeof dimse.requests.CStoreRequest>, callback: (r: InstanceType<typeof CStoreResponse>) => void): void {
      const ds = request.getDataset() as unknown as { imago?: StoreStream['imago'] } | undefined;
      const f = ds?.imago;
      const respond = (status: number) => {
        const r = CStoreResponse.fromRequest(request);
        r.setStatus(status);
        callback(r);
      };
      if (!f || f.failed) {
        logger.error({ err: f?.failed?.message }, 'site: C-STORE could not be written to disk');
        stageTotal.inc({ stage: 'receive-dimse', outcome: 'failed' });
        if (f) void rm(f.path, { force: true });
        respond(0xa700); // Refused: out of resources
        return;
      }
      node.commitIncoming(f, { source: 'dimse', callingAe: this.callingAe }, { fsynced: true }).then(
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
