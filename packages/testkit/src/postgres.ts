import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const PG_BIN = '/usr/lib/postgresql/15/bin';

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

export interface PgServer {
  url: string; // admin URL to the `postgres` database
  port: number;
  dir: string;
  stop(): void;
}

/**
 * Start a throwaway PostgreSQL 15 server: initdb into a temp dir (as the
 * `postgres` user when we are root, since initdb refuses root), listen on a
 * free loopback port, trust auth.
 */
export async function startPostgres(): Promise<PgServer> {
  if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error('PostgreSQL 15 is not installed: run scripts/ensure-tools.sh');
  const dir = mkdtempSync(join(tmpdir(), 'imago-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string) => {
    const r = asRoot ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', cmd], { encoding: 'utf8' }) : spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`postgres setup failed: ${cmd}\n${r.stdout}\n${r.stderr}`);
  };
  run(`${PG_BIN}/initdb -D ${data} -A trust -U postgres --no-sync -E UTF8 >/dev/null`);
  writeFileSync(join(dir, 'opts'), '');
  run(`${PG_BIN}/pg_ctl -D ${data} -w -o "-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" -l ${dir}/log start >/dev/null`);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const stop = () => {
    try {
      run(`${PG_BIN}/pg_ctl -D ${data} -m immediate stop >/dev/null`);
    } catch {
      /* already stopped */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, port, dir, stop };
}

let ownServer: PgServer | undefined;

/**
 * A fresh, empty database on the test PostgreSQL server. The test runner
 * starts one server per run and passes TESTKIT_PG_URL; a test file run on
 * its own starts its own server, stopped at exit.
 */
export async function freshPostgresDb(prefix = 't'): Promise<string> {
  let admin = process.env.TESTKIT_PG_URL;
  if (!admin) {
    ownServer ??= await startPostgres();
    admin = ownServer.url;
    process.env.TESTKIT_PG_URL = admin;
    process.once('exit', () => ownServer?.stop());
  }
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`.toLowerCase();
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
}

export function pgAvailable(): boolean {
  try {
    execFileSync(join(PG_BIN, 'postgres'), ['--version']);
    return true;
  } catch {
    return false;
  }
}
