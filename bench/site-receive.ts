/**
 * Receive benchmark: storescu (TCP_NODELAY=1) into the Imago site node and
 * into Orthanc 1.10 (Debian package, defaults + TCP_NODELAY=1), same run,
 * same files, each from an empty store.
 *
 *   node --import tsx bench/site-receive.ts [--small 1000] [--dx 100]
 *
 * Corpora: small CT instances (128x128x16-bit, ~33 KB) and chest-X-ray-sized
 * DX instances (2048x2048x16-bit, ~8 MB). The site node also runs its
 * pipeline (opt-out check, de-identification, queueing) while receiving; the
 * time to drain that pipeline is printed too. No hub is configured, so
 * nothing is uploaded during the measurement.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@imago/db';
import { freePort, peerEnv, tempDir } from '@imago/testkit';
import { uid, writeInstance } from '../packages/site/test/make-dicom.js';

const run = promisify(execFile);
const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const N_SMALL = arg('--small', 1000);
const N_DX = arg('--dx', 100);
const FIXTURE = fileURLToPath(new URL('../packages/site/test/fixtures/site-process.ts', import.meta.url));

function corpus(dir: string, n: number, kind: 'CT' | 'DX'): string[] {
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = join(dir, `${kind}${String(i).padStart(5, '0')}.dcm`);
    const p = i % 50;
    writeInstance(f, kind === 'CT'
      ? { modality: 'CT', rows: 128, columns: 128, patientId: `MRN${p}`, studyUid: uid(kind === 'CT' ? 3 : 4, p), seriesUid: uid(3, p, 1), sopUid: uid(3, p, 1, i + 1), seed: i + 1 }
      : { modality: 'DX', rows: 2048, columns: 2048, patientId: `MRN${p}`, studyUid: uid(4, p), seriesUid: uid(4, p, 1), sopUid: uid(4, p, 1, i + 1), seed: i + 1 });
    out.push(f);
  }
  return out;
}

async function storescu(port: number, aec: string, files: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run('storescu', ['-aet', 'STORESCU', '-aec', aec, '127.0.0.1', String(port), ...files], { env: peerEnv(), maxBuffer: 1 << 26 });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function waitHttp(url: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`no answer from ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
  });
}

async function withOrthanc<T>(dir: string, fn: (dicomPort: number, httpPort: number) => Promise<T>): Promise<T> {
  const httpPort = await freePort();
  const dicomPort = await freePort();
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const cfg = join(dir, 'orthanc.json');
  writeFileSync(cfg, JSON.stringify({
    StorageDirectory: join(dir, 'storage'), IndexDirectory: join(dir, 'storage'), Plugins: ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'],
    HttpPort: httpPort, DicomPort: dicomPort, RemoteAccessAllowed: false, AuthenticationEnabled: false,
    DicomCheckCalledAet: false, UnknownSopClassAccepted: true, DicomAlwaysAllowStore: true, DicomWeb: { Enable: true, Root: '/dicom-web/' },
  }));
  const child = spawn('/usr/sbin/Orthanc', [cfg], { env: peerEnv(), stdio: 'ignore' });
  try {
    await waitHttp(`http://127.0.0.1:${httpPort}/system`);
    return await fn(dicomPort, httpPort);
  } finally {
    await stop(child);
  }
}

async function withSite<T>(dir: string, fn: (port: number, dbUrl: string) => Promise<T>): Promise<T> {
  const dimsePort = await freePort();
  const dbUrl = `sqlite:${join(dir, 'site.db')}`;
  const file = join(dir, 'site.json');
  writeFileSync(file, JSON.stringify({
    dataDir: dir, db: { url: dbUrl }, storage: { url: `file:${join(dir, 'blobs')}` }, http: { port: await freePort() }, log: { level: 'error' },
    parts: { site: true, hub: false }, site: { dimsePort, allowedCallingAeTitles: ['STORESCU'], secret: 'bench-secret' },
  }));
  const child = spawn(process.execPath, [...(process.env.SITE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SITE_PROFILE}`] : []), '--import', 'tsx', FIXTURE, file], { env: peerEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) res();
    });
    child.once('exit', (c) => rej(new Error(`site exited ${c}`)));
  });
  try {
    return await fn(dimsePort, dbUrl);
  } finally {
    await stop(child);
  }
}

async function siteDrained(dbUrl: string, n: number, t0: number): Promise<number> {
  if (process.env.IMAGO_SITE__PIPELINE === 'false') return (Date.now() - t0) / 1000; // pipeline switched off: receive only
  const db = await openDatabase(dbUrl, { migrate: false });
  try {
    for (;;) {
      const rows = await db.db.selectFrom('site_instances').select('state').execute();
      if (rows.length >= n && rows.every((r) => !['received', 'checked'].includes(r.state))) return (Date.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await db.close();
  }
}

const root = tempDir('imago-bench-');
console.log(`generating ${N_SMALL} small CT and ${N_DX} DX instances…`);
const sets = [
  { name: `small CT (${N_SMALL} x ~33 KB)`, files: corpus(join(root, 'ct'), N_SMALL, 'CT') },
  { name: `DX 2048x2048x16 (${N_DX} x ~8 MB)`, files: corpus(join(root, 'dx'), N_DX, 'DX') },
];
const results: string[] = [];
for (const s of sets) {
  const orthancSecs = await withOrthanc(tempDir('imago-bench-orthanc-'), async (port, httpPort) => {
    const t = await storescu(port, 'ORTHANC', s.files);
    const stats = (await (await fetch(`http://127.0.0.1:${httpPort}/statistics`)).json()) as { CountInstances: number };
    if (stats.CountInstances !== s.files.length) throw new Error(`Orthanc holds ${stats.CountInstances} of ${s.files.length}`);
    return t;
  });
  const [siteSecs, drainSecs] = await withSite(tempDir('imago-bench-site-'), async (port, dbUrl) => {
    const t0 = Date.now();
    const t = await storescu(port, 'IMAGO', s.files);
    return [t, await siteDrained(dbUrl, s.files.length, t0)] as const;
  });
  const o = s.files.length / orthancSecs;
  const i = s.files.length / siteSecs;
  const line = `${s.name}: Imago site ${i.toFixed(1)}/s (receive+store), pipeline drained (de-identified + queued) at ${(s.files.length / drainSecs).toFixed(1)}/s; Orthanc ${o.toFixed(1)}/s; ratio Imago/Orthanc ${(i / o).toFixed(2)}`;
  console.log(line);
  results.push(line);
}
console.log('\nPDU: storescu sends PDUs up to the size each receiver advertises: Imago 128 KB (site.maxPduLength), Orthanc 16 KB (its default).');
console.log(results.join('\n'));
process.exit(0);
