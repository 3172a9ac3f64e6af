import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '@imago/core';
import { freePort, peerEnv, tempDir } from '@imago/testkit';
import { openCore, startPlatform, type Platform } from '@imago/cli';

export const run = promisify(execFile);
export const TEST_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
export const OPERATOR = { principal: { kind: 'user' as const, id: 'op', name: 'operator', grants: [{ role: 'platform_operator', orgId: null }] }, ip: null };

export interface Pair {
  config: Config;
  dir: string;
  platform: Platform;
  dimsePort: number;
  httpPort: number;
  close(): Promise<void>;
}

/** Config for a site (DEMO1) whose hub is the same server; registers the site at the hub to get its token. */
export async function pairConfig(over: { dir?: string; db?: string; site?: Record<string, unknown>; jobs?: Record<string, unknown> } = {}): Promise<Config> {
  const dir = over.dir ?? tempDir('imago-site-');
  const httpPort = await freePort();
  const dimsePort = await freePort();
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      db: { url: over.db ?? `sqlite:${join(dir, 'imago.db')}` },
      storage: { url: `file:${join(dir, 'blobs')}` },
      http: { port: httpPort },
      log: { level: 'error' },
      jobs: { retryDelayMs: 100, retryMaxDelayMs: 1000, pollIntervalMs: 20, ...over.jobs },
      site: { dimsePort, allowedCallingAeTitles: ['STORESCU', 'ECHOSCU', 'PACS'], secret: 'site-test-secret', hubUrl: `http://127.0.0.1:${httpPort}`, clinicalFlushMs: 200, ...over.site },
      hub: { splitSecret: 'hub-test-secret' },
    },
  });
  const core = await openCore(config);
  try {
    const { createHub } = await import('@imago/hub');
    const hub = createHub({ config, db: core.db, audit: core.audit, identity: core.identity, logger: core.logger });
    const existing = await core.db.db.selectFrom('hub_sites' as never).selectAll().execute().catch(() => []);
    if (!(existing as unknown[]).length) {
      const r = await hub.registerSite(OPERATOR, { code: config.site.code, name: 'Demo General Hospital', region: 'London', splitMode: 'training' });
      config.site.hubToken = r.token;
    }
  } finally {
    await core.close();
  }
  return config;
}

export async function startPair(config?: Config): Promise<Pair> {
  const c = config ?? (await pairConfig());
  const platform = await startPlatform(c);
  return { config: c, dir: c.dataDir, platform, dimsePort: c.site.dimsePort, httpPort: c.http.port, close: () => platform.close() };
}

export async function storescu(port: number, files: string[], opts: { aet?: string; aec?: string; compressed?: boolean; extra?: string[] } = {}): Promise<{ code: number; stderr: string }> {
  const args = ['-aet', opts.aet ?? 'STORESCU', '-aec', opts.aec ?? 'IMAGO', ...(opts.compressed ? ['-xf', '/etc/dcmtk/storescu.cfg', 'Default'] : []), ...(opts.extra ?? []), '127.0.0.1', String(port), ...files];
  try {
    const r = await run('storescu', args, { env: peerEnv(), maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stderr: err.stderr ?? '' };
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
