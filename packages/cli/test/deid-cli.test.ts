import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readHeader } from '@imago/dicom';
import { tempDir } from '@imago/testkit';

const BIN = join(import.meta.dirname, '..', 'src', 'bin.ts');
const SAMPLES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

function imago(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], { env: { ...process.env, IMAGO_LOG__LEVEL: 'silent', ...env }, encoding: 'utf8' });
}

test('imago deid: a folder tree in, the same tree out, quarantine and failures reported', () => {
  const dir = tempDir();
  const src = join(dir, 'in');
  mkdirSync(join(src, 'ct'), { recursive: true });
  mkdirSync(join(src, 'mr', 'deep'), { recursive: true });
  copyFileSync(join(SAMPLES, 'CT_small.dcm'), join(src, 'ct', 'a.dcm'));
  copyFileSync(join(SAMPLES, 'MR_small.dcm'), join(src, 'mr', 'deep', 'b.dcm'));
  copyFileSync(join(SAMPLES, 'SC_rgb_small_odd.dcm'), join(src, 'sc.dcm'));
  copyFileSync(join(SAMPLES, 'MR_truncated.dcm'), join(src, 'broken.dcm'));
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'a-site-secret-for-tests\n');
  const out = join(dir, 'out');
  const report = join(dir, 'report.json');

  const r = imago(['deid', src, out, '--secret-file', secret, '--report', report]);
  assert.equal(r.status, 1, 'a failed file makes the run exit non-zero');
  assert.match(r.stdout, /2 written, 1 quarantined, 1 failed/);
  assert.match(r.stderr, /broken\.dcm/);

  const a = readHeader(join(out, 'ct', 'a.dcm'));
  const b = readHeader(join(out, 'mr', 'deep', 'b.dcm'));
  assert.equal(a.patientIdentityRemoved, 'YES');
  assert.notEqual(a.patientID, '1CT1');
  assert.match(a.patientID ?? '', /^IMG-/);
  assert.notEqual(b.sopInstanceUID, readHeader(join(SAMPLES, 'MR_small.dcm')).sopInstanceUID);
  assert.ok(!existsSync(join(out, 'sc.dcm')), 'a quarantined instance is not written out');
  assert.ok(existsSync(join(out, '_quarantine')), 'quarantine folder exists');

  const rep = readFileSync(report, 'utf8');
  assert.ok(!rep.includes('CompressedSamples'), 'report carries no patient names');
  assert.ok(!rep.includes('1CT1'), 'report carries no patient IDs');
  const parsed = JSON.parse(rep) as { summary: { ok: number; quarantined: number; failed: number } };
  assert.deepEqual([parsed.summary.ok, parsed.summary.quarantined, parsed.summary.failed], [2, 1, 1]);

  // Same secret, same pseudonym; another secret, another one.
  const out2 = join(dir, 'out2');
  assert.equal(imago(['deid', join(src, 'ct'), out2, '--secret-file', secret]).status, 0);
  assert.equal(readHeader(join(out2, 'a.dcm')).patientID, a.patientID);
  const secret2 = join(dir, 'secret2');
  writeFileSync(secret2, 'another-secret');
  const out3 = join(dir, 'out3');
  assert.equal(imago(['deid', join(src, 'ct'), out3, '--secret-file', secret2]).status, 0);
  assert.notEqual(readHeader(join(out3, 'a.dcm')).patientID, a.patientID);
});

test('imago deid refuses an empty secret and a missing secret file', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'empty'), '\n');
  let r = imago(['deid', join(SAMPLES, 'CT_small.dcm'), join(dir, 'o'), '--secret-file', join(dir, 'empty')]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /secret/i);
  r = imago(['deid', join(SAMPLES, 'CT_small.dcm'), join(dir, 'o')]);
  assert.notEqual(r.status, 0);
  assert.ok(!existsSync(join(dir, 'o')));
});
