import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DicomParseError, readHeader, readHeaderFromBuffer } from '@imago/dicom';
import { SYSTEM_PYTHON } from '@imago/testkit';

const PYDICOM_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

// pydicom is the independent reader: our header reader must agree with it on
// every readable sample, for the attributes the site and hub decide on.
test('readHeader agrees with pydicom on the pydicom sample files', () => {
  const files = readdirSync(PYDICOM_FILES).filter((f) => f.endsWith('.dcm') && statSync(join(PYDICOM_FILES, f)).isFile());
  const py = spawnSync(SYSTEM_PYTHON, ['-c', `
import json, sys, pydicom
out = {}
for f in sys.argv[2:]:
    try:
        d = pydicom.dcmread(sys.argv[1] + '/' + f, stop_before_pixels=True)
        g = lambda k: (str(getattr(d, k)) if getattr(d, k, None) is not None else None)
        out[f] = {k: g(k) for k in ['SOPInstanceUID', 'StudyInstanceUID', 'SeriesInstanceUID', 'Modality', 'PatientID']}
    except Exception as e:
        out[f] = None
print(json.dumps(out))
`, PYDICOM_FILES, ...files], { encoding: 'utf8', maxBuffer: 16 << 20 });
  assert.equal(py.status, 0, py.stderr);
  const expected = JSON.parse(py.stdout) as Record<string, Record<string, string | null> | null>;
  let compared = 0;
  for (const f of files) {
    const want = expected[f];
    let got;
    try {
      got = readHeader(join(PYDICOM_FILES, f));
    } catch (e) {
      assert.ok(e instanceof DicomParseError, `${f}: a typed parse error, got ${(e as Error).name}`);
      continue;
    }
    if (!want) continue;
    for (const [k, ours] of [['SOPInstanceUID', got.sopInstanceUID], ['StudyInstanceUID', got.studyInstanceUID], ['SeriesInstanceUID', got.seriesInstanceUID], ['Modality', got.modality]] as const) {
      if (want[k] === null || want[k] === '') continue;
      assert.equal(ours, want[k], `${f} ${k}`);
    }
    compared++;
  }
  assert.ok(compared >= 50, `compared ${compared} files`);
});

test('the header of a known file, and typed errors on bad input', () => {
  const h = readHeader(join(PYDICOM_FILES, 'CT_small.dcm'));
  assert.equal(h.modality, 'CT');
  assert.equal(h.patientID, '1CT1');
  assert.equal(h.rows, 128);
  assert.equal(h.columns, 128);
  assert.equal(h.hasMeta, true);
  const full = readFileSync(join(PYDICOM_FILES, 'CT_small.dcm'));
  assert.throws(() => readHeaderFromBuffer(Buffer.from('not a dicom file at all, just some text')), DicomParseError);
  assert.throws(() => readHeaderFromBuffer(full.subarray(0, 200)), DicomParseError);
  assert.throws(() => readHeaderFromBuffer(Buffer.alloc(0)), DicomParseError);
});
