import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { badRequest, unsupportedMediaType } from '@imago/core';
import { readHeader } from '@imago/dicom';
import type { SiteNode } from './node.js';

export interface StowResult {
  stored: Array<{ sopClassUID: string; sopInstanceUID: string; id: string }>;
  failed: Array<{ part: number; reason: string }>;
}

export function boundaryOf(contentType: string | undefined): string {
  const ct = contentType ?? '';
  if (!/^multipart\/related/i.test(ct)) throw unsupportedMediaType('STOW-RS needs multipart/related; type="application/dicom"');
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(ct);
  const b = m?.[1] ?? m?.[2];
  if (!b) throw badRequest('multipart/related without a boundary');
  const t = /type="?([^";]+)"?/i.exec(ct)?.[1];
  if (t && t.toLowerCase() !== 'application/dicom') throw unsupportedMediaType('only type="application/dicom" is accepted (not metadata+bulkdata)');
  return b;
}

/**
 * Stream a multipart/related body: each application/dicom part goes straight
 * into its own incoming file (never the whole body in memory), is fsynced and
 * committed before the response is sent.
 */
export async function receiveStow(node: SiteNode, body: Readable, contentType: string | undefined): Promise<StowResult> {
  const boundary = boundaryOf(contentType);
  const delim = Buffer.from(`\r\n--${boundary}`);
  const res: StowResult = { stored: [], failed: [] };
  let buf: Buffer = Buffer.from('\r\n');
  let state: 'preamble' | 'headers' | 'body' | 'done' = 'preamble';
  let part = 0;
  let cur: { ws: WriteStream; f: ReturnType<SiteNode['newIncomingPath']>; ok: boolean; size: number } | null = null;
  const pending: Array<Promise<void>> = [];

  const finishPart = async (c: NonNullable<typeof cur>, n: number) => {
    await new Promise<void>((resolve, reject) => {
      c.ws.end((e?: Error | null) => (e ? reject(e) : resolve()));
    }).catch(() => undefined);
    await new Promise<void>((r) => (c.ws.closed ? r() : c.ws.once('close', () => r())));
    if (!c.ok) {
      await rm(c.f.part, { force: true });
      res.failed.push({ part: n, reason: 'not application/dicom' });
      return;
    }
    try {
      const h = readHeader(c.f.part);
      if (!h.sopInstanceUID || !h.sopClassUID) throw new Error('no SOP Instance UID');
      await node.commitIncoming(c.f, { source: 'stow' }, { fsynced: true });
      res.stored.push({ sopClassUID: h.sopClassUID, sopInstanceUID: h.sopInstanceUID, id: c.f.id });
    } catch (e) {
      await rm(c.f.part, { force: true });
      await rm(c.f.path, { force: true });
      res.failed.push({ part: n, reason: `unreadable DICOM: ${(e as Error).message}`.slice(0, 200) });
    }
  };

  const write = async (chunk: Buffer) => {
    if (!cur || !chunk.length) return;
    cur.size += chunk.length;
    if (!cur.ws.write(chunk)) await new Promise<void>((r) => cur!.ws.once('drain', () => r()));
  };

  for await (const chunk of body) {
    buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
    for (;;) {
      if (state === 'done') break;
      if (state === 'preamble' || state === 'body') {
        const i = buf.indexOf(delim);
        if (i < 0) {
          const keep = Math.max(0, buf.length - delim.length - 4);
          if (state === 'body') await write(buf.subarray(0, keep));
          buf = buf.subarray(keep);
          break;
        }
        if (buf.length < i + delim.length + 2) break;
        if (state === 'body') {
          await write(buf.subarray(0, i));
          const c = cur!;
          cur = null;
          pending.push(finishPart(c, part));
        }
        const after = buf.subarray(i + delim.length, i + delim.length + 2).toString('latin1');
        buf = buf.subarray(i + delim.length + 2);
        if (after === '--') {
          state = 'done';
          break;
        }
        state = 'headers';
        continue;
      }
      // headers
      const e = buf.indexOf('\r\n\r\n');
      if (e < 0) {
        if (buf.length > 16384) throw badRequest('multipart part headers too long');
        break;
      }
      const headers = buf.subarray(0, e).toString('latin1');
      buf = buf.subarray(e + 4);
      part++;
      const ct = /content-type:\s*([^\r\n;]+)/i.exec(headers)?.[1]?.trim().toLowerCase();
      const f = node.newIncomingPath();
      const ws = createWriteStream(f.part, { flush: true });
      cur = { ws, f, ok: !ct || ct === 'application/dicom', size: 0 };
      state = 'body';
    }
  }
  if (cur) {
    const c = cur as NonNullable<typeof cur>;
    c.ws.destroy();
    await rm(c.f.part, { force: true });
    res.failed.push({ part, reason: 'body ended inside a part' });
  }
  await Promise.all(pending);
  if (state !== 'done' && part === 0) throw badRequest('no multipart parts found');
  return res;
}

/** The STOW-RS response as DICOM JSON (Referenced / Failed SOP Sequences). */
export function stowResponse(r: StowResult, baseUrl: string): Record<string, unknown> {
  return {
    '00081190': { vr: 'UR', Value: [`${baseUrl}/dicom-web/studies`] },
    '00081199': { vr: 'SQ', Value: r.stored.map((s) => ({ '00081150': { vr: 'UI', Value: [s.sopClassUID] }, '00081155': { vr: 'UI', Value: [s.sopInstanceUID] } })) },
    ...(r.failed.length ? { '00081198': { vr: 'SQ', Value: r.failed.map(() => ({ '00081197': { vr: 'US', Value: [0xc000] } })) } } : {}),
  };
}
