import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '@imago/core';
import { AuditLog } from '@imago/audit';
import { openDatabase, sql } from '@imago/db';
import { hashPassword, Identity, verifyPassword, type GrantInput } from '@imago/identity';
import { dbBackends } from '@imago/testkit';

const auth = loadConfig({ env: { IMAGO_AUTH__LOGIN_MAX_FAILURES: '3', IMAGO_AUTH__LOGIN_LOCKOUT_SECONDS: '60' } }).auth;

async function setup(url: string) {
  const h = await openDatabase(url);
  const audit = new AuditLog(h);
  const id = new Identity(h, audit, auth);
  await id.ensureOrganisation('DEMO1', 'Demo', 'hospital');
  return { h, audit, id };
}

test('passwords are hashed with scrypt and verified', async () => {
  const hsh = await hashPassword('correct horse battery');
  assert.match(hsh, /^scrypt\$16384\$8\$1\$/);
  assert.equal(await verifyPassword('correct horse battery', hsh), true);
  assert.equal(await verifyPassword('wrong horse battery', hsh), false);
  assert.notEqual(hsh, await hashPassword('correct horse battery'));
});

for (const backend of dbBackends()) {
  describe(`identity on ${backend.name}`, () => {
    test('users hold several roles in several organisations; login makes a session', async () => {
      const { h, id } = await setup(await backend.url());
      await id.ensureOrganisation('DEMO2', 'Demo 2', 'hospital');
      const grants: GrantInput[] = [{ role: 'site_admin', org: 'DEMO1' }, { role: 'radiologist', org: 'DEMO2' }, { role: 'validator', org: null }];
      await id.addUser('system', { username: 'alice', password: 'a-long-password', grants });
      await assert.rejects(id.addUser('system', { username: 'alice', password: 'a-long-password', grants }), /already exists/);
      await assert.rejects(id.addUser('system', { username: 'bob', password: 'short', grants }), /at least 10/);
      await assert.rejects(id.addUser('system', { username: 'bob', password: 'a-long-password', grants: [{ role: 'god', org: null }] }), /unknown role/);
      const s = await id.login('alice', 'a-long-password', '127.0.0.1');
      const p = await id.principalForSession(s.sessionToken);
      assert.equal(p?.name, 'alice');
      assert.equal(p?.grants.length, 3);
      // The session is stored only hashed.
      const rows = await h.db.selectFrom('sessions').select('id_hash').execute();
      assert.ok(rows.every((r) => r.id_hash !== s.sessionToken));
      await id.logout(s.sessionToken, null);
      assert.equal(await id.principalForSession(s.sessionToken), null);
      await h.close();
    });

    test('brute force: the account locks after repeated failures, even for the right password', async () => {
      const { h, id, audit } = await setup(await backend.url());
      await id.addUser('system', { username: 'carol', password: 'carols-password', grants: [{ role: 'researcher', org: null }] });
      for (let i = 0; i < 3; i++) await assert.rejects(id.login('carol', 'guess-' + i, '10.0.0.1'), /invalid username or password/);
      await assert.rejects(id.login('carol', 'carols-password', '10.0.0.1'), (e: unknown) => (e as { code?: string }).code === 'tooManyRequests');
      await assert.rejects(id.login('nobody', 'whatever-password', '10.0.0.1'), /invalid username or password/);
      const failures = await audit.list({ action: 'auth.login', outcome: 'failure', limit: 50 });
      assert.equal(failures.length, 4);
      // Expire the lock: login works again.
      await h.db.updateTable('users').set({ locked_until: new Date(Date.now() - 1000).toISOString() }).execute();
      const s = await id.login('carol', 'carols-password', '10.0.0.1');
      assert.ok(s.sessionToken);
      await h.close();
    });

    test('expired sessions and disabled users are refused', async () => {
      const { h, id } = await setup(await backend.url());
      await id.addUser('system', { username: 'dave', password: 'daves-password', grants: [{ role: 'researcher', org: null }] });
      const s = await id.login('dave', 'daves-password', null);
      await sql`UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z'`.execute(h.db);
      assert.equal(await id.principalForSession(s.sessionToken), null);
      const s2 = await id.login('dave', 'daves-password', null);
      await id.setDisabled('system', 'dave', true);
      assert.equal(await id.principalForSession(s2.sessionToken), null);
      await assert.rejects(id.login('dave', 'daves-password', null), /invalid/);
      await h.close();
    });

    test('API tokens are shown once, stored hashed, scoped and revocable', async () => {
      const { h, id } = await setup(await backend.url());
      const { token, view } = await id.createToken('system', { name: 'uplink DEMO1', role: 'site_uplink', org: 'DEMO1' });
      assert.match(token, /^imt_/);
      const stored = await h.db.selectFrom('api_tokens').selectAll().executeTakeFirstOrThrow();
      assert.notEqual(stored.token_hash, token);
      assert.ok(!JSON.stringify(await id.listTokens('system')).includes(token));
      const p = await id.principalForToken(token);
      assert.deepEqual(p?.grants, [{ role: 'site_uplink', orgId: view.orgId }]);
      assert.equal(await id.principalForToken(token + 'x'), null);
      await id.revokeToken('system', view.id);
      assert.equal(await id.principalForToken(token), null);
      await assert.rejects(id.revokeToken('system', view.id), /not found/);
      await assert.rejects(id.createToken('system', { name: 'x', role: 'site_uplink', org: 'NOPE' }), /not found/);
      await h.close();
    });

    test('user management through an actor is policy-checked', async () => {
      const { h, id } = await setup(await backend.url());
      const researcher = { principal: { kind: 'user' as const, id: 'r', name: 'r', grants: [{ role: 'researcher', orgId: null }] }, ip: null };
      await assert.rejects(id.addUser(researcher, { username: 'eve', password: 'eves-password', grants: [{ role: 'platform_operator', org: null }] }), /not allowed/);
      await assert.rejects(id.createToken(researcher, { name: 't', role: 'site_uplink', org: 'DEMO1' }), /not allowed/);
      assert.equal(await id.findUserByUsername('eve'), null);
      await h.close();
    });
  });
}
