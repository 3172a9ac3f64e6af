import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { encodeElement } from '@imago/dicom';
import { tempDir } from '@imago/testkit';
import { openCore } from '@imago/cli';
import { createHttpServer, registerAuthRoutes } from '@imago/http';
import { startSite, registerCaseRoutes } from '@imago/site';
import { clinicalCompleteness, hubLinkHealth, HUB_LINK_CACHE_MS } from '../src/cases.js';
import { pairConfig, waitFor, TEST_FILES } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';

/**
 * The platform as startPlatform builds it (auth, hub, site), plus the case
 * routes: registered here until startSite registers them itself (then the
 * `hasRoute` check skips it).
 */
async function start() {
  const config = await pairConfig();
  const core = await openCore(config);
  const { logger, db, audit, identity } = core;
  const app = await createHttpServer({ config, logger, db, audit, identity });
  await registerAuthRoutes(app, { config, logger, db, audit, identity });
  const { createHub, registerHubRoutes } = await import('@imago/hub');
  await registerHubRoutes(app, createHub({ config, db, audit, identity, logger }));
  const site = await startSite({ config, logger, db, audit, app });
  if (!app.hasRoute({ method: 'GET', url: '/api/site/v1/cases' })) await registerCaseRoutes(app, site.node);
  await app.listen({ host: '127.0.0.1', port: config.http.port });
  return {
    config, core, node: site.node, base: `http://127.0.0.1:${config.http.port}`,
    async close() {
      await site.close();
      await app.close();
      await core.close();
    },
  };
}

/** A DX instance with BurnedInAnnotation = YES (so it is quarantined), uncompressed grayscale. */
function burnedIn(path: string, patientId: string): void {
  writeInstance(path, { patientId, modality: 'DX', studyUid: uid(9, 3), seriesUid: uid(9, 3, 1), sopUid: uid(9, 3, 1, 1), rows: 600, columns: 400, seed: 11 });
  const buf = readFileSync(path);
  const at = buf.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]));
  assert.ok(at > 0);
  writeFileSync(path, Buffer.concat([buf.subarray(0, at), encodeElement(0x00280301, 'CS', 'YES', { explicit: true, little: true }), buf.subarray(at)]));
}

test('site read views: quarantine preview and original, cases with studies and clinical summary, hub link health; authorised and audited', { timeout: 180_000 }, async () => {
  const p = await start();
  try {
    const tok = async (role: string) => (await p.core.identity.createToken('system', { name: role, role, org: role === 'platform_operator' ? null : 'DEMO1' })).token;
    const admin = await tok('site_admin');
    const dm = await tok('site_data_manager');
    const op = await tok('platform_operator');
    const get = (path: string, token: string) => fetch(`${p.base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const dir = tempDir();

    // Patient A: a CT study (3 slices) and a DX study; patient B: one DX; patient C: a burned-in DX (quarantined); an SC JPEG (quarantined, compressed).
    const files: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = join(dir, `a-ct-${i}.dcm`);
      writeInstance(f, { patientId: 'MRN-CASE-A', studyUid: uid(9, 1), seriesUid: uid(9, 1, 1), sopUid: uid(9, 1, 1, i + 1), seed: i + 1 });
      files.push(f);
    }
    for (let i = 0; i < 2; i++) {
      const f = join(dir, `a-dx-${i}.dcm`);
      writeInstance(f, { patientId: 'MRN-CASE-A', modality: 'DX', studyUid: uid(9, 2), seriesUid: uid(9, 2, 1), sopUid: uid(9, 2, 1, i + 1), seed: i + 7 });
      files.push(f);
    }
    const fb = join(dir, 'b-dx.dcm');
    writeInstance(fb, { patientId: 'MRN-CASE-B', modality: 'DX', studyUid: uid(9, 4), seriesUid: uid(9, 4, 1), sopUid: uid(9, 4, 1, 1), seed: 5 });
    files.push(fb);
    const fc = join(dir, 'c-burned.dcm');
    burnedIn(fc, 'MRN-CASE-C');
    files.push(fc, join(TEST_FILES, 'SC_rgb_jpeg_dcmtk.dcm'));
    for (const f of files) await p.node.importFile(f);

    const clinical = {
      records: [
        { record: { kind: 'data', templateVersion: 'nccid-data-v3', submittingSite: 'DEMO1', patientId: 'MRN-CASE-A', swabStatus: 'positive', swabDate: '2020-04-01', dateOfPositiveSwab: '2020-04-01', dateOfLastNegativeSwab: null, dateOfResult: null, dateOfAdmission: '2020-04-02', age: 67, sex: 'F', ethnicity: null,
          comorbidities: { hypertension: true, diabetesType2: null, ckd: null, cardiovascularDisease: null, lungDisease: null, smoking: 'never' },
          observations: { temperature: 38.2, respiratoryRate: null, heartRate: 90, systolicBp: null, diastolicBp: null, o2Saturation: null, fio2: null, news2: null, lymphocytes: null, crp: null, dDimer: null, ferritin: null },
          outcomes: { ituAdmission: false, ituAdmissionDate: null, intubation: null, intubationDate: null, death: null, dateOfDeath: null }, cxrSeverity: null } },
        { record: { kind: 'status', templateVersion: 'nccid-status-v1', submittingSite: 'DEMO1', patientId: 'MRN-CASE-B', swabStatus: 'negative', swabDate: '2020-04-03' } },
      ],
    };
    const cr = await fetch(`${p.base}/api/site/v1/clinical`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${dm}` }, body: JSON.stringify(clinical) });
    assert.equal(cr.status, 201, await cr.clone().text());

    await waitFor('pipeline done', async () => {
      const s = (await (await get('/api/site/v1/status', dm)).json()) as { instances: Record<string, number> };
      return s.instances.uploaded === 6 && s.instances.quarantine === 2 ? s : undefined;
    }, 60_000);

    // ---- cases
    const pa = p.node.engine.pseudonymFor('MRN-CASE-A', undefined);
    const pb = p.node.engine.pseudonymFor('MRN-CASE-B', undefined);
    const pc = p.node.engine.pseudonymFor('MRN-CASE-C', undefined);
    type Cases = { items: Array<{ pseudonym: string; studies: number; studyList: Array<{ modality: string; instances: number; estimated: boolean }>; instances: number; instancesByState: Record<string, number>; modalities: string[]; clinical: { kind: string; state: string; completeness: number } | null }>; total: number };
    const all = (await (await get('/api/site/v1/cases', dm)).json()) as Cases;
    assert.ok(all.total >= 3, JSON.stringify(all));
    const a = all.items.find((c) => c.pseudonym === pa);
    assert.ok(a, 'patient A listed by pseudonym');
    assert.equal(a.studies, 2);
    assert.deepEqual(a.studyList.map((s) => [s.modality, s.instances]).sort(), [['CT', 3], ['DX', 2]]);
    assert.equal(a.instances, 5);
    assert.deepEqual(a.instancesByState, { uploaded: 5 });
    assert.deepEqual(a.modalities, ['CT', 'DX']);
    assert.equal(a.clinical?.kind, 'data');
    assert.ok(a.clinical.completeness > 0.2 && a.clinical.completeness < 0.6, String(a.clinical.completeness));
    assert.equal(a.clinical.completeness, clinicalCompleteness(clinical.records[0]!.record));
    const b = all.items.find((c) => c.pseudonym === pb);
    assert.equal(b?.studies, 1);
    assert.deepEqual(b.clinical && [b.clinical.kind, b.clinical.completeness], ['status', 1]);
    const c = all.items.find((x) => x.pseudonym === pc);
    assert.deepEqual(c?.instancesByState, { quarantine: 1 });
    assert.equal(c.clinical, null);
    assert.ok(!JSON.stringify(all).includes('MRN-CASE'), 'no local identifier in the case list');

    const found = (await (await get(`/api/site/v1/cases?q=${encodeURIComponent(pa.slice(0, 10).toLowerCase())}`, dm)).json()) as Cases;
    assert.ok(found.items.every((x) => x.pseudonym.startsWith(pa.slice(0, 10))) && found.items.some((x) => x.pseudonym === pa), 'prefix search, case-insensitive');
    const none = (await (await get('/api/site/v1/cases?q=IMG-%25', dm)).json()) as Cases;
    assert.equal(none.total, all.total, 'a LIKE wildcard in q is not a wildcard (dropped: "IMG-" matches every pseudonym)');
    const page = (await (await get('/api/site/v1/cases?limit=1&offset=1', dm)).json()) as Cases & { limit: number; offset: number };
    assert.equal(page.items.length, 1);
    assert.equal(page.items[0]!.pseudonym, all.items[1]!.pseudonym, 'pages are ordered by pseudonym');
    assert.equal(page.total, all.total);
    assert.equal((await get('/api/site/v1/cases', op)).status, 403, 'operator may not read site cases');
    assert.equal((await get('/api/site/v1/cases?limit=0', dm)).status, 400);

    // ---- quarantine preview and original
    const q = (await (await get('/api/site/v1/quarantine', dm)).json()) as { items: Array<{ id: string; modality: string | null; reason: string | null }> };
    assert.equal(q.items.length, 2, JSON.stringify(q));
    const row = async (id: string) => p.core.db.db.selectFrom('site_instances').select(['pseudonym', 'incoming_path']).where('id', '=', id).executeTakeFirstOrThrow();
    let gray: string | undefined;
    let jpeg: string | undefined;
    for (const it of q.items) {
      if ((await row(it.id)).pseudonym === pc) gray = it.id;
      else jpeg = it.id;
    }
    assert.ok(gray && jpeg);
    const th = await get(`/api/site/v1/quarantine/${gray}/thumbnail`, dm);
    assert.equal(th.status, 200, await th.clone().text());
    assert.equal(th.headers.get('content-type'), 'image/png');
    assert.match(th.headers.get('cache-control') ?? '', /no-store/);
    const png = PNG.sync.read(Buffer.from(await th.arrayBuffer()));
    assert.deepEqual([png.width, png.height], [213, 320], 'downsampled to at most 320 px, aspect kept (400 × 600)');
    const inst = await get(`/api/site/v1/quarantine/${gray}/instance`, admin);
    assert.equal(inst.status, 200);
    assert.equal(inst.headers.get('content-type'), 'application/dicom');
    const bytes = Buffer.from(await inst.arrayBuffer());
    assert.ok(bytes.equals(readFileSync(join(p.node.root, (await row(gray)).incoming_path!))), 'the original, unchanged');
    assert.ok(bytes.includes(Buffer.from('MRN-CASE-C')), 'still identifiable: it never left the site');
    const j = await get(`/api/site/v1/quarantine/${jpeg}/thumbnail`, dm);
    assert.equal(j.status, 415);
    assert.equal(((await j.json()) as { error: string }).error, 'unsupportedMediaType');
    assert.equal((await get(`/api/site/v1/quarantine/${jpeg}/instance`, dm)).status, 200, 'the viewer still gets the bytes (and says it cannot draw them)');
    assert.equal((await get(`/api/site/v1/quarantine/${gray}/thumbnail`, op)).status, 403);
    assert.equal((await get(`/api/site/v1/quarantine/${gray}/instance`, op)).status, 403);
    assert.equal((await get('/api/site/v1/quarantine/nope/thumbnail', dm)).status, 404);
    const done = (await get('/api/site/v1/cases', dm)).status;
    assert.equal(done, 200);
    const rej = await fetch(`${p.base}/api/site/v1/quarantine/${jpeg}/reject`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${dm}` }, body: '{}' });
    assert.equal(rej.status, 200);
    assert.equal((await get(`/api/site/v1/quarantine/${jpeg}/instance`, dm)).status, 409, 'no longer in quarantine');

    // ---- hub link
    type Link = { configured: boolean; reachable: boolean; latencyMs: number | null; checkedAt: string | null; error?: string };
    const l1 = (await (await get('/api/site/v1/hub-link', dm)).json()) as Link;
    assert.equal(l1.configured, true);
    assert.equal(l1.reachable, true, JSON.stringify(l1));
    assert.ok(typeof l1.latencyMs === 'number' && l1.latencyMs >= 0);
    const l2 = (await (await get('/api/site/v1/hub-link', admin)).json()) as Link;
    assert.equal(l2.checkedAt, l1.checkedAt, `cached for ${HUB_LINK_CACHE_MS} ms`);
    assert.equal((await get('/api/site/v1/hub-link', op)).status, 403);
    const url = p.config.site.hubUrl;
    p.config.site.hubUrl = 'http://127.0.0.1:9';
    try {
      const down = await hubLinkHealth(p.node, { principal: { kind: 'user', id: 'x', name: 'x', grants: [{ role: 'site_admin', orgId: await p.node.orgId() }] }, ip: null } as never, { fresh: true });
      assert.equal(down.reachable, false);
      assert.match(down.error ?? '', /ECONNREFUSED|refused/i);
    } finally {
      p.config.site.hubUrl = url;
    }
    await hubLinkHealth(p.node, { principal: { kind: 'user', id: 'x', name: 'x', grants: [{ role: 'site_admin', orgId: await p.node.orgId() }] }, ip: null } as never, { fresh: true });

    // ---- audit
    const ev = await p.core.db.db.selectFrom('audit_events').select(['action', 'code', 'outcome', 'resource_id', 'detail']).where('action', 'in', ['site.quarantine.view', 'site.cases.read']).execute();
    const views = ev.filter((e) => e.action === 'site.quarantine.view');
    assert.ok(views.some((e) => e.resource_id === gray && e.code === '110103' && e.outcome === 'success' && /thumbnail/.test(e.detail ?? '')), JSON.stringify(views));
    assert.ok(views.some((e) => e.resource_id === gray && /instance/.test(e.detail ?? '')));
    assert.ok(views.some((e) => e.resource_id === jpeg && e.outcome === 'failure'), 'a refused preview is audited too');
    const reads = ev.filter((e) => e.action === 'site.cases.read');
    assert.ok(reads.length >= 4 && reads.every((e) => e.code === '110112'), JSON.stringify(reads));
    const denied = await p.core.db.db.selectFrom('audit_events').select(['action', 'outcome']).where('outcome', '=', 'denied').execute();
    assert.ok(denied.length >= 3, 'denials are audited by the data layer');
  } finally {
    await p.close();
  }
});
