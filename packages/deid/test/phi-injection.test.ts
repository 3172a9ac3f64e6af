import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { SYSTEM_PYTHON, tempDir } from '@imago/testkit';
import { BASIC_ONLY, createDeidEngine } from '@imago/deid';

/**
 * Copies of real files with unique fake PHI planted in 40+ places (written by
 * pydicom, an independent writer). A raw byte scan of every output, including
 * the preamble and meta header, must find none of the tokens.
 */
const PY = '/usr/lib/python3/dist-packages/pydicom/data';
const SOURCES = [
  `${PY}/test_files/CT_small.dcm`,
  `${PY}/test_files/MR_small.dcm`,
  `${PY}/test_files/MR_small_bigendian.dcm`,
  `${PY}/test_files/MR_small_implicit.dcm`,
  `${PY}/test_files/JPEG2000.dcm`,
  `${PY}/test_files/MR_small_RLE.dcm`,
  `${PY}/test_files/rtplan.dcm`,
  `${PY}/test_files/reportsi.dcm`,
  `${PY}/test_files/image_dfl.dcm`,
  `${PY}/charset_files/chrX1.dcm`,
  `${PY}/charset_files/chrH31.dcm`,
];

function tokens(): Record<string, string> {
  const names = [
    'family', 'given', 'pid', 'issuer', 'street', 'otherid', 'otherid2', 'mother', 'birthname', 'phone', 'mrl', 'occupation',
    'history', 'pcomments', 'referrer', 'performer', 'ofrecord', 'reader', 'requester', 'operator', 'institution', 'instaddr',
    'station', 'serial', 'accession', 'studyid', 'reqproc', 'sps', 'accession2', 'private', 'privnested', 'deepid', 'deepinst',
    'srperson', 'srtext', 'preamble', 'aetitle',
  ];
  const t: Record<string, string> = {};
  names.forEach((n, i) => {
    // Unique, unmistakable, and shaped like an identifier (letters and digits), as
    // Clean Descriptors can only find known identifiers and identifier patterns in free text.
    t[n] = `QZ${String(i).padStart(2, '0')}${String.fromCharCode(65 + (i % 26))}PHI`;
  });
  t.phone = '0113 496 0000';
  t.birth = '19710203';
  return t;
}

describe('PHI injection', () => {
  const dir = tempDir('imago-deid-phi-');
  const t = tokens();
  let planted: string[] = [];
  before(() => {
    const pairs = SOURCES.map((f, i) => ({ in: f, out: join(dir, `planted-${i}.dcm`) }));
    const r = spawnSync(SYSTEM_PYTHON, [join(import.meta.dirname, 'helpers/plant_phi.py')], { input: JSON.stringify({ pairs, t }), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    planted = JSON.parse(r.stdout) as string[];
  });

  const needles = () => {
    const n = Object.entries(t).map(([k, v]) => ({ where: k, bytes: Buffer.from(v, 'latin1') }));
    // The identifier patterns in the descriptions, in the forms they were written.
    for (const s of ['943 476 5919', '7946 0958', '03/02/1971', '1.2.3.4.5.6.7.8.9', '1.2.3.4.5.6.7.8.10', '1.2.3.4.5.6.7.8.11']) {
      n.push({ where: `pattern ${s}`, bytes: Buffer.from(s, 'latin1') });
    }
    return n;
  };

  test('at least 25 places planted, and the planted files really carry every token', () => {
    assert.ok(Object.keys(t).length >= 25);
    const raw = Buffer.concat(planted.filter((p) => !p.endsWith('planted-8.dcm')).map((p) => readFileSync(p)));
    for (const n of needles()) assert.ok(raw.includes(n.bytes), `token for ${n.where} was not planted`);
  });

  for (const [label, options] of [
    ['site default (Basic + Modified Dates + Patient Characteristics + Clean Descriptors)', {}],
    ['Basic Profile only', BASIC_ONLY],
    ['with Clean Structured Content and Retain Safe Private', { cleanStructuredContent: true, retainSafePrivate: true }],
  ] as const) {
    test(`raw byte scan of every output finds no token: ${label}`, async () => {
      const engine = createDeidEngine({ secret: 'phi-secret', options });
      for (const [i, p] of planted.entries()) {
        const out = join(dir, `out-${label.length}-${i}.dcm`);
        const r = await engine.deidentifyFile(p, out, { released: true });
        assert.equal(r.written, true);
        const raw = readFileSync(out);
        // Deflated outputs are scanned after inflating too.
        const views = [raw];
        if (r.transferSyntaxUID === '1.2.840.10008.1.2.1.99') {
          const { inflateRawSync } = await import('node:zlib');
          const metaEnd = 132 + 12 + raw.readUInt32LE(140);
          views.push(inflateRawSync(raw.subarray(metaEnd)));
        }
        for (const v of views) {
          const lower = v.toString('latin1').toLowerCase();
          for (const n of needles()) {
            assert.ok(!lower.includes(n.bytes.toString('latin1').toLowerCase()), `${p}: token for ${n.where} survives`);
          }
        }
      }
    });
  }
});
