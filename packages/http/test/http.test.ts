import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '@imago/core';
import { readDemoLogins, startPlatform, type Platform } from '@imago/cli';
import { tempDir } from '@imago/testkit';

let p: Platform;
let logins: Array<{ username: string; password: string }>;

before(async () => {
  const dir = tempDir();
  const config = loadConfig({ env: { IMAGO_DATA_DIR: dir, IMAGO_DB__URL: `sqlite:${dir}/imago.db`, IMAGO_HTTP__PORT: '0', IMAGO_LOG__LEVEL: 'silent' } });
  p = await startPlatform(config, { demo: true });
  logins = readDemoLogins(config);
});
after(async () => p.close());

async function login(username: string): Promise<string> {
  const l = logins.find((x) => x.username === username)!;
  const r = await fetch(`${p.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: l.password }) });
  assert.equal(r.status, 200);
  const c = r.headers.get('set-cookie')!;
  assert.match(c, /HttpOnly/i);
  assert.match(c, /SameSite=Lax/i);
  return c.split(';')[0]!;
}

test('health, readiness, metrics and OpenAPI', async () => {
  assert.equal((await fetch(`${p.url}/healthz`)).status, 200);
  assert.deepEqual(await (await fetch(`${p.url}/readyz`)).json(), { status: 'ready' });
  const m = await (await fetch(`${p.url}/metrics`)).text();
  assert.match(m, /# TYPE imago_http_request_duration_seconds histogram/);
  assert.match(m, /imago_process_cpu_user_seconds_total/);
  const o = (await (await fetch(`${p.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
  assert.equal(o.openapi, '3.1.0');
  assert.ok(o.paths['/api/auth/login']?.post?.requestBody, 'login body schema is in the OpenAPI document');
  assert.ok(o.paths['/api/auth/me']?.get);
});

test('a demo user logs in through the API and sees their roles', async () => {
  assert.equal(logins.length, 8);
  const cookie = await login('siteadmin');
  const me = (await (await fetch(`${p.url}/api/auth/me`, { headers: { cookie } })).json()) as { user: { username: string; grants: Array<{ role: string; orgCode: string }> } };
  assert.equal(me.user.username, 'siteadmin');
  assert.deepEqual(me.user.grants.map((g) => `${g.role}@${g.orgCode}`), ['site_admin@DEMO1']);
  const out = await fetch(`${p.url}/api/auth/logout`, { method: 'POST', headers: { cookie } });
  assert.equal(out.status, 204);
  assert.equal((await fetch(`${p.url}/api/auth/me`, { headers: { cookie } })).status, 401);
});

test('errors use one vocabulary: bad body, wrong password, bad token, unknown route', async () => {
  const bad = await fetch(`${p.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x' }) });
  assert.equal(bad.status, 400);
  const b = (await bad.json()) as { error: string; issues: Array<{ path: string }> };
  assert.equal(b.error, 'badRequest');
  assert.ok(b.issues.some((i) => i.path.includes('password')));
  const wrong = await fetch(`${p.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'operator', password: 'not-the-password' }) });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { error: string }).error, 'unauthorized');
  const tok = await fetch(`${p.url}/api/auth/me`, { headers: { authorization: 'Bearer imt_forged' } });
  assert.equal(tok.status, 401);
  const nf = await fetch(`${p.url}/api/nothing-here`);
  assert.equal(nf.status, 404);
  assert.equal(((await nf.json()) as { error: string }).error, 'notFound');
  const notJson = await fetch(`${p.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<x/>' });
  assert.equal(notJson.status, 415);
});

test('every login attempt is audited without the password', async () => {
  const events = await p.audit.list({ action: 'auth.login', limit: 1000 });
  assert.ok(events.some((e) => e.outcome === 'failure'));
  assert.ok(events.some((e) => e.outcome === 'success'));
  const all = JSON.stringify(await p.audit.list({ limit: 10000 }));
  for (const l of logins) assert.ok(!all.includes(l.password));
  assert.equal((await p.audit.verify()).ok, true);
});
