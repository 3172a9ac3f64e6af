import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { tempDir, SYSTEM_PYTHON, peerEnv, freePort } from '@imago/testkit';
import {
  generateDataset, listInstances, readAnswerKey, sendDataset, NccidClinicalRecordSchema, isValidNhsNumber, type GenerateSummary,
} from '../src/index.js';
import { uidFor } from '../src/prng.js';
import { isValidUid } from '@imago/core';

const run = promisify(execFile);
const SMALL = { sites: 5, patients: 200, seed: 1, scale: 0.125, ctSlices: 6 } as const;
let dir = '';
let summary: GenerateSummary;

before(async () => {
  dir = tempDir('synth-');
  summary = await generateDataset({ out: dir, ...SMALL, workers: 2 });
});

function hashTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p.slice(root.length), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

test('NHS numbers carry a valid modulus-11 check digit; UIDs are valid 2.25 UIDs', () => {
  const key = readAnswerKey(dir);
  for (const p of key.patients) assert.ok(isValidNhsNumber(p.phi.nhsNumber), p.phi.nhsNumber);
  assert.equal(isValidNhsNumber('9434765919'), true); // NHS Digital's documented example
  assert.equal(isValidNhsNumber('9434765918'), false);
  const u = uidFor(1, 'x');
  assert.ok(isValidUid(u) && u.startsWith('2.25.'), u);
});

test('dataset shape: sites, modalities, quarantine cases, answer key apart from data', () => {
  assert.equal(summary.sites.length, 5);
  assert.equal(summary.patients, 200);
  for (const m of ['DX', 'CR', 'CT', 'SC', 'US']) assert.ok((summary.byModality[m] ?? 0) > 0, `no ${m}`);
  const list = listInstances(dir);
  assert.equal(list.length, summary.instances);
  for (const i of list) assert.ok(existsSync(i.path), i.path);
  assert.ok(existsSync(join(dir, 'answer-key.json')));
  for (const s of summary.sites) {
    assert.ok(!readdirSync(join(dir, 'sites', s.code)).some((f) => f.includes('answer')));
  }
  const key = readAnswerKey(dir);
  assert.ok(key.patients.some((p) => p.instances.some((i) => i.quarantine)));
  // several studies per patient over time for at least some patients
  assert.ok(key.patients.filter((p) => p.studies.length >= 2).length > 40);
});

test('pydicom reads every file (pixels included)', async () => {
  const script = `
import sys, json, pydicom
paths = json.load(open(sys.argv[1]))
bad = []
for p in paths:
    try:
        ds = pydicom.dcmread(p); a = ds.pixel_array; assert a.shape[0] == ds.Rows
    except Exception as e:
        bad.append([p, str(e)])
print(json.dumps({"n": len(paths), "bad": bad[:5], "nbad": len(bad)}))`;
  const lf = join(dir, '..', `paths-${process.pid}.json`);
  (await import('node:fs')).writeFileSync(lf, JSON.stringify(listInstances(dir).map((i) => i.path)));
  const { stdout } = await run(SYSTEM_PYTHON, ['-c', script, lf], { maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout) as { n: number; nbad: number; bad: unknown[] };
  assert.equal(r.n, summary.instances);
  assert.equal(r.nbad, 0, JSON.stringify(r.bad));
});

test('dciodvfy reports no errors on any instance', async () => {
  const list = listInstances(dir);
  // one instance per (site, modality, transfer syntax) plus every SC/US, then a sample of the rest
  const errors: string[] = [];
  let k = 0;
  const check = async (p: string) => {
    const r = await run('dciodvfy', [p]).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) if (line.startsWith('Error')) errors.push(`${p}: ${line}`);
  };
  const queue = list.map((i) => i.path);
  await Promise.all([0, 1, 2].map(async () => {
    while (k < queue.length) await check(queue[k++]!);
  }));
  assert.deepEqual(errors.slice(0, 10), []);
});

test('dcmdump shows PHI in the expected tags', async () => {
  const key = readAnswerKey(dir);
  const list = listInstances(dir);
  let checked = 0;
  for (const p of key.patients.slice(0, 12)) {
    const inst = p.instances.find((i) => i.modality === 'DX' || i.modality === 'CR')!;
    const { stdout } = await run('dcmdump', ['+L', join(dir, inst.path)], { maxBuffer: 1 << 24 });
    const line = (tag: string) => stdout.split('\n').filter((l) => l.trimStart().startsWith(tag)).join('\n');
    assert.match(line('(0010,0010)'), new RegExp(p.phi.name.replace('^', '\\^')));
    assert.ok(line('(0010,0020)').includes(p.phi.nhsNumber) || line('(0010,0020)').includes(p.phi.mrn));
    assert.ok(line('(0010,1000)').includes(p.phi.nhsNumber) || line('(0010,1000)').includes(p.phi.mrn));
    assert.ok(line('(0010,0030)').includes(p.phi.birthDate.replaceAll('-', '')));
    assert.ok(line('(0010,1040)').includes(p.phi.postcode));
    assert.ok(line('(0008,0050)').includes(p.phi.accessions[p.studies.findIndex((s) => s.index === inst.studyIndex)]!));
    assert.ok(p.phi.physicians.some((n) => line('(0008,0090)').includes(n)));
    assert.match(line('(0008,0080)'), /Hospital|Infirmary/);
    assert.ok(stdout.includes('(0040,0275) SQ') && stdout.includes('(0040,1001)'), 'Request Attributes Sequence');
    assert.ok(stdout.includes('(0010,1002) SQ'), 'Other Patient IDs Sequence');
    checked++;
  }
  assert.equal(checked, 12);
  // the burned-in secondary capture says so
  const sc = list.find((i) => i.modality === 'SC')!;
  const { stdout } = await run('dcmdump', [sc.path]);
  assert.match(stdout, /\(0028,0301\) CS \[YES\]/);
});

test('the same seed reproduces byte-identical output, whatever the threading', async () => {
  const dir2 = tempDir('synth-again-');
  await generateDataset({ out: dir2, ...SMALL, workers: 0 });
  const a = hashTree(dir);
  const b = hashTree(dir2);
  assert.equal(a.size, b.size);
  for (const [k, v] of a) assert.equal(b.get(k), v, k);
  const dir3 = tempDir('synth-other-');
  await generateDataset({ out: dir3, ...SMALL, seed: 2, patients: 10, workers: 0 });
  assert.notEqual(readFileSync(join(dir3, 'answer-key.json'), 'utf8'), readFileSync(join(dir, 'answer-key.json'), 'utf8'));
});

test('signal: lung-region statistics separate positives (AUROC > 0.8); shuffled labels stay near 0.5', async () => {
  const { stdout } = await run(SYSTEM_PYTHON, [new URL('./lung_signal.py', import.meta.url).pathname, dir], { maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout) as { n: number; auroc: number; shuffled_mean: number };
  assert.ok(r.n >= 150, `n=${r.n}`);
  assert.ok(r.auroc > 0.8, `AUROC ${r.auroc}`);
  assert.ok(Math.abs(r.shuffled_mean - 0.5) < 0.1, `shuffled AUROC ${r.shuffled_mean}`);
});

test('clinical data: data records for positives, status for negatives; CSV, JSON and FHIR agree', () => {
  const key = readAnswerKey(dir);
  const label = new Map(key.patients.map((p) => [p.key, p]));
  let data = 0;
  let status = 0;
  const missingBySite: number[] = [];
  for (const s of summary.sites) {
    const cdir = join(dir, 'sites', s.code, 'clinical');
    const recs = JSON.parse(readFileSync(join(cdir, 'records.json'), 'utf8')) as unknown[];
    let nulls = 0;
    let fields = 0;
    for (const r of recs) {
      const rec = NccidClinicalRecordSchema.parse(r);
      if (rec.kind === 'data') {
        data++;
        assert.equal(rec.swabStatus, 'positive');
        for (const v of Object.values(rec.observations)) {
          fields++;
          if (v === null) nulls++;
        }
      } else {
        status++;
        assert.equal(rec.swabStatus, 'negative');
      }
    }
    missingBySite.push(nulls / Math.max(1, fields));
    const csv = readFileSync(join(cdir, 'data.csv'), 'utf8').trim().split('\r\n');
    assert.equal(csv.length - 1, recs.filter((r) => (r as { kind: string }).kind === 'data').length);
    const bundles = readdirSync(join(cdir, 'fhir'));
    assert.equal(bundles.length, s.patients);
    const b = JSON.parse(readFileSync(join(cdir, 'fhir', bundles[0]!), 'utf8')) as { resourceType: string; entry: Array<{ resource: { resourceType: string; code?: { coding: Array<{ code: string }> } } }> };
    assert.equal(b.resourceType, 'Bundle');
    assert.equal(b.entry[0]!.resource.resourceType, 'Patient');
    assert.ok(b.entry.some((e) => e.resource.code?.coding[0]?.code === '94500-6'));
    const pk = bundles[0]!.replace('.json', '');
    assert.ok(label.has(pk));
  }
  assert.equal(data, key.patients.filter((p) => p.label === 'positive').length);
  assert.equal(status, key.patients.filter((p) => p.label === 'negative').length);
  // missingness varies by site
  assert.ok(Math.max(...missingBySite) - Math.min(...missingBySite) > 0.05, JSON.stringify(missingBySite));
});

test('plausible correlations: ITU patients are older with more comorbidity; ethnicity differs by site', () => {
  const key = readAnswerKey(dir);
  const itu = key.patients.filter((p) => p.outcomes.itu);
  const not = key.patients.filter((p) => !p.outcomes.itu);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(itu.length >= 5, `itu ${itu.length}`);
  assert.ok(mean(itu.map((p) => p.age)) > mean(not.map((p) => p.age)) + 3);
  const pos = key.patients.filter((p) => p.label === 'positive');
  assert.ok(mean(pos.filter((p) => p.outcomes.itu).map((p) => p.cxrSeverity)) > mean(pos.filter((p) => !p.outcomes.itu).map((p) => p.cxrSeverity)));
  const whiteBritish = summary.sites.map((s) => {
    const ps = key.patients.filter((p) => p.site === s.code);
    return ps.filter((p) => p.ethnicity === 'A').length / ps.length;
  });
  assert.ok(Math.max(...whiteBritish) - Math.min(...whiteBritish) > 0.15, JSON.stringify(whiteBritish));
});

test('send: C-STORE to storescp and STOW-RS to an HTTP endpoint, rate-limited', async () => {
  const port = await freePort();
  const inbox = join(tempDir('synth-scp-'), 'in');
  mkdirSync(inbox);
  const scp = spawn('storescp', ['-od', inbox, String(port)], { env: peerEnv(), stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 400));
    const r = await sendDataset({ dir, site: summary.sites[0]!.code, dimse: { host: '127.0.0.1', port, calledAet: 'SITE' }, limit: 30 });
    assert.equal(r.sent, 30);
    assert.equal(r.failed, 0);
    assert.equal(readdirSync(inbox).length, 30);
  } finally {
    scp.kill();
  }
  let parts = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      parts += Buffer.concat(chunks).toString('latin1').split('Content-Type: application/dicom').length - 1;
      res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  try {
    const r = await sendDataset({ dir, stowUrl: `http://127.0.0.1:${addr.port}/dicom-web/studies`, limit: 20, rate: 40, batch: 5 });
    assert.equal(r.sent, 20);
    assert.equal(parts, 20);
    assert.ok(r.seconds >= 0.4, `rate not held: ${r.seconds}s`);
  } finally {
    server.close();
  }
});

test('CLI: imago synth writes a dataset', async () => {
  const out = tempDir('synth-cli-');
  const bin = new URL('../../cli/src/bin.ts', import.meta.url).pathname;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', bin, 'synth', '--sites', '2', '--patients', '4', '--scale', '0.125', '--seed', '3', '--out', out, '--json']);
  const s = JSON.parse(stdout) as GenerateSummary;
  assert.equal(s.patients, 4);
  assert.equal(listInstances(out).length, s.instances);
});
