import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from '@imago/db';
import { dbBackends, tempDir } from '@imago/testkit';
import { pairConfig, startPair, waitFor, type Pair } from './helpers.js';
import { uid, writeInstance, type MakeSpec } from './make-dicom.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function statusRecord(patientId: string, over: Record<string, unknown> = {}) {
  return { kind: 'status', templateVersion: 'nccid-status-v1', submittingSite: 'DEMO1', patientId, swabStatus: 'negative', swabDate: '2020-04-03', ...over };
}

async function tokens(pair: Pair): Promise<{ admin: string; dm: string }> {
  const admin = (await pair.platform.identity.createToken('system', { name: 'pacs', role: 'site_admin', org: 'DEMO1' })).token;
  const dm = (await pair.platform.identity.createToken('system', { name: 'dm', role: 'site_data_manager', org: 'DEMO1' })).token;
  return { admin, dm };
}

/** STOW-RS the given instances, one request each; returns the site row ids in order. */
async function stow(pair: Pair, token: string, specs: MakeSpec[]): Promise<string[]> {
  const dir = tempDir();
  const boundary = 'imagoReview7';
  const db = pair.platform.db.db;
  const ids: string[] = [];
  for (const [i, s] of specs.entries()) {
    const f = join(dir, `i${i}.dcm`);
    writeInstance(f, s);
    const before = new Set((await db.selectFrom('site_instances').select('id').execute()).map((r) => r.id));
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), readFileSync(f), Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const r = await fetch(`${pair.platform.url}/dicom-web/studies`, {
      method: 'POST', headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, authorization: `Bearer ${token}` }, body,
    });
    assert.equal(r.status, 200, await r.clone().text());
    const added = (await db.selectFrom('site_instances').select('id').execute()).map((x) => x.id).filter((id) => !before.has(id));
    assert.equal(added.length, 1, 'one row per STOW instance');
    ids.push(added[0]!);
  }
  return ids;
}

const api = (pair: Pair, token: string) => async (method: string, path: string, body?: unknown, type = 'application/json') => {
  const r = await fetch(`${pair.platform.url}/api/site/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
};

async function siteRow(pair: Pair, id: string) {
  return pair.platform.db.db.selectFrom('site_instances').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

test('quarantine over HTTP: release → de-identified at the hub; reject → deleted and audited; conflicting duplicates cannot be released. Clinical draft → submit. keepOriginalsDays 0 deletes the original', { timeout: 120_000 }, async () => {
  const pair = await startPair();
  try {
    const { admin, dm } = await tokens(pair);
    const asDm = api(pair, dm);
    const db = pair.platform.db.db;
    // --- keepOriginalsDays 0: a plain instance reaches the outbox/hub and its original is gone.
    const [plain] = await stow(pair, admin, [{ patientId: 'MRN-PLAIN', studyUid: uid(21, 1), seriesUid: uid(21, 1, 1), sopUid: uid(21, 1, 1, 1) }]);
    const incoming = join(pair.dir, 'site', (await siteRow(pair, plain!)).incoming_path!);
    assert.ok(existsSync(incoming), 'original on disk when received');
    await waitFor('plain uploaded', async () => (await siteRow(pair, plain!)).state === 'uploaded', 30_000);
    const p = await siteRow(pair, plain!);
    assert.equal(p.incoming_path, null, 'keepOriginalsDays 0: no original kept');
    assert.equal(existsSync(incoming), false, 'keepOriginalsDays 0: original deleted from disk');

    // --- quarantine: two instances with burned-in annotation.
    const ids = await stow(pair, admin, [
      { patientId: 'MRN-BURN', studyUid: uid(22, 1), seriesUid: uid(22, 1, 1), sopUid: uid(22, 1, 1, 1), burnedIn: true, seed: 5 },
      { patientId: 'MRN-BURN', studyUid: uid(22, 1), seriesUid: uid(22, 1, 1), sopUid: uid(22, 1, 1, 2), burnedIn: true, seed: 6 },
    ]);
    await waitFor('both quarantined', async () => (await Promise.all(ids.map((id) => siteRow(pair, id)))).every((r) => r.state === 'quarantine'), 30_000);
    const list = await asDm('GET', '/quarantine');
    assert.equal(list.status, 200);
    const items = list.body.items as Array<{ id: string; reason: string }>;
    for (const id of ids) assert.match(items.find((i) => i.id === id)?.reason ?? '', /burn/i, 'listed with its reason');
    const [keep, drop] = ids as [string, string];
    const dropPath = join(pair.dir, 'site', (await siteRow(pair, drop)).incoming_path!);
    assert.ok(existsSync(dropPath));

    const anon = await fetch(`${pair.platform.url}/api/site/v1/quarantine/${keep}/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.ok([401, 403].includes(anon.status), `anonymous release refused (${anon.status})`);
    assert.equal((await siteRow(pair, keep)).state, 'quarantine');
    const rel = await asDm('POST', `/quarantine/${keep}/release`, { note: 'checked: no burned-in text' });
    assert.equal(rel.status, 200, JSON.stringify(rel.body));
    const again = await asDm('POST', `/quarantine/${keep}/release`, {});
    assert.equal(again.status, 409, 'a released instance is no longer in quarantine');
    const released = await waitFor('released instance uploaded', async () => {
      const r = await siteRow(pair, keep);
      return r.state === 'uploaded' ? r : undefined;
    }, 30_000);
    const hub = await db.selectFrom('hub_instances').selectAll().where('sha256', '=', released.sha256!).executeTakeFirst();
    assert.ok(hub, 'the hub holds the released instance');
    assert.equal(hub.pseudonym, released.pseudonym);
    assert.doesNotMatch(hub.metadata, /MRN-BURN|Doe\^Jane|St Elsewhere/, 'de-identified at the hub');
    assert.notEqual(hub.sop_uid, uid(22, 1, 1, 1), 'UIDs remapped');

    const rej = await asDm('POST', `/quarantine/${drop}/reject`, { note: 'burned-in name' });
    assert.equal(rej.status, 200);
    const d = await siteRow(pair, drop);
    assert.equal(d.state, 'rejected');
    assert.equal(existsSync(dropPath), false, 'rejected original deleted');
    assert.equal(await db.selectFrom('hub_instances').select('sha256').where('sop_uid', '=', d.sop_uid ?? '-').executeTakeFirst(), undefined);
    const audits = await db.selectFrom('audit_events').select(['resource_id', 'detail', 'outcome', 'actor_name']).where('action', '=', 'site.quarantine.review').execute();
    const byId = new Map(audits.map((a) => [a.resource_id, a]));
    assert.match(byId.get(drop)?.detail ?? '', /reject/, 'reject audited');
    assert.match(byId.get(keep)?.detail ?? '', /release/, 'release audited');

    // --- conflicting duplicate: other content under the plain instance's SOP Instance UID.
    const [conf] = await stow(pair, admin, [{ patientId: 'MRN-PLAIN', studyUid: uid(21, 1), seriesUid: uid(21, 1, 1), sopUid: uid(21, 1, 1, 1), seed: 99 }]);
    const c = await waitFor('conflict quarantined', async () => {
      const r = await siteRow(pair, conf!);
      return r.state === 'quarantine' ? r : undefined;
    }, 30_000);
    assert.match(c.reason ?? '', /^conflicting duplicate SOP Instance UID/);
    const relC = await asDm('POST', `/quarantine/${conf}/release`, {});
    assert.equal(relC.status, 409, 'a conflicting duplicate cannot be released');
    assert.equal((await asDm('POST', `/quarantine/${conf}/reject`, {})).status, 200);

    // --- clinical: draft (incomplete) → submit refused with field errors → completed draft → submit → hub.
    const draft = await asDm('POST', '/clinical/drafts', { record: { kind: 'status', patientId: 'MRN-DRAFT' } });
    assert.equal(draft.status, 201, JSON.stringify(draft.body));
    const draftId = draft.body.id as string;
    const early = await asDm('POST', `/clinical/${draftId}/submit`);
    assert.equal(early.status, 422);
    assert.ok((early.body.issues as Array<{ path: string }>).some((i) => i.path === 'swabStatus'), JSON.stringify(early.body));
    assert.equal((await asDm('GET', `/clinical/${draftId}`)).body.state, 'draft');
    const full = await asDm('POST', '/clinical/drafts', { record: statusRecord('MRN-DRAFT') });
    assert.equal(full.body.id, draftId, 'the same draft is completed');
    const sub = await asDm('POST', `/clinical/${draftId}/submit`);
    assert.equal(sub.status, 200, JSON.stringify(sub.body));
    const pseudonym = sub.body.pseudonym as string;
    assert.notEqual(pseudonym, 'MRN-DRAFT');
    await waitFor('clinical record at the hub', async () => (await asDm('GET', `/clinical/${draftId}`)).body.state === 'uploaded', 30_000);
    const hubClin = (await sql<{ pseudonym: string; record: string }>`SELECT pseudonym, record FROM hub_clinical_records`.execute(db)).rows;
    const rec = hubClin.find((h) => h.pseudonym === pseudonym);
    assert.ok(rec, 'hub holds the submitted record under the pseudonym');
    assert.doesNotMatch(rec.record, /MRN-DRAFT/);
  } finally {
    await pair.close();
  }
});

for (const backend of dbBackends()) {
  test(`opt-out CSV import over HTTP, then DIMSE-free intake by STOW: listed patients dropped before de-identification, others forwarded (${backend.name})`, { timeout: 120_000 }, async () => {
    const dir = tempDir('imago-optcsv-');
    const config = await pairConfig({ dir, db: await backend.url() });
    const pair = await startPair(config);
    try {
      const { admin, dm } = await tokens(pair);
      const asAdmin = api(pair, admin);
      const csv = 'nhs_number,patient_id,issuer\n943 476 5919,,\n,MRN-OPT-2,PAS\n';
      const denied = await api(pair, dm)('POST', '/optouts/import', csv, 'text/csv');
      assert.equal(denied.status, 403, 'a data manager may not change the opt-out list');
      const imp = await asAdmin('POST', '/optouts/import', csv, 'text/csv');
      assert.equal(imp.status, 200, JSON.stringify(imp.body));
      assert.equal(imp.body.added, 2);
      const again = await asAdmin('POST', '/optouts/import', csv, 'text/csv');
      assert.equal(again.body.already, 2, 'importing the same list twice adds nothing');
      const ids = await stow(pair, admin, [
        { patientId: '9434765919', studyUid: uid(31, 1), seriesUid: uid(31, 1, 1), sopUid: uid(31, 1, 1, 1) },
        { patientId: 'MRN-OPT-2', issuer: 'PAS', studyUid: uid(31, 2), seriesUid: uid(31, 2, 1), sopUid: uid(31, 2, 1, 1) },
        { patientId: 'MRN-OPT-2', issuer: 'OTHER', studyUid: uid(31, 3), seriesUid: uid(31, 3, 1), sopUid: uid(31, 3, 1, 1) },
        { patientId: 'MRN-KEEP', studyUid: uid(31, 4), seriesUid: uid(31, 4, 1), sopUid: uid(31, 4, 1, 1) },
      ]);
      const rows = await waitFor('pipeline settled', async () => {
        const rs = await Promise.all(ids.map((id) => siteRow(pair, id)));
        return rs.every((r) => ['uploaded', 'dropped-opt-out'].includes(r.state)) ? rs : undefined;
      }, 60_000);
      assert.deepEqual(rows.map((r) => r.state), ['dropped-opt-out', 'dropped-opt-out', 'uploaded', 'uploaded'], 'NHS number matches any issuer; patient_id matches only its issuer');
      for (const r of rows.slice(0, 2)) {
        assert.equal(r.pseudonym, null, 'dropped before de-identification');
        assert.equal(r.incoming_path, null);
      }
      const list = await asAdmin('GET', '/optouts');
      assert.equal(list.body.count, 2);
      assert.equal(list.body.droppedInstances, 2);
      const hubN = Number((await sql<{ n: number }>`SELECT count(*) AS n FROM hub_instances`.execute(pair.platform.db.db)).rows[0]!.n);
      assert.equal(hubN, 2);
    } finally {
      await pair.close();
    }
  });
}

test('imago site import DIR (CLI, own process) queues a folder; the running node forwards it; keepOriginalsDays 3 keeps originals until the sweep after the period', { timeout: 120_000 }, async () => {
  const dir = tempDir('imago-cliimp-');
  const config = await pairConfig({ dir, site: { keepOriginalsDays: 3 } });
  const pair = await startPair(config);
  try {
    const src = join(dir, 'folder');
    const sub = join(src, 'nested');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub, { recursive: true });
    for (let i = 0; i < 4; i++) writeInstance(join(i % 2 ? sub : src, `x${i}.dcm`), { patientId: 'MRN-CLI', studyUid: uid(41, 1), seriesUid: uid(41, 1, 1), sopUid: uid(41, 1, 1, i + 1), seed: i + 1 });
    writeFileSync(join(src, 'README.txt'), 'not dicom');
    const cfgFile = join(dir, 'imago.config.json');
    writeFileSync(cfgFile, JSON.stringify({
      dataDir: dir, db: { url: config.db.url }, storage: { url: config.storage.url }, log: { level: 'error' },
      site: { code: config.site.code, secret: config.site.secret, dimse: false, keepOriginalsDays: 3 },
    }));
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), 'site', 'import', src], {
        cwd: ROOT, env: { ...process.env, IMAGO_CONFIG: cfgFile, IMAGO_DATA_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /imported 4, skipped 1/);
    const db = pair.platform.db.db;
    const rows = await waitFor('imported instances at the hub', async () => {
      const rs = await db.selectFrom('site_instances').selectAll().where('source', '=', 'import').execute();
      return rs.length === 4 && rs.every((r) => r.state === 'uploaded') ? rs : undefined;
    }, 60_000);
    const hubShas = new Set((await db.selectFrom('hub_instances').select('sha256').execute()).map((h) => h.sha256));
    for (const r of rows) assert.ok(hubShas.has(r.sha256!), 'hub holds each imported instance');
    // keepOriginalsDays 3: originals stay, with their deletion date.
    for (const r of rows) {
      assert.ok(r.incoming_path && existsSync(join(dir, 'site', r.incoming_path)), 'original kept');
      assert.ok(r.delete_original_after && Date.parse(r.delete_original_after) > Date.now() + 2.9 * 86400_000, 'kept for 3 days');
    }
    const { SiteNode } = await import('../src/node.js');
    const n = await SiteNode.open({ config: { ...pair.config, site: { ...pair.config.site, dimse: false } }, logger: pair.platform.logger, db: pair.platform.db, audit: pair.platform.audit });
    try {
      assert.equal(await n.sweepOriginals(), 0, 'nothing swept inside the keep period');
      const old = rows.slice(0, 2).map((r) => r.id);
      await db.updateTable('site_instances').set({ delete_original_after: new Date(Date.now() - 1000).toISOString() }).where('id', 'in', old).execute();
      assert.equal(await n.sweepOriginals(), 2, 'the two past their period are swept');
    } finally {
      await n.stop();
    }
    for (const r of rows) {
      const now = await siteRow(pair, r.id);
      const onDisk = existsSync(join(dir, 'site', r.incoming_path!));
      if (rows.indexOf(r) < 2) {
        assert.equal(now.incoming_path, null);
        assert.equal(onDisk, false, 'swept original deleted');
      } else assert.ok(now.incoming_path && onDisk, 'younger original still kept');
    }
  } finally {
    await pair.close();
  }
});
