import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export * from './postgres.js';

/** A temp directory removed when the process exits. */
export function tempDir(prefix = 'imago-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Environment for dcmtk tools and peer servers: Nagle off (see PEERS.md). */
export function peerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, TCP_NODELAY: '1', ...extra };
}

/** Debian's python with pydicom; `python3` on PATH may be another build. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty database URL of this backend. */
  url(): Promise<string>;
}

/** Both database backends, for suites that must run on each. */
export function dbBackends(): Backend[] {
  return [
    { name: 'sqlite', url: async () => `sqlite:${join(tempDir('imago-db-'), 'test.db')}` },
    { name: 'postgres', url: async () => (await import('./postgres.js')).freshPostgresDb() },
  ];
}
