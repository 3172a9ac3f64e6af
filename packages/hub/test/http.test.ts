import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { loadConfig } from '@imago/core';
import { readDemoLogins, startPlatform, type Platform } from '@imago/cli';
import { tempDir } from '@imago/testkit';
import { buildInstance, sha256Of, testPseudonym, testUid } from '../src/testing.js';

let p: Platform;
let api: string;
const cookies = new Map<string, string>();
let tokA = '';
let tokB = '';

before(async () => {
  const dir = tempDir();
  const config = loadConfig({ env: { IMAGO_DATA_DIR: dir, IMAGO_DB__URL: `sqlite:${dir}/imago.db`, IMAGO_STORAGE__URL: `file:${dir}/blobs`, IMAGO_HTTP__PORT: '0', IMAGO_LOG__LEVEL: 'silent', IMAGO_HUB__MAX_INSTANCE_BYTES: '200000' } });
  p = await startPlatform(config, { demo: true });
  api = `${p.url}/api/hub/v1`;
  for (const l of readDemoLogins(config)) {
    const r = await fetch(`${p.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: l.username, password: l.password }) });
    assert.equal(r.status, 200);
    cookies.set(l.username, r.headers.get('set-cookie')!.split(';')[0]!);
  }
  const reg = async (body: unknown) => {
    const r = await fetch(`${api}/sites`, { method: 'POST', headers: { cookie: cookies.get('operator')!, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 201, await r.clone().text());
    return ((await r.json()) as { token: string }).token;
  };
  tokA = await reg({ code: 'SITEA', name: 'Site A', region: 'London', splitMode: 'percent', trainingPercent: 80 });
  tokB = await reg({ code: 'SITEB', name: 'Site B', region: 'North', sharesData: true });
});
after(async () => p.close());

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const op = () => ({ cookie: cookies.get('operator')! });

async function put(token: string, site: string, b: Buffer, sha = sha256Of(b)) {
  return fetch(`${api}/sites/${site}/instances/${sha}`, { method: 'PUT', headers: { ...bearer(token), 'content-type': 'application/dicom' }, body: new Uint8Array(b) });
}

const P1 = testPseudonym('http-1');
const P2 = testPseudonym('http-2');
const ct = Array.from({ length: 4 }, (_, i) => buildInstance({ pseudonym: P1, studyUid: testUid('ct-study'), seriesUid: testUid(`ct-series-${i % 2}`), sopUid: testUid(`ct-${i}`), modality: 'CT', studyDate: '20200310', instanceNumber: i + 1, seriesNumber: (i % 2) + 1, seed: i, rows: 64, columns: 64 }));
const dx = buildInstance({ pseudonym: P2, studyUid: testUid('dx-study'), seriesUid: testUid('dx-series'), sopUid: testUid('dx-1'), modality: 'DX', studyDate: '20200520', windowCenter: 1000, windowWidth: 2000, rows: 256, columns: 200 });

test('site API: ping, PUT (streamed), idempotent re-send, re-check, check, size limit, refusals with reasons', async () => {
  assert.deepEqual(await (await fetch(`${api}/ping`, { headers: bearer(tokA) })).json(), { site: 'SITEA', ok: true });
  // streamed body
  const first = ct[0]!;
  const r1 = await fetch(`${api}/sites/SITEA/instances/${sha256Of(first)}`, {
    method: 'PUT', headers: { ...bearer(tokA), 'content-type': 'application/dicom' },
    body: Readable.toWeb(Readable.from([first.subarray(0, 500), first.subarray(500)])) as ReadableStream, duplex: 'half',
  } as RequestInit);
  assert.equal(r1.status, 201);
  const j1 = (await r1.json()) as { sha256: string; instanceKey: string; status: string };
  assert.equal(j1.status, 'stored');
  for (const b of [...ct.slice(1), dx]) assert.equal((await put(tokA, 'SITEA', b)).status, 201);
  const again = await put(tokA, 'SITEA', first);
  assert.equal(again.status, 200);
  assert.equal(((await again.json()) as { status: string }).status, 'already-stored');
  const got = await fetch(`${api}/sites/SITEA/instances/${sha256Of(first)}`, { headers: bearer(tokA) });
  assert.deepEqual(await got.json(), { sha256: sha256Of(first), instanceKey: j1.instanceKey });
  assert.equal((await fetch(`${api}/sites/SITEA/instances/${'0'.repeat(64)}`, { headers: bearer(tokA) })).status, 404);
  const chk = await fetch(`${api}/sites/SITEA/check`, { method: 'POST', headers: { ...bearer(tokA), 'content-type': 'application/json' }, body: JSON.stringify({ sha256: [sha256Of(first), '1'.repeat(64)] }) });
  assert.deepEqual(await chk.json(), { present: [sha256Of(first)] });
  const mismatch = await put(tokA, 'SITEA', buildInstance({ pseudonym: P1, studyUid: testUid('m'), seriesUid: testUid('m2'), sopUid: testUid('m3') }), 'c'.repeat(64));
  assert.equal(mismatch.status, 422);
  const notDeid = buildInstance({ pseudonym: P1, studyUid: testUid('n'), seriesUid: testUid('n2'), sopUid: testUid('n3'), birthDate: '19500101' });
  const nd = await put(tokA, 'SITEA', notDeid);
  assert.equal(nd.status, 422);
  const ndj = (await nd.json()) as { error: string; message: string; detail: { reason: string } };
  assert.equal(ndj.error, 'unprocessable');
  assert.equal(ndj.detail.reason, 'not-deidentified');
  assert.match(ndj.message, /PatientBirthDate/);
  const big = buildInstance({ pseudonym: P1, studyUid: testUid('b'), seriesUid: testUid('b2'), sopUid: testUid('b3'), rows: 400, columns: 400 });
  assert.equal((await put(tokA, 'SITEA', big)).status, 413);
  // clinical and purge batches
  const cl = await fetch(`${api}/sites/SITEA/clinical`, { method: 'POST', headers: { ...bearer(tokA), 'content-type': 'application/json' }, body: JSON.stringify({ records: [{ id: 'c1', sha256: 'd'.repeat(64), pseudonym: P1, kind: 'status', templateVersion: 'v1', receivedAt: new Date().toISOString(), record: { swabStatus: 'negative' } }] }) });
  assert.equal(cl.status, 200);
  assert.equal(((await cl.json()) as { results: Array<{ status: string }> }).results[0]!.status, 'rejected');
});

test('a token of site A writing as site B is refused and audited as a security alert', async () => {
  const b = buildInstance({ pseudonym: P1, studyUid: testUid('x'), seriesUid: testUid('x2'), sopUid: testUid('x3') });
  const r = await put(tokA, 'SITEB', b);
  assert.equal(r.status, 403);
  const alerts = await p.audit.list({ outcome: 'denied', limit: 1000 });
  assert.ok(alerts.some((a) => a.action === 'hub.submit' && a.resource_id === 'SITEB' && a.code === '110113'));
});

test('QIDO-RS: by modality and date range, wildcards, includefield, limit/offset; WADO-RS bytes match; metadata; thumbnails; every call audited', async () => {
  const before = (await p.audit.list({ limit: 100000 })).filter((e) => e.action.startsWith('hub.dicomweb')).length;
  const q = async (path: string) => {
    const r = await fetch(`${api}/dicomweb${path}`, { headers: op() });
    assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
    assert.match(r.headers.get('content-type')!, /application\/dicom\+json/);
    return (await r.json()) as Array<Record<string, { vr: string; Value?: unknown[] }>>;
  };
  const ctStudy = await q('/studies?ModalitiesInStudy=CT&StudyDate=20200301-20200331');
  assert.equal(ctStudy.length, 1);
  assert.equal(ctStudy[0]!['0020000D']!.Value![0], testUid('ct-study'));
  assert.deepEqual(ctStudy[0]!['00080061']!.Value, ['CT']);
  assert.deepEqual(ctStudy[0]!['00201208']!.Value, [4]);
  assert.equal((await q('/studies?ModalitiesInStudy=CT&StudyDate=20200401-')).length, 0);
  assert.equal((await q('/studies?StudyDate=-20200601')).length, 2);
  assert.equal((await q(`/studies?PatientID=${P2.slice(0, 6)}*`)).length, 1);
  assert.equal((await q('/studies?00080060=MR')).length, 2, 'unsupported study-level key is ignored');
  assert.equal((await q('/studies?limit=1')).length, 1);
  assert.equal((await q('/studies?limit=1&offset=1')).length, 1);
  assert.equal((await q('/studies?offset=2')).length, 0);
  const inc = await q('/studies?ModalitiesInStudy=DX&includefield=00280010');
  assert.deepEqual(inc[0]!['00280010']!.Value, [256]);
  const series = await q(`/studies/${testUid('ct-study')}/series`);
  assert.equal(series.length, 2);
  assert.deepEqual(series.map((s) => s['00200011']!.Value![0]), [1, 2]);
  assert.equal((await q('/series?Modality=DX')).length, 1);
  const insts = await q(`/studies/${testUid('ct-study')}/series/${testUid('ct-series-0')}/instances`);
  assert.equal(insts.length, 2);
  assert.equal((await q(`/instances?SOPInstanceUID=${testUid('dx-1')}`)).length, 1);
  assert.equal((await fetch(`${api}/dicomweb/studies?limit=x`, { headers: op() })).status, 400);

  // WADO-RS: a series as multipart; each part is byte-identical to what the site uploaded
  const w = await fetch(`${api}/dicomweb/studies/${testUid('ct-study')}/series/${testUid('ct-series-0')}`, { headers: { ...op(), accept: 'multipart/related; type="application/dicom"' } });
  assert.equal(w.status, 200);
  const ctype = w.headers.get('content-type')!;
  assert.match(ctype, /^multipart\/related; type="application\/dicom"; boundary=/);
  const boundary = /boundary=(\S+)/.exec(ctype)![1]!;
  const body = Buffer.from(await w.arrayBuffer());
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const start = body.indexOf(`--${boundary}`, pos);
    if (start < 0 || body.subarray(start + boundary.length + 2, start + boundary.length + 4).toString() === '--') break;
    const hdrEnd = body.indexOf('\r\n\r\n', start);
    const len = Number(/Content-Length: (\d+)/.exec(body.subarray(start, hdrEnd).toString())![1]);
    parts.push(body.subarray(hdrEnd + 4, hdrEnd + 4 + len));
    pos = hdrEnd + 4 + len;
  }
  assert.equal(parts.length, 2);
  const expected = new Set([sha256Of(ct[0]!), sha256Of(ct[2]!)]);
  for (const part of parts) assert.ok(expected.has(sha256Of(part)));
  const one = await fetch(`${api}/dicomweb/studies/${testUid('dx-study')}/series/${testUid('dx-series')}/instances/${testUid('dx-1')}`, { headers: op() });
  assert.ok(Buffer.from(await one.arrayBuffer()).includes(dx));
  assert.equal((await fetch(`${api}/dicomweb/studies/${testUid('dx-study')}`, { headers: { ...op(), accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50' } })).status, 415);

  const meta = await q(`/studies/${testUid('ct-study')}/series/${testUid('ct-series-1')}/metadata`);
  assert.equal(meta.length, 2);
  assert.equal(meta[0]!['00100020']!.Value![0], P1);
  assert.equal(meta[0]!['00100020']!.vr, 'LO');
  assert.equal(meta[0]!['7FE00010'], undefined, 'no pixel data in metadata');

  const th = await fetch(`${api}/dicomweb/studies/${testUid('dx-study')}/series/${testUid('dx-series')}/instances/${testUid('dx-1')}/thumbnail`, { headers: { ...op(), accept: 'image/png' } });
  assert.equal(th.status, 200);
  assert.equal(th.headers.get('content-type'), 'image/png');
  const png = Buffer.from(await th.arrayBuffer());
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.equal(png.readUInt32BE(16), 100, 'width scaled to fit 128');
  assert.equal(png.readUInt32BE(20), 128);
  // compressed transfer syntax: refused as unsupported
  const jpeg = buildInstance({ pseudonym: P2, studyUid: testUid('jpeg-study'), seriesUid: testUid('jpeg-series'), sopUid: testUid('jpeg-1'), transferSyntax: '1.2.840.10008.1.2.4.50' });
  assert.equal((await put(tokA, 'SITEA', jpeg)).status, 201);
  const tj = await fetch(`${api}/dicomweb/studies/${testUid('jpeg-study')}/thumbnail`, { headers: op() });
  assert.equal(tj.status, 415);
  assert.match(((await tj.json()) as { message: string }).message, /transfer syntax/);

  const afterN = (await p.audit.list({ limit: 100000 })).filter((e) => e.action.startsWith('hub.dicomweb')).length;
  assert.ok(afterN - before >= 20, `every DICOMweb call is audited (${afterN - before})`);
  assert.equal((await p.audit.verify()).ok, true);
});

test('revoking a site\'s tokens alone: the token then gets 401 on ping, nothing new is issued, and it is audited', async () => {
  const reg = await fetch(`${api}/sites`, { method: 'POST', headers: { ...op(), 'content-type': 'application/json' }, body: JSON.stringify({ code: 'SITEREV', name: 'Revoked', region: 'East' }) });
  assert.equal(reg.status, 201);
  const { token, tokenId } = (await reg.json()) as { token: string; tokenId: string };
  const second = (await (await fetch(`${api}/sites/SITEREV/tokens`, { method: 'POST', headers: { ...op(), 'content-type': 'application/json' }, body: '{}' })).json()) as { token: string; tokenId: string };
  for (const t of [token, second.token]) assert.equal((await fetch(`${api}/ping`, { headers: bearer(t) })).status, 200);
  // a site token cannot revoke, not even its own site's
  assert.equal((await fetch(`${api}/sites/SITEREV/tokens`, { method: 'DELETE', headers: bearer(token) })).status, 403);
  const r = await fetch(`${api}/sites/SITEREV/tokens`, { method: 'DELETE', headers: op() });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { revoked: number; tokenIds: string[] };
  assert.equal(body.revoked, 2);
  assert.deepEqual([...body.tokenIds].sort(), [tokenId, second.tokenId].sort());
  assert.equal(Object.keys(body).includes('token'), false);
  for (const t of [token, second.token]) assert.equal((await fetch(`${api}/ping`, { headers: bearer(t) })).status, 401);
  // again: nothing left to revoke; unknown site: 404; other sites unaffected
  assert.equal(((await (await fetch(`${api}/sites/SITEREV/tokens`, { method: 'DELETE', headers: op() })).json()) as { revoked: number }).revoked, 0);
  assert.equal((await fetch(`${api}/sites/NOSUCH/tokens`, { method: 'DELETE', headers: op() })).status, 404);
  assert.equal((await fetch(`${api}/ping`, { headers: bearer(tokA) })).status, 200);
  // a newly issued token works again
  const fresh = (await (await fetch(`${api}/sites/SITEREV/tokens`, { method: 'POST', headers: { ...op(), 'content-type': 'application/json' }, body: '{}' })).json()) as { token: string };
  assert.equal((await fetch(`${api}/ping`, { headers: bearer(fresh.token) })).status, 200);
  const ev = (await (await fetch(`${p.url}/api/audit/events?action=hub.site.token.revoke`, { headers: op() })).json()) as { events: Array<{ action: string; resourceId: string | null; outcome: string }> };
  assert.ok(ev.events.some((e) => e.action === 'hub.site.token.revoke' && e.resourceId === 'SITEREV' && e.outcome === 'success'), JSON.stringify(ev).slice(0, 500));
});

test('security: every hub route × every role gets the expected status (routes from the OpenAPI document)', async () => {
  const doc = (await (await fetch(`${p.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(doc.paths).filter(([path]) => path.startsWith('/api/hub/')).flatMap(([path, ms]) => Object.keys(ms).filter((m) => m !== 'head').map((m) => ({ method: m.toUpperCase(), path })));
  assert.ok(routes.length >= 35, `found ${routes.length} hub routes`);
  const SITE_API = /^\/api\/hub\/v1\/sites\/\{site\}\/(instances\/\{sha256\}|check|clinical|purges)$/;
  // Revoking tokens is allowed for operators, so it aims at a throwaway site: SITEA's and SITEB's tokens must keep working for the routes after it.
  const reg = await fetch(`${api}/sites`, { method: 'POST', headers: { ...op(), 'content-type': 'application/json' }, body: JSON.stringify({ code: 'SITEMATRIX', name: 'Matrix', region: 'Nowhere' }) });
  assert.equal(reg.status, 201);
  const fill = (path: string, method: string) => path
    .replace('{site}', method === 'DELETE' && path.endsWith('/tokens') ? 'SITEMATRIX' : 'SITEA').replace('{sha256}', 'e'.repeat(64)).replace('{study}', testUid('ct-study')).replace('{series}', testUid('ct-series-0'))
    .replace('{instance}', testUid('ct-0')).replace('{release}', '1').replace('{pseudonym}', P1);
  const callers: Array<{ name: string; headers: Record<string, string>; kind: 'anon' | 'operator' | 'validator' | 'siteA' | 'siteB' | 'user' }> = [
    { name: 'anonymous', headers: {}, kind: 'anon' },
    { name: 'site token A', headers: bearer(tokA), kind: 'siteA' },
    { name: 'site token B', headers: bearer(tokB), kind: 'siteB' },
    ...[...cookies.entries()].map(([u, c]) => ({ name: u, headers: { cookie: c }, kind: (u === 'operator' ? 'operator' : u === 'validator' ? 'validator' : 'user') as 'operator' | 'validator' | 'user' })),
  ];
  const failures: string[] = [];
  let checked = 0;
  for (const r of routes) {
    const isSite = SITE_API.test(r.path);
    const isPing = r.path === '/api/hub/v1/ping';
    const isReleaseRead = r.method === 'GET' && r.path.startsWith('/api/hub/v1/releases');
    for (const c of callers) {
      const allowed = isPing ? c.kind === 'siteA' || c.kind === 'siteB'
        : isSite ? c.kind === 'siteA'
        : c.kind === 'operator' || (isReleaseRead && c.kind === 'validator');
      const headers: Record<string, string> = { ...c.headers };
      let body: BodyInit | undefined;
      if (r.method === 'PUT') { headers['content-type'] = 'application/dicom'; body = new Uint8Array(Buffer.from('not dicom')); }
      else if (r.method !== 'GET' && r.method !== 'DELETE') { headers['content-type'] = 'application/json'; body = '{}'; }
      const res = await fetch(`${p.url}${fill(r.path, r.method)}`, { method: r.method, headers, ...(body ? { body } : {}) });
      await res.arrayBuffer();
      checked++;
      const expected = c.kind === 'anon' ? [401] : allowed ? null : [403];
      const ok = expected ? expected.includes(res.status) : res.status !== 401 && res.status !== 403 && res.status < 500;
      if (!ok) failures.push(`${r.method} ${r.path} as ${c.name}: ${res.status} (expected ${expected ? expected.join('/') : 'allowed'})`);
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok(checked >= routes.length * 11);
});
