import { readFileSync } from 'node:fs';
import dimse from 'dcmjs-dimse';
import { createRequire } from 'node:module';
import { badRequest, unavailable } from '@imago/core';
import { listInstances, type ListedInstance } from './generate.js';

// dcmjs re-parses each file for the C-STORE request and warns on every
// implicit-VR "ox" element (Pixel Data is written as OW, which is right).
// dcmjs-dimse loads dcmjs through require(), so quiet that (CommonJS) instance.
type LogRegistry = { log: { getLogger(name: string): { setLevel(level: string): void } } };
(createRequire(import.meta.url)('dcmjs') as LogRegistry).log.getLogger('validation.dcmjs').setLevel('silent');

/**
 * `imago synth send`: act as a hospital PACS and push a generated dataset to
 * a site node, by DIMSE C-STORE (dcmjs-dimse client) or DICOMweb STOW-RS, at
 * an optional rate.
 */

export interface SendOptions {
  dir: string;
  site?: string;
  /** C-STORE target. */
  dimse?: { host: string; port: number; calledAet: string; callingAet?: string };
  /** STOW-RS studies endpoint, e.g. http://host:port/dicom-web/studies */
  stowUrl?: string;
  stowHeaders?: Record<string, string>;
  /** Instances per second; 0 or undefined = as fast as possible. */
  rate?: number;
  /** Instances per association (DIMSE) or per multipart request (STOW). */
  batch?: number;
  limit?: number;
  /** TCP_NODELAY on C-STORE associations (default true). */
  noDelay?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface SendResult {
  sent: number;
  failed: number;
  failures: Array<{ path: string; status: string }>;
  seconds: number;
  bytes: number;
}

// dcmjs-dimse logs every PDU at info level; keep the CLI readable.
dimse.log.setLevel('error');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Turn off Nagle's algorithm on the association's socket. dcmjs-dimse 0.3.x
 * has no option for it: Client.send() calls net.connect({ host, port }) (or
 * tls.connect) with only TLS options, and neither the Client nor the
 * 'connected' event exposes the socket in its typed API. The socket is,
 * however, reachable as client.network.socket, set synchronously by send();
 * setNoDelay() before the connection completes is applied on connect. This is
 * feature-detected, so a dcmjs-dimse without that field just keeps Nagle on.
 * Measured against storescp on localhost (40 small instances, one
 * association, busy 2-core machine): ~90 ms per C-STORE with Nagle, ~60 ms
 * without. The rest is not the socket: the client is synchronous (one
 * request in flight) and dcmjs re-parses every file (~10-15 ms CPU each).
 */
function disableNagle(client: InstanceType<typeof dimse.Client>): boolean {
  const sock = (client as unknown as { network?: { socket?: { setNoDelay?: (on: boolean) => unknown } } }).network?.socket;
  if (typeof sock?.setNoDelay !== 'function') return false;
  sock.setNoDelay(true);
  return true;
}

async function storeBatch(items: ListedInstance[], t: NonNullable<SendOptions['dimse']>, onDone: (ok: boolean, item: ListedInstance, status: string) => void, noDelay = true): Promise<void> {
  const client = new dimse.Client();
  const pending = new Set(items.map((i) => i.path));
  for (const it of items) {
    const req = new dimse.requests.CStoreRequest(it.path);
    req.on('response', (res: InstanceType<typeof dimse.responses.CStoreResponse>) => {
      const st = res.getStatus();
      pending.delete(it.path);
      onDone(st === dimse.constants.Status.Success, it, `0x${st.toString(16).padStart(4, '0')}`);
    });
    client.addRequest(req);
  }
  await new Promise<void>((resolve, reject) => {
    let err: Error | null = null;
    client.on('associationRejected', (r: unknown) => {
      err = unavailable(`C-STORE association rejected by ${t.calledAet}@${t.host}:${t.port}`, { detail: { reason: JSON.stringify(r) } });
    });
    client.on('networkError', (e: Error) => {
      err = unavailable(`C-STORE network error: ${e.message}`, { cause: e });
    });
    client.on('closed', () => (err && pending.size === items.length ? reject(err) : resolve()));
    client.send(t.host, t.port, t.callingAet ?? 'IMAGO_PACS', t.calledAet, { associationTimeout: 30000, pduTimeout: 60000 });
    if (noDelay) disableNagle(client);
  });
  for (const p of pending) onDone(false, items.find((i) => i.path === p)!, 'no response');
}

async function stowBatch(items: ListedInstance[], url: string, headers: Record<string, string>, onDone: (ok: boolean, item: ListedInstance, status: string) => void): Promise<number> {
  const boundary = `imago-synth-${items.length}-${items[0]!.sopInstanceUid.slice(-12)}`;
  const parts: Buffer[] = [];
  let bytes = 0;
  for (const it of items) {
    const b = readFileSync(it.path);
    bytes += b.length;
    parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), b, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
      body: Buffer.concat(parts),
    });
  } catch (e) {
    throw unavailable(`STOW-RS to ${url} failed: ${(e as Error).message}`, { cause: e });
  }
  await res.arrayBuffer().catch(() => undefined);
  for (const it of items) onDone(res.status === 200 || res.status === 202, it, `HTTP ${res.status}`);
  return bytes;
}

export async function sendDataset(o: SendOptions): Promise<SendResult> {
  if (!o.dimse === !o.stowUrl) throw badRequest('give exactly one target: C-STORE (host/port/AE) or a STOW-RS URL');
  let items = listInstances(o.dir, { site: o.site });
  if (o.limit !== undefined) items = items.slice(0, o.limit);
  if (!items.length) throw badRequest(`no instances found under ${o.dir}${o.site ? ` for site ${o.site}` : ''}`);
  const rate = o.rate && o.rate > 0 ? o.rate : 0;
  const batch = Math.max(1, o.batch ?? (rate ? Math.max(1, Math.min(50, Math.round(rate))) : o.dimse ? 200 : 20));
  const t0 = performance.now();
  const res: SendResult = { sent: 0, failed: 0, failures: [], seconds: 0, bytes: 0 };
  let done = 0;
  const onDone = (ok: boolean, it: ListedInstance, status: string) => {
    if (ok) res.sent++;
    else {
      res.failed++;
      res.failures.push({ path: it.path, status });
    }
    o.onProgress?.(++done, items.length);
  };
  for (let i = 0; i < items.length; i += batch) {
    const chunk = items.slice(i, i + batch);
    if (o.dimse) await storeBatch(chunk, o.dimse, onDone, o.noDelay ?? true);
    else res.bytes += await stowBatch(chunk, o.stowUrl!, o.stowHeaders ?? {}, onDone);
    if (rate) {
      // hold the average rate: instance i+batch may not start before (i+batch)/rate seconds
      const due = ((i + chunk.length) / rate) * 1000;
      const wait = due - (performance.now() - t0);
      if (wait > 0) await sleep(wait);
    }
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
