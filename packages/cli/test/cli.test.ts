import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import Database from 'better-sqlite3';
import { buildProgram } from '@imago/cli';
import { tempDir } from '@imago/testkit';

const BIN = join(import.meta.dirname, '..', 'src', 'bin.ts');
const dir = tempDir();
const env = { ...process.env, IMAGO_DATA_DIR: dir, IMAGO_DB__URL: `sqlite:${dir}/imago.db`, IMAGO_LOG__LEVEL: 'silent' };

function imago(args: string[], input?: string, extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { env: { ...env, ...extraEnv }, input: input ?? '', encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('every command has --help', () => {
  const walk = (c: Command): Command[] => [c, ...c.commands.flatMap(walk)];
  const all = walk(buildProgram());
  assert.ok(all.length > 10);
  for (const c of all) {
    const h = c.helpInformation();
    assert.match(h, /Usage:/, `help of ${c.name()}`);
    assert.ok(c.description().length > 0 || c.name() === 'imago', `${c.name()} has a description`);
  }
  const r = imago(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /audit/);
});

test('users, tokens and the audit chain through the command line', () => {
  let r = imago(['user', 'add', 'alice', '--role', 'platform_operator', '--name', 'Alice'], 'alice-long-password\n');
  assert.equal(r.code, 0, r.err);
  r = imago(['user', 'add', 'bob', '--role', 'not_a_role'], 'bob-long-password\n');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown role/);
  r = imago(['user', 'list']);
  assert.match(r.out, /alice\s+active\s+platform_operator/);
  r = imago(['user', 'disable', 'alice']);
  assert.equal(r.code, 0);
  assert.match(imago(['user', 'list']).out, /alice\s+disabled/);
  r = imago(['user', 'disable', 'nobody']);
  assert.equal(r.code, 1);
  assert.match(r.err, /not found/);

  r = imago(['token', 'create', 'svc', '--role', 'validator']);
  assert.equal(r.code, 0, r.err);
  const secret = r.out.trim();
  assert.match(secret, /^imt_/);
  const listed = imago(['token', 'list']).out;
  assert.ok(!listed.includes(secret), 'token list never shows the secret');
  const id = listed.trim().split(/\s+/)[0]!;
  assert.equal(imago(['token', 'revoke', id]).code, 0);
  assert.match(imago(['token', 'list']).out, /revoked/);

  r = imago(['audit', 'verify']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /audit chain OK: \d+ events/);

  const out = join(dir, 'audit.ndjson');
  assert.equal(imago(['audit', 'export', '--out', out]).code, 0);
  const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { resourceType: string });
  assert.ok(lines.length >= 5);
  assert.ok(lines.every((l) => l.resourceType === 'AuditEvent'));

  // Tamper with one row directly in the database: verify now fails, exit 1.
  const db = new Database(join(dir, 'imago.db'));
  db.exec('DROP TRIGGER audit_no_update');
  db.prepare("UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 2").run();
  db.close();
  r = imago(['audit', 'verify']);
  assert.equal(r.code, 1);
  assert.match(r.out, /BROKEN at event 2/);
});

test('config print redacts secrets; a bad config exits 78 naming the key', () => {
  let r = imago(['config', 'print'], '', { IMAGO_SITE__SECRET: 'super-secret-value', IMAGO_DB__URL: 'postgres://u:pw123@localhost/x' });
  assert.equal(r.code, 0, r.err);
  assert.ok(!r.out.includes('super-secret-value'));
  assert.ok(!r.out.includes('pw123'));
  assert.equal((JSON.parse(r.out) as { site: { secret: string } }).site.secret, '[redacted]');
  r = imago(['config', 'print'], '', { IMAGO_HTTP__PORT: '-5' });
  assert.equal(r.code, 78);
  assert.match(r.err, /http\.port/);
  r = imago(['no-such-command']);
  assert.equal(r.code, 2);
});
