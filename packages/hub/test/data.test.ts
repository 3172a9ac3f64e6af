import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { isImagoError } from '@imago/core';
import { dbBackends } from '@imago/testkit';
import { buildInstance, sha256Of, testPseudonym, testUid, type InstanceSpec } from '../src/testing.js';
import { canonicalJson, createRelease, groupFor, hubStats, listReleases, PSEUDONYM_RE, qido, releaseManifest, verifyRelease, wadoThumbnail, sha256, Hub } from '../src/index.js';
import { allBlobs, dumpAllTables, hubEnv, OPERATOR, siteActor, type Env } from './helpers.js';

const code = (e: unknown) => (isImagoError(e) ? e.code : String(e));
async function rejects(p: Promise<unknown>, c: string, msg?: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.equal(code(e), c, `expected ${c}, got ${code(e)}: ${(e as Error).message}`);
    if (msg) assert.match((e as Error).message, msg);
    return e as Error;
  }
  assert.fail(`expected ${c}`);
}

function inst(p: string, study: string, series: string, n: number, extra: Partial<InstanceSpec> = {}): Buffer {
  return buildInstance({ pseudonym: p, studyUid: testUid(study), seriesUid: testUid(`${study}/${series}`), sopUid: testUid(`${study}/${series}/${n}`), instanceNumber: n, seed: n, ...extra });
}

test('the pseudonym form agrees with the deid engine', async () => {
  // The deid engine's own pseudonym function (not exported from @imago/deid's index).
  const { Keys } = await import('../../deid/src/keys.js');
  for (let i = 0; i < 500; i++) assert.match(new Keys(`secret-${i}`).pseudonym(`P${i}`, 'ISSUER'), PSEUDONYM_RE);
  assert.match(testPseudonym('x'), PSEUDONYM_RE);
  assert.doesNotMatch('IMG-ABCD-EFGH-IJKL-MNOP', PSEUDONYM_RE); // I, L, O are not Crockford
  assert.doesNotMatch('12345678', PSEUDONYM_RE);
});

for (const backend of dbBackends()) {
  describe(`hub data layer on ${backend.name}`, () => {
    let env: Env;
    let tokA: string;
    let tokB: string;
    const opened: Env[] = [];
    after(async () => { for (const e of opened) await e.close(); });
    const setup = async () => {
      if (env) return env;
      env = await hubEnv(await backend.url());
      opened.push(env);
      tokA = (await env.hub.registerSite(OPERATOR, { code: 'SITEA', name: 'Site A', region: 'London', splitMode: 'percent', trainingPercent: 70 })).token;
      tokB = (await env.hub.registerSite(OPERATOR, { code: 'SITEB', name: 'Site B', region: 'North', sharesData: true })).token;
      return env;
    };

    test('instances: stored, idempotent, sha256 and de-identification checked, nothing kept on refusal', async () => {
      const e = await setup();
      const a = await siteActor(e, tokA);
      const p = testPseudonym('pat-1');
      const b = inst(p, 's1', 'x', 1, { modality: 'CT', studyDate: '20200315' });
      const sha = sha256Of(b);
      const r1 = await e.hub.putInstance(a, 'SITEA', sha, Readable.from([b.subarray(0, 100), b.subarray(100)]));
      assert.equal(r1.status, 'stored');
      const r2 = await e.hub.putInstance(a, 'SITEA', sha, b);
      assert.deepEqual(r2, { ...r1, status: 'already-stored' });
      assert.deepEqual(await e.hub.checkInstances(a, 'SITEA', [sha, 'f'.repeat(64)]), [sha]);
      assert.equal((await e.hub.findInstance(a, 'SITEA', sha)).instanceKey, r1.instanceKey);
      const before = (await allBlobs(e.blobs)).size;
      // wrong sha256: 422, nothing kept
      const b2 = inst(p, 's1', 'x', 2);
      await rejects(e.hub.putInstance(a, 'SITEA', 'a'.repeat(64), b2), 'unprocessable', /SHA-256/);
      // not de-identified: each marker
      for (const [spec, why] of [
        [{ omitDeidMarkers: true }, /PatientIdentityRemoved/],
        [{ birthDate: '19600101' }, /PatientBirthDate/],
      ] as const) {
        const bad = inst(p, 's1', 'x', 3, spec);
        const err = await rejects(e.hub.putInstance(a, 'SITEA', sha256Of(bad), bad), 'unprocessable', why);
        assert.ok(err.message.startsWith('refused: not de-identified'));
      }
      const notPseudo = buildInstance({ pseudonym: 'MRN12345', studyUid: testUid('q'), seriesUid: testUid('q2'), sopUid: testUid('q3') });
      await rejects(e.hub.putInstance(a, 'SITEA', sha256Of(notPseudo), notPseudo), 'unprocessable', /pseudonym/);
      const garbage = Buffer.from('not dicom at all'.repeat(20));
      await rejects(e.hub.putInstance(a, 'SITEA', sha256Of(garbage), garbage), 'unprocessable');
      // same UIDs, different bytes: conflict, blob cleaned up
      const clash = inst(p, 's1', 'x', 1, { modality: 'CT', studyDate: '20200315', seriesDescription: 'changed' });
      await rejects(e.hub.putInstance(a, 'SITEA', sha256Of(clash), clash), 'conflict');
      assert.equal((await allBlobs(e.blobs)).size, before, 'no blob kept from refused uploads');
    });

    test('an index failure removes the blob', async () => {
      const e = await setup();
      const broken = new Hub({ db: { ...e.db, transaction: async () => { throw new Error('index down'); } }, audit: e.audit, identity: e.identity, blobs: e.blobs, config: e.config, secret: 'x' });
      const b = inst(testPseudonym('pat-broken'), 'sb', 'x', 1);
      const before = (await allBlobs(e.blobs)).size;
      await assert.rejects(broken.putInstance(await siteActor(e, tokA), 'SITEA', sha256Of(b), b), /index down/);
      assert.equal((await allBlobs(e.blobs)).size, before);
    });

    test('a site writes only as itself; refusals are audited as security alerts', async () => {
      const e = await setup();
      const a = await siteActor(e, tokA);
      const b = inst(testPseudonym('pat-x'), 'sx', 'x', 1);
      await rejects(e.hub.putInstance(a, 'SITEB', sha256Of(b), b), 'forbidden');
      await rejects(e.hub.submitClinical(a, 'SITEB', []), 'forbidden');
      await rejects(e.hub.sitePurges(a, 'SITEB', []), 'forbidden');
      await rejects(e.hub.listSites(a), 'forbidden');
      await rejects(e.hub.purge(a, testPseudonym('pat-x')), 'forbidden');
      await rejects(qido(e.hub, a, 'study', {}, {}, ''), 'forbidden');
      const denied = await e.audit.list({ outcome: 'denied', limit: 100 });
      assert.ok(denied.some((d) => d.action === 'hub.submit' && d.resource_id === 'SITEB' && d.code_display === 'Security Alert'));
    });

    test('clinical records: sha256 of canonical JSON, idempotent, newest data wins over status, history kept, linked sources merged', async () => {
      const e = await setup();
      const a = await siteActor(e, tokA);
      const p = testPseudonym('pat-clin');
      const mk = (id: string, kind: 'data' | 'status', receivedAt: string, record: Record<string, unknown>) => ({ id, kind, receivedAt, record, pseudonym: p, templateVersion: kind === 'data' ? 'nccid-data-v3' : 'nccid-status-v1', sha256: sha256(canonicalJson(record)) });
      const status = mk('r1', 'status', '2020-04-01T10:00:00Z', { swabStatus: 'negative', swabDate: '2020-04-01' });
      const data = mk('r2', 'data', '2020-04-02T10:00:00Z', { swabStatus: 'positive', age: 64, sex: 'F', ethnicity: null, observations: { temperature: 38.2 } });
      const later = mk('r3', 'status', '2020-04-05T10:00:00Z', { swabStatus: 'positive', swabDate: '2020-04-05' });
      const bad = { ...mk('r4', 'data', '2020-04-06T10:00:00Z', { age: 1 }), sha256: 'b'.repeat(64) };
      const res = await e.hub.submitClinical(a, 'SITEA', [status, data, later, bad]);
      assert.deepEqual(res.map((r) => r.status), ['stored', 'stored', 'stored', 'rejected']);
      assert.match(res[3]!.reason!, /sha256/);
      const again = await e.hub.submitClinical(a, 'SITEA', [status, data]);
      assert.deepEqual(again.map((r) => r.status), ['already-stored', 'already-stored']);
      let v = await e.hub.clinicalFor(OPERATOR, p);
      assert.equal(v.current?.id, 'r2', 'the data record wins over a later status record');
      assert.equal(v.history.length, 3);
      const imp = await e.hub.importLinked(OPERATOR, { source: 'ethnicity-feed', fileName: 'eth.csv', content: `pseudonym,ethnicity\n${p},H\n${testPseudonym('nobody')},A\nnot-a-pseudonym,B\n` });
      assert.equal(imp.fields, 2);
      assert.equal(imp.unmatched, 1);
      assert.equal(imp.rejected.length, 1);
      const imp2 = await e.hub.importLinked(OPERATOR, { source: 'isaric', fileName: 'isaric.ndjson', content: JSON.stringify({ pseudonym: p, icuDays: 4, age: 99 }) });
      assert.equal(imp2.fields, 2);
      v = await e.hub.clinicalFor(OPERATOR, p);
      assert.equal(v.fields.ethnicity, 'H');
      assert.equal(v.provenance.ethnicity, 'link:ethnicity-feed');
      assert.equal(v.fields.icuDays, 4);
      assert.equal(v.fields.age, 64, 'site data stays authoritative for fields it holds');
      assert.equal(v.provenance.age, 'site:SITEA');
      const reimport = await e.hub.importLinked(OPERATOR, { source: 'ethnicity-feed', fileName: 'eth.csv', content: `pseudonym,ethnicity\n${p},H\n` });
      assert.equal(reimport.skipped, 1);
    });

    test('split: ±2 points over 10,000 patients, sticky, re-run changes nothing, sharing site never validation, rule change affects only new patients, contradictions reported', async () => {
      const e = await setup();
      const ps = Array.from({ length: 10_000 }, (_, i) => testPseudonym(`split-${i}`));
      const r1 = await e.hub.assignPatients(OPERATOR, 'SITEA', ps);
      assert.equal(r1.assigned, 10_000);
      const g1 = await e.hub.patientGroups(OPERATOR, 'SITEA');
      const training = ps.filter((p) => g1.get(p) === 'training').length;
      const share = (training / ps.length) * 100;
      assert.ok(Math.abs(share - 70) <= 2, `training share ${share}% vs 70%`);
      const r2 = await e.hub.assignPatients(OPERATOR, 'SITEA', ps);
      assert.equal(r2.assigned, 0);
      assert.deepEqual(await e.hub.patientGroups(OPERATOR, 'SITEA'), g1);
      // rule change: only patients not yet assigned follow the new rule
      await e.hub.updateSite(OPERATOR, 'SITEA', { splitMode: 'validation' });
      const fresh = Array.from({ length: 500 }, (_, i) => testPseudonym(`split-new-${i}`));
      await e.hub.assignPatients(OPERATOR, 'SITEA', [...ps.slice(0, 1000), ...fresh]);
      const g2 = await e.hub.patientGroups(OPERATOR, 'SITEA');
      for (const p of ps) assert.equal(g2.get(p), g1.get(p));
      for (const p of fresh) assert.equal(g2.get(p), 'validation');
      await e.hub.updateSite(OPERATOR, 'SITEA', { splitMode: 'percent', trainingPercent: 70 });
      // a site sharing its data with other parties: zero validation patients
      const shared = Array.from({ length: 2000 }, (_, i) => testPseudonym(`shared-${i}`));
      await e.hub.assignPatients(OPERATOR, 'SITEB', shared);
      const gb = await e.hub.patientGroups(OPERATOR, 'SITEB');
      assert.equal([...gb.values()].filter((g) => g === 'validation').length, 0);
      // a validation patient of SITEA whose data also arrives from the sharing site: reported, not resolved
      const vp = ps.find((p) => g1.get(p) === 'validation')!;
      assert.equal(groupFor('test-split-secret', vp, { mode: 'percent', trainingPercent: 70, sharesData: false }), 'validation');
      const b = inst(vp, 'conflict-study', 'x', 1);
      await e.hub.putInstance(await siteActor(e, tokB), 'SITEB', sha256Of(b), b);
      const conflicts = await e.hub.splitConflicts(OPERATOR);
      assert.ok(conflicts.some((c) => c.pseudonym === vp && c.assignedGroup === 'validation' && c.claimedGroup === 'training'));
      assert.equal((await e.hub.patientGroups(OPERATOR)).get(vp), 'validation', 'the contradiction is not silently resolved');
      const st = await hubStats(e.hub, OPERATOR);
      assert.ok(st.totals.splitConflicts >= 1);
      const bal = st.splitBalance.find((x) => x.site === 'SITEB')!;
      assert.equal(bal.validation, 0);
    });

    test('patients over time: new patients per period by first arrival, per site and group, and per modality', async () => {
      const e = await hubEnv(await backend.url());
      opened.push(e);
      const tc = (await e.hub.registerSite(OPERATOR, { code: 'SITEC', name: 'Site C', region: 'West', splitMode: 'training' })).token;
      const td = (await e.hub.registerSite(OPERATOR, { code: 'SITED', name: 'Site D', region: 'East', splitMode: 'validation' })).token;
      const c = await siteActor(e, tc);
      const d = await siteActor(e, td);
      const [p1, p2, p3, p4] = ['pot-1', 'pot-2', 'pot-3', 'pot-4'].map((x) => testPseudonym(x)) as [string, string, string, string];
      const send = async (actor: typeof c, site: string, b: Buffer) => { await e.hub.putInstance(actor, site, sha256Of(b), b); };
      await send(c, 'SITEC', inst(p1, 'pot-s1', 'ct', 1, { modality: 'CT' }));
      await send(c, 'SITEC', inst(p1, 'pot-s1', 'ct', 2, { modality: 'CT' }));
      await send(c, 'SITEC', inst(p1, 'pot-s2', 'mr', 3, { modality: 'MR' }));
      await send(c, 'SITEC', inst(p2, 'pot-s3', 'ct', 4, { modality: 'CT' }));
      await send(c, 'SITEC', inst(p4, 'pot-s5', 'dx', 6, { modality: 'DX' }));
      await send(d, 'SITED', inst(p3, 'pot-s4', 'ct', 5, { modality: 'CT' }));
      // first arrivals on known dates (a later instance never moves them)
      for (const [p, at] of [[p1, '2026-01-15T10:00:00.000Z'], [p2, '2026-02-03T09:00:00.000Z'], [p3, '2026-02-20T12:00:00.000Z'], [p4, '2026-02-03T23:00:00.000Z']] as const) {
        await e.db.db.updateTable('hub_patients').set({ assigned_at: at }).where('pseudonym', '=', p).execute();
      }
      await send(c, 'SITEC', inst(p2, 'pot-s3', 'ct', 7, { modality: 'CT' }));
      const month = await hubStats(e.hub, OPERATOR, { bucket: 'month' });
      assert.deepEqual(month.patientsOverTime, [
        { period: '2026-01', site: 'SITEC', group: 'training', patients: 1 },
        { period: '2026-02', site: 'SITEC', group: 'training', patients: 2 },
        { period: '2026-02', site: 'SITED', group: 'validation', patients: 1 },
      ]);
      assert.equal(month.patientsOverTime.reduce((a, r) => a + r.patients, 0), month.totals.patients);
      assert.deepEqual(month.patientsOverTimeByModality, [
        { period: '2026-01', site: 'SITEC', modality: 'CT', group: 'training', patients: 1 },
        { period: '2026-01', site: 'SITEC', modality: 'MR', group: 'training', patients: 1 },
        { period: '2026-02', site: 'SITEC', modality: 'CT', group: 'training', patients: 1 },
        { period: '2026-02', site: 'SITEC', modality: 'DX', group: 'training', patients: 1 },
        { period: '2026-02', site: 'SITED', modality: 'CT', group: 'validation', patients: 1 },
      ]);
      const day = await hubStats(e.hub, OPERATOR, { bucket: 'day' });
      assert.deepEqual(day.patientsOverTime, [
        { period: '2026-01-15', site: 'SITEC', group: 'training', patients: 1 },
        { period: '2026-02-03', site: 'SITEC', group: 'training', patients: 2 },
        { period: '2026-02-20', site: 'SITED', group: 'validation', patients: 1 },
      ]);
      // the instances series is unchanged in meaning: 7 instances in all
      assert.equal(day.overTime.reduce((a, r) => a + r.instances, 0), 7);
    });

    test('revoking a site\'s tokens alone: none works afterwards, none is issued, audited; only operators may', async () => {
      const e = await setup();
      const reg = await e.hub.registerSite(OPERATOR, { code: 'SITER', name: 'Site R', region: 'South' });
      const again = await e.hub.issueSiteToken(OPERATOR, 'SITER');
      const a = await siteActor(e, reg.token);
      await rejects(e.hub.revokeSiteTokens(a, 'SITER'), 'forbidden');
      const r = await e.hub.revokeSiteTokens(OPERATOR, 'SITER');
      assert.equal(r.revoked, 2);
      assert.deepEqual([...r.tokenIds].sort(), [reg.tokenId, again.tokenId].sort());
      for (const t of [reg.token, again.token]) assert.equal(await e.identity.principalForToken(t), null);
      assert.ok(await e.identity.principalForToken(tokA), 'other sites keep their tokens');
      assert.equal((await e.hub.revokeSiteTokens(OPERATOR, 'SITER')).revoked, 0);
      await rejects(e.hub.revokeSiteTokens(OPERATOR, 'NOSUCH'), 'notFound');
      const ev = await e.db.db.selectFrom('audit_events').selectAll().where('action', '=', 'hub.site.token.revoke').execute();
      assert.equal(ev.length, 2);
    });

    test('purge removes every row and blob of the patient; releases withhold the patient and still verify', async () => {
      const e = await setup();
      const a = await siteActor(e, tokA);
      const victim = testPseudonym('victim');
      const keep = testPseudonym('keeper');
      const shas: string[] = [];
      for (let i = 1; i <= 3; i++) {
        const b = inst(victim, 'vs', String(i % 2), i, { modality: 'DX', windowCenter: 1000, windowWidth: 2000 });
        shas.push(sha256Of(b));
        await e.hub.putInstance(a, 'SITEA', sha256Of(b), b);
      }
      const kb = inst(keep, 'ks', 'x', 1);
      await e.hub.putInstance(a, 'SITEA', sha256Of(kb), kb);
      const rec = { swabStatus: 'positive', age: 50 };
      await e.hub.submitClinical(a, 'SITEA', [{ id: 'v1', sha256: sha256(canonicalJson(rec)), pseudonym: victim, kind: 'data', templateVersion: 't', receivedAt: new Date().toISOString(), record: rec }]);
      await e.hub.importLinked(OPERATOR, { source: 'feed', fileName: 'f.json', content: JSON.stringify([{ pseudonym: victim, ethnicity: 'A' }]) });
      // a derived thumbnail
      const png = await wadoThumbnail(e.hub, OPERATOR, { studyUid: testUid('vs') }, 'image/png');
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
      const rel = await createRelease(e.hub, OPERATOR, { title: 'test release' });
      assert.match(rel.identifier, /^imago:release:v1:sha256-[0-9a-f]{16}$/);
      const v1 = await verifyRelease(e.hub, OPERATOR, rel.id);
      assert.equal(v1.ok, true, JSON.stringify(v1.problems));
      const manifestBefore = await releaseManifest(e.hub, OPERATOR, rel.id, 'training');
      const validationBefore = await releaseManifest(e.hub, OPERATOR, rel.id, 'validation');
      const victimItems = [...manifestBefore.items, ...validationBefore.items].filter((i) => i.pseudonym === victim).length;
      assert.equal(victimItems, 4);

      // the site asks; a second request is "already purged"
      const r = await e.hub.sitePurges(a, 'SITEA', [{ id: 'req-1', pseudonym: victim, reason: 'opt-out' }]);
      assert.equal(r[0]!.status, 'purged');
      const r2 = await e.hub.sitePurges(a, 'SITEA', [{ id: 'req-1', pseudonym: victim }]);
      assert.equal(r2[0]!.status, 'already-purged');
      assert.equal(r2[0]!.evidenceId, r[0]!.evidenceId);

      const tables = await dumpAllTables(e.db);
      for (const [t, text] of tables) {
        assert.ok(!text.includes(victim), `table ${t} still holds the pseudonym`);
        for (const s of shas) assert.ok(!text.includes(s), `table ${t} still holds an instance hash`);
      }
      assert.ok(tables.get('hub_instances')!.includes(keep), 'other patients are untouched');
      const blobs = await allBlobs(e.blobs);
      for (const [k, buf] of blobs) {
        assert.ok(!k.includes(victim) && !shas.some((s) => k.includes(s)), `blob key ${k} belongs to the patient`);
        assert.ok(!buf.includes(Buffer.from(victim)), `blob ${k} holds the pseudonym`);
      }
      // evidence: an audit event with counts and hashes, never the identity
      const ev = (await e.audit.list({ action: 'hub.purge', limit: 10 }))[0]!;
      const detail = JSON.parse(ev.detail!) as { counts: Record<string, number>; instancesSha256Digest: string };
      assert.equal(detail.counts.instances, 3);
      assert.equal(detail.counts.clinicalRecords, 1);
      assert.equal(detail.counts.linkedData, 1);
      assert.equal(detail.counts.thumbnails, 1);
      assert.equal(detail.counts.blobs, 4);
      assert.equal(detail.counts.releaseItems, 4);
      assert.equal(detail.instancesSha256Digest, sha256([...shas].sort().join('\n')));
      // the release, served now, withholds the patient and says so; it still verifies
      const after1 = await releaseManifest(e.hub, OPERATOR, rel.id, 'training');
      const after2 = await releaseManifest(e.hub, OPERATOR, rel.id, 'validation');
      assert.equal([...after1.items, ...after2.items].filter((i) => i.pseudonym === victim).length, 0);
      assert.equal(after1.withheld.items + after2.withheld.items, 4);
      assert.equal(after1.withheld.applied || after2.withheld.applied, true);
      const v2 = await verifyRelease(e.hub, OPERATOR, rel.id);
      assert.equal(v2.ok, true, JSON.stringify(v2));
      assert.equal(v2.withheld, 4);
      const listed = (await listReleases(e.hub, OPERATOR)).find((x) => x.id === rel.id)!;
      assert.equal(listed.withheld.applied, true);
      // a re-send of the purged patient is refused
      const again = inst(victim, 'vs', '1', 1, { modality: 'DX', windowCenter: 1000, windowWidth: 2000 });
      await rejects(e.hub.putInstance(a, 'SITEA', sha256Of(again), again), 'unprocessable', /purged/);
      // tampering is detected
      const kept = await e.db.db.selectFrom('hub_instances').select('blob_key').where('pseudonym', '=', keep).executeTakeFirstOrThrow();
      await e.blobs.put(kept.blob_key, Buffer.from('tampered'));
      const v3 = await verifyRelease(e.hub, OPERATOR, rel.id);
      assert.equal(v3.ok, false);
      assert.equal(v3.mismatched, 1);
    });
  });
}
