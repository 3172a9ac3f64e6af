import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditLog, GENESIS_HASH, toFhirAuditEvent, type Actor } from '@imago/audit';
import { openDatabase, sql } from '@imago/db';
import { dbBackends } from '@imago/testkit';

const actor: Actor = { principal: { kind: 'user', id: 'u1', name: 'alice', grants: [{ role: 'platform_operator', orgId: null }] }, ip: '127.0.0.1' };

for (const backend of dbBackends()) {
  describe(`audit chain on ${backend.name}`, () => {
    test('an untouched chain verifies; an edited row breaks it at that row', async () => {
      const h = await openDatabase(await backend.url());
      const log = new AuditLog(h);
      try {
        for (let i = 0; i < 25; i++) {
          await log.record({ actor, action: 'hub.release.create', code: 'export', resourceType: 'release', resourceId: `r${i}`, outcome: 'success', detail: { n: i } });
        }
        const ok = await log.verify();
        assert.equal(ok.ok, true);
        assert.equal(ok.checked, 25);
        const first = (await log.list({ limit: 1 }))[0]!;
        assert.equal(first.prev_hash, GENESIS_HASH);

        // The table refuses UPDATE through the normal path …
        await assert.rejects(sql`UPDATE audit_events SET outcome = 'failure' WHERE seq = 10`.execute(h.db), /append-only/);
        // … so an attacker with database access drops the guard and edits a row.
        if (backend.name === 'sqlite') await sql`DROP TRIGGER audit_no_update`.execute(h.db);
        else await sql`DROP TRIGGER audit_no_change ON audit_events`.execute(h.db);
        await sql`UPDATE audit_events SET resource_id = 'forged' WHERE seq = 10`.execute(h.db);
        const bad = await log.verify();
        assert.equal(bad.ok, false);
        assert.equal(bad.broken?.seq, 10);
        assert.match(bad.broken!.reason, /altered/);
        assert.equal(bad.checked, 9);
      } finally {
        await h.close();
      }
    });

    test('a deleted row, or a recomputed hash, is caught by the link to the next event', async () => {
      const h = await openDatabase(await backend.url());
      const log = new AuditLog(h);
      try {
        for (let i = 0; i < 5; i++) await log.record({ actor, action: 'x', code: 'query', resourceType: 't', outcome: 'success' });
        if (backend.name === 'sqlite') await sql`DROP TRIGGER audit_no_delete`.execute(h.db);
        else await sql`DROP TRIGGER audit_no_change ON audit_events`.execute(h.db);
        await sql`DELETE FROM audit_events WHERE seq = 3`.execute(h.db);
        const r = await log.verify();
        assert.equal(r.ok, false);
        assert.equal(r.broken?.seq, 3);
        assert.match(r.broken!.reason, /missing/);
      } finally {
        await h.close();
      }
    });

    test('events written inside a rolled-back transaction vanish with it', async () => {
      const h = await openDatabase(await backend.url());
      const log = new AuditLog(h);
      try {
        await log.record({ actor, action: 'a', code: 'query', resourceType: 't', outcome: 'success' });
        await assert.rejects(h.transaction(async (trx) => {
          await log.record({ actor, action: 'b', code: 'query', resourceType: 't', outcome: 'success' }, trx);
          throw new Error('abort');
        }));
        await log.record({ actor, action: 'c', code: 'query', resourceType: 't', outcome: 'success' });
        assert.deepEqual((await log.list()).map((e) => e.action), ['a', 'c']);
        assert.equal((await log.verify()).ok, true);
      } finally {
        await h.close();
      }
    });

    test('concurrent appends keep one unbroken chain', async () => {
      const h = await openDatabase(await backend.url());
      const log = new AuditLog(h);
      try {
        await Promise.all(Array.from({ length: 40 }, (_, i) => log.record({ actor, action: `c${i}`, code: 'query', resourceType: 't', outcome: 'success' })));
        const r = await log.verify();
        assert.equal(r.ok, true, JSON.stringify(r.broken));
        assert.equal(r.checked, 40);
      } finally {
        await h.close();
      }
    });

    test('require() denies by policy and audits the denial', async () => {
      const h = await openDatabase(await backend.url());
      const log = new AuditLog(h);
      try {
        const researcher: Actor = { principal: { kind: 'user', id: 'r', name: 'rae', grants: [{ role: 'researcher', orgId: 'u' }] }, ip: '10.0.0.9' };
        await assert.rejects(log.require(researcher, 'hub.release.manage', { type: 'release' }), (e: unknown) => (e as { code?: string }).code === 'forbidden');
        const [ev] = await log.list({ outcome: 'denied' });
        assert.equal(ev?.action, 'hub.release.manage');
        assert.equal(ev?.code, '110113');
        assert.equal(ev?.source_ip, '10.0.0.9');
        assert.equal(await log.require(actor, 'hub.release.manage', { type: 'release' }), 'platform_operator');
      } finally {
        await h.close();
      }
    });
  });
}

test('FHIR AuditEvent export carries codes, agent, outcome and the chain', async () => {
  const h = await openDatabase(await dbBackends()[0]!.url());
  const log = new AuditLog(h);
  await log.record({ actor, action: 'hub.dicomweb.read', code: 'instancesAccessed', resourceType: 'study', resourceId: 's1', outcome: 'success' });
  await log.record({ actor, action: 'auth.login', code: 'userAuthentication', resourceType: 'session', outcome: 'failure' });
  const lines: string[] = [];
  for await (const l of log.exportFhir()) lines.push(l);
  assert.equal(lines.length, 2);
  const a = JSON.parse(lines[0]!) as ReturnType<typeof toFhirAuditEvent> & Record<string, unknown>;
  assert.equal(a.resourceType, 'AuditEvent');
  assert.deepEqual(a.type, { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110103', display: 'DICOM Instances Accessed' });
  assert.equal(a.action, 'R');
  assert.equal(a.outcome, '0');
  const b = JSON.parse(lines[1]!) as Record<string, unknown>;
  assert.equal(b.outcome, '8');
  assert.match(JSON.stringify(a.agent), /127\.0\.0\.1/);
  await h.close();
});
