import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import { loadConfig } from '@imago/core';
import { startPlatform, type Platform } from '@imago/cli';
import { freePort, tempDir } from '@imago/testkit';

// A real OpenID Connect provider (oidc-provider) on loopback, with its
// development login and consent screens, and the Imago platform as the client.
let op: Server;
let platform: Platform;
let issuer: string;
let base: string;

const ACCOUNTS: Record<string, Record<string, unknown>> = {
  'sub-rad-1': { name: 'Rita Radiologist', preferred_username: 'rita', email: 'rita@example.org', imago_roles: ['radiologist@DEMO1'] },
  'sub-noroles': { name: 'Nobody', preferred_username: 'nobody' },
};

before(async () => {
  const opPort = await freePort();
  const appPort = await freePort();
  issuer = `http://127.0.0.1:${opPort}`;
  base = `http://127.0.0.1:${appPort}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'imago', client_secret: 'imago-client-secret', redirect_uris: [`${base}/api/auth/oidc/callback`], grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'imago_roles'], email: ['email'] },
    findAccount: async (_ctx: unknown, id: string) => (ACCOUNTS[id] ? { accountId: id, claims: async () => ({ sub: id, ...ACCOUNTS[id] }) } : undefined),
    cookies: { keys: ['test-cookie-key'] },
  });
  op = createServer(provider.callback());
  await new Promise<void>((r) => op.listen(opPort, '127.0.0.1', r));
  const dir = tempDir();
  const config = loadConfig({
    env: { IMAGO_DATA_DIR: dir, IMAGO_DB__URL: `sqlite:${dir}/imago.db`, IMAGO_HTTP__PORT: String(appPort), IMAGO_HTTP__PUBLIC_URL: base, IMAGO_LOG__LEVEL: 'silent' },
    overrides: { auth: { oidc: { issuer, clientId: 'imago', clientSecret: 'imago-client-secret' } }, parts: { site: false, hub: false } },
  });
  platform = await startPlatform(config, { demo: true });
});

after(async () => {
  await platform.close();
  op.closeAllConnections();
  await new Promise((r) => op.close(r));
});

/** Follow redirects by hand, keeping cookies per origin, and answer the provider's forms. */
async function oidcLogin(account: string): Promise<{ finalUrl: string; status: number; cookies: Map<string, string> }> {
  const jars = new Map<string, Map<string, string>>();
  const jar = (u: string) => {
    const o = new URL(u).origin;
    if (!jars.has(o)) jars.set(o, new Map());
    return jars.get(o)!;
  };
  const send = async (url: string, init: RequestInit = {}) => {
    const j = jar(url);
    const headers = new Headers(init.headers);
    if (j.size) headers.set('cookie', [...j].map(([k, v]) => `${k}=${v}`).join('; '));
    const r = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv!.indexOf('=');
      j.set(kv!.slice(0, i), kv!.slice(i + 1));
    }
    return r;
  };
  let url = `${base}/api/auth/oidc/login?returnTo=/site/status`;
  let r = await send(url);
  for (let hops = 0; hops < 20; hops++) {
    if (r.status >= 300 && r.status < 400) {
      url = new URL(r.headers.get('location')!, url).toString();
      if (url.startsWith(base) && !url.includes('/api/auth/oidc/')) return { finalUrl: url, status: r.status, cookies: jar(base) };
      r = await send(url);
      continue;
    }
    if (url.startsWith(base)) return { finalUrl: url, status: r.status, cookies: jar(base) };
    const html = await r.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    assert.ok(action, `provider page has a form: ${html.slice(0, 300)}`);
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1] ?? 'login';
    const body = new URLSearchParams(prompt === 'login' ? { prompt, login: account, password: 'any' } : { prompt });
    url = new URL(action, url).toString();
    r = await send(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
  throw new Error('too many redirects');
}

test('OIDC login end to end: provider login and consent, then an Imago session with roles from the claim', async () => {
  const { finalUrl, cookies } = await oidcLogin('sub-rad-1');
  assert.equal(new URL(finalUrl).pathname, '/site/status');
  const sid = cookies.get('imago_session');
  assert.ok(sid, 'session cookie set');
  const me = (await (await fetch(`${base}/api/auth/me`, { headers: { cookie: `imago_session=${sid}` } })).json()) as { user: { username: string; grants: Array<{ role: string; orgCode: string }> } };
  assert.equal(me.user.username, 'rita');
  assert.deepEqual(me.user.grants.map((g) => `${g.role}@${g.orgCode}`), ['radiologist@DEMO1']);
  // A second login maps to the same user.
  const again = await oidcLogin('sub-rad-1');
  assert.ok(again.cookies.get('imago_session'));
  const users = await platform.identity.listUsers('system');
  assert.equal(users.filter((u) => u.username === 'rita').length, 1);
});

test('OIDC login of an account without Imago roles is refused', async () => {
  const { status, cookies } = await oidcLogin('sub-noroles');
  assert.equal(status, 401);
  assert.equal(cookies.get('imago_session'), undefined);
});

test('a forged callback (state mismatch) is refused', async () => {
  const r = await fetch(`${base}/api/auth/oidc/callback?code=abc&state=forged`, { redirect: 'manual' });
  assert.equal(r.status, 400);
});
