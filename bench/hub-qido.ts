/**
 * QIDO-RS / WADO-RS metadata: the Imago hub against Orthanc 1.10 with its
 * DICOMweb plugin, on the same synthetic de-identified corpus, in one run.
 *
 *   node --import tsx bench/hub-qido.ts [--instances 100000] [--queries 200] [--per-series 10] [--series 2] [--db sqlite|postgres]
 *
 * Loads the corpus into the hub (through the data layer: stream into the blob
 * store, index in a transaction, one audit event each) and into Orthanc (REST
 * POST /instances, 4 in flight), then times, over HTTP against both:
 *   1. study search by date range and modality (/studies?StudyDate=a-b&ModalitiesInStudy=CT)
 *   2. series of a study (/studies/{uid}/series)
 *   3. metadata of a series (/studies/{uid}/series/{uid}/metadata)
 * Same query sequence for both; sequential requests; p50 and p95 and the ratio.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '@imago/core';
import { readDemoLogins, startPlatform } from '@imago/cli';
import { createHub, type Hub } from '@imago/hub';
import { freePort, freshPostgresDb, peerEnv, tempDir } from '@imago/testkit';
import { buildInstance, sha256Of, testPseudonym, testUid } from '../packages/hub/src/testing.js';
import type { Actor } from '@imago/audit';

const argv = process.argv.slice(2);
const flag = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1]! : d);
const TOTAL = Number(flag('instances', '10000'));
const QUERIES = Number(flag('queries', '200'));
const PER_SERIES = Number(flag('per-series', '10'));
const SERIES = Number(flag('series', '2'));
const DB = flag('db', 'sqlite');
const PER_STUDY = PER_SERIES * SERIES;
const STUDIES = Math.ceil(TOTAL / PER_STUDY);

// Deterministic PRNG, so both systems see the same corpus and the same queries.
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const DAY0 = Date.UTC(2020, 0, 1);
const da = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');

interface StudyPlan { uid: string; date: string; modality: string; pseudonym: string; series: string[] }
const plan: StudyPlan[] = [];
for (let s = 0; s < STUDIES; s++) {
  plan.push({
    uid: testUid(`bench-study-${s}`), date: da(DAY0 + Math.floor(rnd() * 3 * 365) * 86400000), modality: rnd() < 0.4 ? 'CT' : rnd() < 0.5 ? 'CR' : 'DX',
    pseudonym: testPseudonym(`bench-patient-${Math.floor(s / 2)}`), series: Array.from({ length: SERIES }, (_, k) => testUid(`bench-series-${s}-${k}`)),
  });
}
function* instances(): Generator<Buffer> {
  let n = 0;
  for (let s = 0; s < plan.length && n < TOTAL; s++) {
    const st = plan[s]!;
    for (let k = 0; k < SERIES && n < TOTAL; k++) {
      for (let i = 0; i < PER_SERIES && n < TOTAL; i++, n++) {
        yield buildInstance({
          pseudonym: st.pseudonym, studyUid: st.uid, seriesUid: st.series[k]!, sopUid: testUid(`bench-sop-${s}-${k}-${i}`), modality: st.modality, studyDate: st.date,
          seriesNumber: k + 1, instanceNumber: i + 1, rows: 32, columns: 32, seed: n, bodyPart: 'CHEST', manufacturer: k ? 'GE' : 'Siemens',
        });
      }
    }
  }
}

const OPERATOR: Actor = { principal: { kind: 'user', id: 'bench', name: 'bench', grants: [{ role: 'platform_operator', orgId: null }] }, ip: null };

async function loadHub(hub: Hub, token: string): Promise<number> {
  const site = await hub.identity.principalForToken(token);
  const actor: Actor = { principal: site!, ip: null };
  const t0 = performance.now();
  let n = 0;
  const inflight = new Set<Promise<unknown>>();
  for (const b of instances()) {
    const p: Promise<unknown> = hub.putInstance(actor, 'BENCH', sha256Of(b), b).then(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 4) await Promise.race(inflight);
    if (++n % 5000 === 0) process.stderr.write(`hub: ${n}/${TOTAL}\n`);
  }
  await Promise.all(inflight);
  return (performance.now() - t0) / 1000;
}

async function startOrthanc(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const http = await freePort();
  const dicom = await freePort();
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const cfg = {
    Name: 'bench', StorageDirectory: join(dir, 'storage'), IndexDirectory: join(dir, 'storage'), Plugins: ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'],
    HttpPort: http, DicomPort: dicom, RemoteAccessAllowed: false, AuthenticationEnabled: false, DicomCheckCalledAet: false, UnknownSopClassAccepted: true,
    DicomAlwaysAllowStore: true, DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(cfg));
  const proc = spawn('/usr/sbin/Orthanc', [join(dir, 'orthanc.json')], { env: peerEnv(), stdio: ['ignore', 'ignore', 'ignore'] });
  const url = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/system`)).ok) return { url, proc };
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('Orthanc did not start');
}

async function loadOrthanc(url: string): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  const inflight = new Set<Promise<unknown>>();
  for (const b of instances()) {
    const p: Promise<unknown> = fetch(`${url}/instances`, { method: 'POST', body: new Uint8Array(b), headers: { 'content-type': 'application/dicom' } }).then(async (r) => {
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`orthanc store ${r.status}`);
      inflight.delete(p);
    });
    inflight.add(p);
    if (inflight.size >= 4) await Promise.race(inflight);
    if (++n % 5000 === 0) process.stderr.write(`orthanc: ${n}/${TOTAL}\n`);
  }
  await Promise.all(inflight);
  const stats = (await (await fetch(`${url}/statistics`)).json()) as { CountInstances: number };
  if (stats.CountInstances !== TOTAL) throw new Error(`orthanc holds ${stats.CountInstances} instances, expected ${TOTAL}`);
  return (performance.now() - t0) / 1000;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function time(base: string, headers: Record<string, string>, paths: string[]): Promise<{ p50: number; p95: number; results: number }> {
  const ms: number[] = [];
  let results = 0;
  for (const p of paths.slice(0, 5)) await (await fetch(base + p, { headers })).arrayBuffer(); // warm-up
  for (const p of paths) {
    const t0 = performance.now();
    const r = await fetch(base + p, { headers: { accept: 'application/dicom+json', ...headers } });
    const body = (await r.json()) as unknown[];
    ms.push(performance.now() - t0);
    if (!r.ok) throw new Error(`${base}${p}: ${r.status}`);
    results += body.length;
  }
  return { p50: pct(ms, 50), p95: pct(ms, 95), results: results / paths.length };
}

async function main(): Promise<void> {
  const dir = tempDir('imago-bench-');
  const dbUrl = DB === 'postgres' ? await freshPostgresDb('bench') : `sqlite:${dir}/imago.db`;
  const config = loadConfig({ env: { IMAGO_DATA_DIR: dir, IMAGO_DB__URL: dbUrl, IMAGO_STORAGE__URL: `file:${dir}/blobs`, IMAGO_HTTP__PORT: '0', IMAGO_LOG__LEVEL: 'silent' } });
  const p = await startPlatform(config, { demo: true });
  const hub = createHub({ config, db: p.db, audit: p.audit, identity: p.identity });
  const { token } = await hub.registerSite(OPERATOR, { code: 'BENCH', name: 'Bench', region: 'X', splitMode: 'percent', trainingPercent: 80 });
  const login = readDemoLogins(config).find((l) => l.username === 'operator')!;
  const lr = await fetch(`${p.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: login.username, password: login.password }) });
  const cookie = lr.headers.get('set-cookie')!.split(';')[0]!;
  console.log(`corpus: ${TOTAL} instances, ${STUDIES} studies × ${SERIES} series × ${PER_SERIES} instances (32×32 16-bit, ~${buildInstance({ pseudonym: testPseudonym('x'), studyUid: '1.2', seriesUid: '1.3', sopUid: '1.4', rows: 32, columns: 32 }).length} bytes each); hub db ${DB}`);
  const hubLoad = await loadHub(hub, token);
  console.log(`load: hub ${hubLoad.toFixed(1)} s (${(TOTAL / hubLoad).toFixed(0)}/s, in-process data layer, 4 in flight)`);
  const o = await startOrthanc(join(dir, 'orthanc'));
  try {
    const orthLoad = await loadOrthanc(o.url);
    console.log(`load: orthanc ${orthLoad.toFixed(1)} s (${(TOTAL / orthLoad).toFixed(0)}/s, REST POST /instances, 4 in flight)`);
    const loaded = plan.slice(0, Math.ceil(TOTAL / PER_STUDY));
    const pick = () => loaded[Math.floor(rnd() * loaded.length)]!;
    const q1: string[] = [];
    const q2: string[] = [];
    const q3: string[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const start = DAY0 + Math.floor(rnd() * (3 * 365 - 30)) * 86400000;
      q1.push(`/studies?StudyDate=${da(start)}-${da(start + 30 * 86400000)}&ModalitiesInStudy=CT`);
      const s = pick();
      q2.push(`/studies/${s.uid}/series`);
      q3.push(`/studies/${s.uid}/series/${s.series[Math.floor(rnd() * SERIES)]}/metadata`);
    }
    const rows: Array<[string, Awaited<ReturnType<typeof time>>, Awaited<ReturnType<typeof time>>]> = [];
    for (const [name, qs] of [['studies by date range + modality', q1], ['series of a study', q2], ['metadata of a series', q3]] as const) {
      const h = await time(`${p.url}/api/hub/v1/dicomweb`, { cookie }, qs);
      const or = await time(`${o.url}/dicom-web`, {}, qs);
      rows.push([name, h, or]);
    }
    console.log(`\n${QUERIES} queries each, sequential, over HTTP on loopback (ms)`);
    console.log('query                              | hub p50 | hub p95 | orthanc p50 | orthanc p95 | p95 ratio (orthanc/hub) | results/query');
    for (const [name, h, or] of rows) {
      console.log(`${name.padEnd(34)} | ${h.p50.toFixed(2).padStart(7)} | ${h.p95.toFixed(2).padStart(7)} | ${or.p50.toFixed(2).padStart(11)} | ${or.p95.toFixed(2).padStart(11)} | ${(or.p95 / h.p95).toFixed(2).padStart(23)} | ${h.results.toFixed(1)} / ${or.results.toFixed(1)}`);
    }
  } finally {
    o.proc.kill('SIGTERM');
    await hub.blobs.close();
    await p.close();
  }
}

await main();
