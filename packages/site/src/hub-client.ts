import { createReadStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ClassifiedError } from '@imago/core';

/**
 * The site's client for the hub's site API. Every failure is a ClassifiedError:
 * - transient: 5xx, 429, or the connection failed before anything was sent;
 * - ambiguous: the connection was lost after the request started (the hub may
 *   or may not have stored it) or no answer came in time: re-check before retrying;
 * - permanent: any other 4xx (not de-identified, checksum mismatch, forbidden…).
 */
export interface HubClientOptions {
  hubUrl: string;
  token: string;
  site: string;
  timeoutMs?: number;
}

export interface HubResponse {
  status: number;
  body: unknown;
}

export class HubClient {
  private readonly base: URL;
  constructor(private readonly o: HubClientOptions) {
    this.base = new URL(o.hubUrl.endsWith('/') ? o.hubUrl : `${o.hubUrl}/`);
  }

  private url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base);
  }

  /** One HTTP exchange with precise failure classification. Non-2xx statuses are returned, not thrown. */
  private exchange(method: string, path: string, body: Buffer | string | null, contentType?: string, file?: { path: string; size: number }): Promise<HubResponse> {
    const u = this.url(path);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
      method,
      headers: {
        authorization: `Bearer ${this.o.token}`,
        accept: 'application/json',
        ...(contentType ? { 'content-type': contentType } : {}),
        ...(body !== null ? { 'content-length': Buffer.byteLength(body) } : {}),
        ...(file ? { 'content-length': file.size } : {}),
      },
    });
    return new Promise<HubResponse>((resolve, reject) => {
      let connected = false;
      let settled = false;
      const fail = (e: Error & { code?: string }) => {
        if (settled) return;
        settled = true;
        req.destroy();
        const beforeSend = !connected && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'].includes(e.code ?? '');
        reject(new ClassifiedError(beforeSend ? 'transient' : 'ambiguous', `hub ${method} ${u.pathname}: ${e.code ?? ''} ${e.message}`.trim(), { cause: e }));
      };
      const timer = setTimeout(() => fail(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), this.o.timeoutMs ?? 120_000);
      req.on('socket', (s) => {
        if (!s.connecting) connected = true;
        else s.once('connect', () => (connected = true));
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        fail(e);
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => {
          clearTimeout(timer);
          fail(e);
        });
        res.on('end', () => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      if (file) {
        const rs = createReadStream(file.path, { highWaterMark: 1 << 20 });
        rs.on('error', (e) => fail(e));
        rs.pipe(req);
      } else {
        req.end(body ?? undefined);
      }
    });
  }

  /** Map a non-2xx status onto a failure class. */
  static classifyStatus(method: string, path: string, r: HubResponse): ClassifiedError {
    const msg = typeof r.body === 'object' && r.body && 'message' in r.body ? String((r.body as { message: unknown }).message) : `HTTP ${r.status}`;
    const cls = r.status >= 500 || r.status === 429 || r.status === 408 ? 'transient' : 'permanent';
    return new ClassifiedError(cls, `hub ${method} ${path}: ${r.status} ${msg}`);
  }

  private async json(method: string, path: string, payload: unknown): Promise<unknown> {
    const r = await this.exchange(method, path, payload === undefined ? null : JSON.stringify(payload), payload === undefined ? undefined : 'application/json');
    if (r.status < 200 || r.status >= 300) throw HubClient.classifyStatus(method, path, r);
    return r.body;
  }

  private sitePath(rest: string): string {
    return `api/hub/v1/sites/${encodeURIComponent(this.o.site)}/${rest}`;
  }

  async ping(): Promise<{ site: string; ok: boolean }> {
    return (await this.json('GET', 'api/hub/v1/ping', undefined)) as { site: string; ok: boolean };
  }

  /** Stream one de-identified instance. */
  async putInstance(sha256: string, file: string, size: number): Promise<{ status: 'stored' | 'already-stored'; instanceKey?: string }> {
    const path = this.sitePath(`instances/${sha256}`);
    const r = await this.exchange('PUT', path, null, 'application/dicom', { path: file, size });
    if (r.status < 200 || r.status >= 300) throw HubClient.classifyStatus('PUT', path, r);
    const b = (r.body ?? {}) as { sha256?: string; status?: string; instanceKey?: string };
    if (b.sha256 && b.sha256 !== sha256) throw new ClassifiedError('permanent', `hub confirmed a different checksum (${b.sha256}) for ${sha256}`);
    return { status: b.status === 'already-stored' || r.status === 200 ? 'already-stored' : 'stored', ...(b.instanceKey ? { instanceKey: b.instanceKey } : {}) };
  }

  /** True if the hub holds the instance (to re-check ambiguous uploads). */
  async hasInstance(sha256: string): Promise<boolean> {
    const path = this.sitePath(`instances/${sha256}`);
    const r = await this.exchange('GET', path, null);
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    throw HubClient.classifyStatus('GET', path, r);
  }

  async check(shas: string[]): Promise<string[]> {
    const b = (await this.json('POST', this.sitePath('check'), { sha256: shas })) as { present?: string[] };
    return b.present ?? [];
  }

  async postClinical(records: Array<{ id: string; sha256: string; pseudonym: string; kind: string; templateVersion: string; receivedAt: string; record: unknown }>): Promise<Array<{ id: string; sha256: string; status: string; reason?: string }>> {
    const b = (await this.json('POST', this.sitePath('clinical'), { records })) as { results?: Array<{ id: string; sha256: string; status: string; reason?: string }> };
    return b.results ?? [];
  }

  async postPurges(requests: Array<{ id: string; pseudonym: string; reason?: string }>): Promise<Array<{ id: string; status: string; evidenceId?: string }>> {
    const b = (await this.json('POST', this.sitePath('purges'), { requests })) as { results?: Array<{ id: string; status: string; evidenceId?: string }> };
    return b.results ?? [];
  }
}
