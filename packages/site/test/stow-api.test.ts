import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@imago/testkit';
import { startPair, waitFor } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';

test('STOW-RS and the site API: multipart/related instances are stored and forwarded; status, template, authorisation', { timeout: 120_000 }, async () => {
  const pair = await startPair();
  try {
    const base = pair.platform.url;
    const admin = (await pair.platform.identity.createToken('system', { name: 'pacs', role: 'site_admin', org: 'DEMO1' })).token;
    const dm = (await pair.platform.identity.createToken('system', { name: 'dm', role: 'site_data_manager', org: 'DEMO1' })).token;
    const dir = tempDir();
    const parts: Buffer[] = [];
    const boundary = 'imagoBoundary42';
    for (let i = 0; i < 3; i++) {
      const f = join(dir, `s${i}.dcm`);
      writeInstance(f, { patientId: 'MRN-STOW', studyUid: uid(7, 1), seriesUid: uid(7, 1, 1), sopUid: uid(7, 1, 1, i + 1), seed: i + 3 });
      parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), readFileSync(f), Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    const ct = `multipart/related; type="application/dicom"; boundary=${boundary}`;
    const denied = await fetch(`${base}/dicom-web/studies`, { method: 'POST', headers: { 'content-type': ct, authorization: `Bearer ${dm}` }, body: Buffer.concat(parts) });
    assert.equal(denied.status, 403, 'data manager may not ingest');
    const r = await fetch(`${base}/dicom-web/studies`, { method: 'POST', headers: { 'content-type': ct, authorization: `Bearer ${admin}` }, body: Buffer.concat(parts) });
    assert.equal(r.status, 200, await r.clone().text());
    const body = (await r.json()) as Record<string, { Value: unknown[] }>;
    assert.equal(body['00081199']!.Value.length, 3);
    const status = await waitFor('uploaded', async () => {
      const s = (await (await fetch(`${base}/api/site/v1/status`, { headers: { authorization: `Bearer ${dm}` } })).json()) as { instances: Record<string, number>; lastSuccessfulUpload: string | null };
      return s.instances.uploaded === 3 ? s : undefined;
    }, 30_000);
    assert.ok(status.lastSuccessfulUpload);
    const anon = await fetch(`${base}/api/site/v1/status`);
    assert.ok([401, 403].includes(anon.status), 'anonymous status read refused');
    const tpl = await fetch(`${base}/api/site/v1/clinical/template.csv`);
    assert.match(await tpl.text(), /^submitting_site,patient_id,/);
    const bad = await fetch(`${base}/api/site/v1/clinical`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${dm}` },
      body: JSON.stringify({ records: [{ record: { kind: 'status', templateVersion: 'nccid-status-v1', submittingSite: 'DEMO1', patientId: 'X1', swabStatus: 'maybe', swabDate: '2020-13-01' } }] }),
    });
    assert.equal(bad.status, 422);
    const issues = ((await bad.json()) as { issues: Array<{ path: string; message: string }> }).issues;
    assert.ok(issues.some((i) => i.path === 'swabStatus' && /one of/.test(i.message)), JSON.stringify(issues));
    assert.ok(issues.some((i) => i.path === 'swabDate'), JSON.stringify(issues));
  } finally {
    await pair.close();
  }
});
