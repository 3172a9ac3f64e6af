import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from '@imago/db';
import { peerEnv } from '@imago/testkit';
import { CONFLICT_REASON } from '@imago/site';
import { run, startPair, storescu, TEST_FILES, waitFor } from './helpers.js';

test('dcmtk echoscu/storescu send every readable pydicom test file; each arrives de-identified at the hub or waits in quarantine; unknown calling AE refused', { timeout: 300_000 }, async () => {
  const pair = await startPair();
  try {
    const port = pair.dimsePort;
    await run('echoscu', ['-aet', 'ECHOSCU', '-aec', 'IMAGO', '127.0.0.1', String(port)], { env: peerEnv() });
    await assert.rejects(run('echoscu', ['-aet', 'INTRUDER', '-aec', 'IMAGO', '127.0.0.1', String(port)], { env: peerEnv() }), 'calling AE not allowed is refused');
    await assert.rejects(run('echoscu', ['-aet', 'ECHOSCU', '-aec', 'WRONG', '127.0.0.1', String(port)], { env: peerEnv() }), 'wrong called AE is refused');
    const refused = await storescu(port, [join(TEST_FILES, 'CT_small.dcm')], { aet: 'INTRUDER' });
    assert.notEqual(refused.code, 0);

    const files = readdirSync(TEST_FILES).filter((f) => f.endsWith('.dcm')).map((f) => join(TEST_FILES, f));
    let accepted = 0;
    const notSent: string[] = [];
    for (const f of files) {
      // Own transfer syntax first (compressed through the Default profile), then uncompressed proposal.
      let r = await storescu(port, [f], { compressed: true });
      // Then each transfer syntax storescu can propose, with only the file's own SOP class (-R).
      for (const opt of ['-xr', '-xs', '-xy', '-xx', '-xv', '-xw', '-xt', '-xu', '-xd', '-xb', '-xe', '-xi']) {
        if (r.code === 0) break;
        r = await storescu(port, [f], { extra: ['-R', opt] });
      }
      if (r.code === 0) accepted++;
      else notSent.push(f.split('/').pop()!);
    }
    console.log(`pydicom test files: ${files.length}, accepted ${accepted}, storescu could not send ${notSent.length}: ${notSent.join(' ')}`);
    assert.ok(accepted >= 40, `accepted ${accepted}`);
    const db = pair.platform.db.db;
    const rows = await waitFor('pipeline to settle', async () => {
      const rs = await db.selectFrom('site_instances').selectAll().execute();
      return rs.length === accepted && rs.every((r) => !['received', 'checked', 'outbox'].includes(r.state)) ? rs : undefined;
    }, 120_000);
    const by: Record<string, number> = {};
    for (const r of rows) by[r.state] = (by[r.state] ?? 0) + 1;
    console.log('site states:', by);
    // Every accepted instance reached the hub de-identified (uploaded, or a byte-identical duplicate of one that
    // did) or waits in quarantine with its reason. Nothing may be parked: pydicom ships the same SOP instance in
    // several transfer syntaxes, and the site must catch such a conflicting duplicate itself before upload.
    for (const r of rows) assert.ok(['uploaded', 'quarantine', 'duplicate'].includes(r.state), `instance ${r.id} is ${r.state}: ${r.reason}`);
    for (const r of rows.filter((x) => x.state === 'quarantine')) assert.ok(r.reason && r.reason.length > 3, 'quarantine has a reason');
    const uploaded = rows.filter((r) => r.state === 'uploaded');
    const hubRows = (await sql<{ sha256: string }>`SELECT sha256 FROM hub_instances`.execute(db)).rows;
    const hubShas = new Set(hubRows.map((h) => h.sha256));
    for (const u of uploaded) assert.ok(hubShas.has(u.sha256!), `hub holds ${u.sha256}`);
    for (const d of rows.filter((r) => r.state === 'duplicate')) assert.ok(hubShas.has(d.sha256!), 'duplicate content is at the hub');
    const conflicts = rows.filter((r) => r.state === 'quarantine' && r.reason?.startsWith(CONFLICT_REASON));
    console.log(`conflicting duplicates in quarantine: ${conflicts.length}`);
    assert.ok(conflicts.length > 0, 'pydicom has several objects under one SOP Instance UID');
    const hubUids = new Set((await sql<{ sop_uid: string }>`SELECT sop_uid FROM hub_instances`.execute(db)).rows.map((h) => h.sop_uid));
    for (const c of conflicts) assert.ok(c.sop_uid && hubUids.has(c.sop_uid), `the hub holds the other object under ${c.sop_uid}`);
    // originals deleted once de-identified (keepOriginalsDays 0)
    assert.equal(rows.filter((r) => r.state === 'uploaded' && r.incoming_path).length, 0);
  } finally {
    await pair.close();
  }
});
