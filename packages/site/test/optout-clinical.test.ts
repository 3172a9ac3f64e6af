import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sql } from '@imago/db';
import { tempDir } from '@imago/testkit';
import { clinicalFromCsv, clinicalFromFhir, csvTemplate, saveClinical } from '../src/index.js';
import { startPair, storescu, waitFor } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';

const SITEADMIN = (orgId: string) => ({ principal: { kind: 'user' as const, id: 'sa', name: 'siteadmin', grants: [{ role: 'site_admin', orgId }] }, ip: null });
const DATAMGR = (orgId: string) => ({ principal: { kind: 'user' as const, id: 'dm', name: 'datamanager', grants: [{ role: 'site_data_manager', orgId }] }, ip: null });

function dataRecord(patientId: string, over: Record<string, unknown> = {}) {
  return {
    kind: 'data', templateVersion: 'nccid-data-v3', submittingSite: 'DEMO1', patientId, swabStatus: 'positive', swabDate: '2020-04-01',
    dateOfPositiveSwab: '2020-04-01', dateOfLastNegativeSwab: null, dateOfResult: null, dateOfAdmission: '2020-04-02', age: 67, sex: 'F', ethnicity: 'A',
    comorbidities: { hypertension: true, diabetesType2: false, ckd: null, cardiovascularDisease: null, lungDisease: null, smoking: 'former' },
    observations: { temperature: 38.2, respiratoryRate: 22, heartRate: 101, systolicBp: 130, diastolicBp: 80, o2Saturation: 93, fio2: 0.28, news2: 5, lymphocytes: 0.8, crp: 120, dDimer: 900, ferritin: 700 },
    outcomes: { ituAdmission: false, ituAdmissionDate: null, intubation: false, intubationDate: null, death: false, dateOfDeath: null },
    cxrSeverity: 2, ...over,
  };
}

test('opt-out drops images and clinical data before de-identification; a later opt-out purges at the hub; pseudonym lookup is admin-only and audited', { timeout: 120_000 }, async () => {
  const pair = await startPair();
  try {
    const db = pair.platform.db.db;
    const org = (await db.selectFrom('organisations').select('id').where('code', '=', 'DEMO1').executeTakeFirstOrThrow()).id;
    const { SiteNode } = await import('../src/node.js');
    const n = await SiteNode.open({ config: { ...pair.config, site: { ...pair.config.site, dimse: false } }, logger: pair.platform.logger, db: pair.platform.db, audit: pair.platform.audit });
    const dir = tempDir();
    // Patient A (NHS number) opted out before anything is sent; patient B sent, then opts out.
    await n.addOptouts(SITEADMIN(org), [{ patientId: '943 476 5919' }], 'api');
    assert.equal(await db.selectFrom('site_optouts').select('hash').execute().then((r) => r.some((x) => x.hash.includes('9434765919'))), false, 'only keyed hashes are stored');
    const files: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = join(dir, `a${i}.dcm`);
      writeInstance(f, { patientId: '9434765919', studyUid: uid(1, 1), seriesUid: uid(1, 1, 1), sopUid: uid(1, 1, 1, i + 1) });
      files.push(f);
    }
    for (let i = 0; i < 2; i++) {
      const f = join(dir, `b${i}.dcm`);
      writeInstance(f, { patientId: 'MRN-B-77', studyUid: uid(2, 1), seriesUid: uid(2, 1, 1), sopUid: uid(2, 1, 1, i + 1) });
      files.push(f);
    }
    assert.equal((await storescu(pair.dimsePort, files)).code, 0);
    await saveClinical(n, DATAMGR(org), [{ record: dataRecord('9434765919') }, { record: dataRecord('MRN-B-77') }], { source: 'api' });
    await waitFor('B uploaded', async () => {
      const s = await n.statusUnchecked();
      if (process.env.DEBUG_SITE) console.log(JSON.stringify(s));
      return s.instances.uploaded === 2 && s.instances['dropped-opt-out'] === 3 && s.clinical.uploaded === 1;
    }, 20_000);
    const hubPseudonyms = (await sql<{ pseudonym: string }>`SELECT DISTINCT pseudonym FROM hub_instances`.execute(db)).rows.map((r) => r.pseudonym);
    const pA = n.engine.pseudonymFor('9434765919');
    const pB = n.engine.pseudonymFor('MRN-B-77');
    assert.deepEqual(hubPseudonyms, [pB], 'only B reached the hub');
    const hubClin = (await sql<{ pseudonym: string }>`SELECT pseudonym FROM hub_clinical_records`.execute(db)).rows.map((r) => r.pseudonym);
    assert.deepEqual(hubClin, [pB]);
    assert.ok(!hubClin.includes(pA));
    const st = await n.statusUnchecked();
    assert.equal(st.droppedOptOut.instances, 3);
    assert.equal(st.droppedOptOut.clinical, 1);

    // Pseudonym map: data manager refused (and the denial audited); admin allowed and audited.
    await assert.rejects(n.lookupPseudonym(DATAMGR(org), pB), /not allowed/);
    const m = await n.lookupPseudonym(SITEADMIN(org), pB);
    assert.equal(m?.patientId, 'MRN-B-77');
    const audits = await db.selectFrom('audit_events').select(['action', 'outcome']).where('action', '=', 'site.pseudonym.lookup').execute();
    assert.deepEqual(audits.map((a) => a.outcome).sort(), ['denied', 'success']);

    // B opts out after upload: a durable purge request reaches the hub.
    const r = await n.addOptouts(SITEADMIN(org), [{ patientId: 'MRN-B-77', issuer: null }], 'cli');
    assert.equal(r.purgesRequested, 1);
    await n.startWorkers();
    await waitFor('purge confirmed', async () => (await n.statusUnchecked()).purges.purged === 1, 30_000);
    const left = (await sql<{ n: number }>`SELECT count(*) AS n FROM hub_instances WHERE pseudonym = ${pB}`.execute(db)).rows[0]!.n;
    assert.equal(Number(left), 0, 'hub purged B');
    await n.stop();
  } finally {
    await pair.close();
  }
});

test('clinical CSV and FHIR imports round-trip into the schema; bad rows give field errors and store nothing', async () => {
  const tpl = csvTemplate('DEMO1');
  const recs = clinicalFromCsv(tpl, { site: 'DEMO1' });
  assert.equal(recs.length, 2);
  assert.equal(recs[0]!.record.kind, 'data');
  assert.equal(recs[1]!.record.kind, 'status');
  const bad = tpl.replace('38.2', '58.2').replace(',F,', ',Q,');
  assert.throws(() => clinicalFromCsv(bad, { site: 'DEMO1' }), (e: { issues?: Array<{ path: string; message: string }> }) => {
    const paths = (e.issues ?? []).map((i) => `${i.path}: ${i.message}`);
    assert.ok(paths.some((p) => p.startsWith('row 2.observations.temperature: must be at most 45')), paths.join('\n'));
    assert.ok(paths.some((p) => p.startsWith('row 2.sex')), paths.join('\n'));
    return true;
  });
  // FHIR from the synthetic generator round-trips.
  const synth = await import('@imago/synth');
  const plan = synth.planDataset({ seed: 7, sites: 1, patients: 12, scale: 0.01, ctSlices: 1, prevalence: 0.6 });
  const planned = plan;
  let checked = 0;
  for (const p of planned.patients) {
    const site = planned.sites.find((s) => s.code === p.site) ?? planned.sites[0]!;
    const rec = planned.records.get(p.key) ?? synth.clinicalRecord(7, site, p);
    const [got] = clinicalFromFhir(synth.toFhirBundle(site, p, rec), { site: site.code });
    assert.equal(got!.record.kind, rec.kind);
    assert.equal(got!.record.swabDate, rec.swabDate);
    if (rec.kind === 'data' && got!.record.kind === 'data') {
      for (const [k, v] of Object.entries(rec.observations)) if (v !== null) assert.equal((got!.record.observations as Record<string, unknown>)[k], v, k);
      for (const [k, v] of Object.entries(rec.comorbidities)) if (v === true) assert.equal((got!.record.comorbidities as Record<string, unknown>)[k], true, k);
      assert.equal(got!.record.ethnicity, rec.ethnicity ?? got!.record.ethnicity);
      assert.equal(got!.record.sex, rec.sex);
    }
    checked++;
  }
  assert.ok(checked >= 5);
  // The synthetic CSV (both header styles) imports too.
  const csvRecs = planned.patients.map((p) => synth.clinicalRecord(7, planned.sites[0]!, p));
  const data = synth.toCsv(csvRecs, planned.sites[0]!.csvTemplate, 'data');
  const parsed = clinicalFromCsv(data, { site: 'X' });
  assert.equal(parsed.length, csvRecs.filter((r) => r.kind === 'data').length);
});
