import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { BufferSource, DicomParseError, parseDicom, readHeader, TAG } from '@imago/dicom';
import { tempDir } from '@imago/testkit';
import { createDeidEngine, PROFILE_ROWS, PROFILE_SOURCE, buildActionTable, enabledColumns, resolveOptions, shiftDaValue } from '@imago/deid';
import { generate } from '../../../scripts/gen-deid-table.js';

const PY = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const CT = `${PY}/CT_small.dcm`;
const dir = tempDir('imago-deid-engine-');

test('committed profile table matches regeneration from the standard data', () => {
  // The standard's data travels with the repository (packages/deid/standard, MIT);
  // where the project's shared copy sits beside the checkout, it must be the same.
  const src = readFileSync(join(import.meta.dirname, '../standard/confidentiality_profile_attributes.json'), 'utf8');
  const shared = join(import.meta.dirname, '../../../../shared/dicom-standard/confidentiality_profile_attributes.json');
  if (existsSync(shared)) assert.equal(readFileSync(shared, 'utf8'), src, 'vendored Table E.1-1 differs from shared/dicom-standard');
  const committed = readFileSync(join(import.meta.dirname, '../src/profile-table.generated.ts'), 'utf8');
  assert.equal(generate(src), committed);
  assert.equal(PROFILE_SOURCE, 'DICOM PS3.15 Table E.1-1');
  assert.equal(PROFILE_ROWS.length, 621);
  const codes = new Set(PROFILE_ROWS.map((r) => r.basicProfile));
  for (const c of ['D', 'Z', 'X', 'U', 'X/Z', 'X/D', 'Z/D', 'X/Z/D', 'X/Z/U*']) assert.ok(codes.has(c as never), c);
});

test('action resolution: options override the Basic Profile (K over C over basic)', () => {
  const basic = buildActionTable([]);
  const site = buildActionTable(enabledColumns(resolveOptions({})));
  assert.equal(basic.actionFor(0x00100040)!.action, 'Z'); // Patient's Sex
  assert.equal(site.actionFor(0x00100040)!.action, 'K'); // retained characteristic
  assert.equal(basic.actionFor(0x00080020)!.action, 'Z'); // Study Date
  assert.equal(site.actionFor(0x00080020)!.action, 'C'); // shifted
  assert.equal(site.actionFor(0x0008103e)!.action, 'C'); // Series Description cleaned
  assert.equal(basic.actionFor(0x00081140)!.action, 'U'); // X/Z/U*
  assert.equal(basic.actionFor(0x00080080)!.action, 'D'); // X/Z/D
  assert.equal(basic.actionFor(0x60003000)!.action, 'X'); // overlay data (60xx)
  assert.equal(basic.actionFor(0x60223000)!.action, 'X');
});

test('pseudonyms and UIDs are consistent across runs and files, and differ under another secret', async () => {
  const a1 = createDeidEngine({ secret: 'alpha' });
  const a2 = createDeidEngine({ secret: 'alpha' });
  const b = createDeidEngine({ secret: 'beta' });
  assert.equal(a1.pseudonymFor('123', 'X'), a2.pseudonymFor('123', 'X'));
  assert.notEqual(a1.pseudonymFor('123', 'X'), a1.pseudonymFor('123', 'Y'));
  assert.notEqual(a1.pseudonymFor('123', 'X'), b.pseudonymFor('123', 'X'));
  const r1 = await a1.deidentifyFile(CT, join(dir, 'a1.dcm'));
  const r2 = await a2.deidentifyFile(CT, join(dir, 'a2.dcm'));
  const r3 = await b.deidentifyFile(CT, join(dir, 'b.dcm'));
  assert.equal(r1.pseudonym, r2.pseudonym);
  assert.equal(r1.studyInstanceUID, r2.studyInstanceUID);
  assert.equal(r1.sopInstanceUID, r2.sopInstanceUID);
  assert.equal(r1.sha256, r2.sha256, 'byte-identical output for the same secret');
  assert.notEqual(r1.pseudonym, r3.pseudonym);
  assert.notEqual(r1.studyInstanceUID, r3.studyInstanceUID);
  assert.match(r1.sopInstanceUID!, /^2\.25\.\d{1,39}$/);
  // Same UID in another file maps the same way.
  const h = readHeader(CT);
  assert.equal(a1.remapUid(h.studyInstanceUID!), r1.studyInstanceUID);
  assert.equal(readHeader(join(dir, 'a1.dcm')).studyInstanceUID, r1.studyInstanceUID);
});

test('dates of one patient keep their intervals; the shift stays within bounds', async () => {
  const e = createDeidEngine({ secret: 's', options: { dateShiftMinDays: 10, dateShiftMaxDays: 20 } });
  for (let i = 0; i < 200; i++) {
    const s = e.dateShiftFor(`P${i}`, 'I');
    assert.ok(s <= -10 && s >= -20, `shift ${s}`);
  }
  const s = e.dateShiftFor('P1', 'I');
  assert.equal(s, e.dateShiftFor('P1', 'I'));
  const d1 = shiftDaValue('20200228', s);
  const d2 = shiftDaValue('20200302', s);
  const days = (x: string) => Date.UTC(+x.slice(0, 4), +x.slice(4, 6) - 1, +x.slice(6, 8)) / 86_400_000;
  assert.equal(days(d2) - days(d1), 3);
  assert.equal(days('20200228') - days(d1), -s);
  // In a real file: study date shifted by the patient's offset.
  const r = await e.deidentifyFile(CT, join(dir, 'dates.dcm'));
  const inH = readHeader(CT);
  const outH = readHeader(join(dir, 'dates.dcm'));
  assert.equal(days(outH.studyDate!) - days(inH.studyDate!), r.dateShiftDays);
  assert.equal(r.dateShiftDays, e.dateShiftFor(inH.patientID!, ''));
});

test('large-file path: header parsed in blocks, pixel data streamed, same bytes as the in-memory path', async () => {
  const e = createDeidEngine({ secret: 's', smallFileBytes: 1024 });
  const f = `${PY}/MR_small.dcm`;
  const small = createDeidEngine({ secret: 's' });
  const a = await e.deidentifyFile(f, join(dir, 'big.dcm'));
  const b = await small.deidentifyFile(f, join(dir, 'small.dcm'));
  assert.equal(a.sha256, b.sha256);
  assert.deepEqual(readFileSync(join(dir, 'big.dcm')), readFileSync(join(dir, 'small.dcm')));
  const c = await e.deidentifyStream(Readable.from([readFileSync(f)]), join(dir, 'stream.dcm'));
  assert.equal(c.sha256, b.sha256);
  const buf = small.deidentifyBuffer(readFileSync(f));
  assert.equal(buf.sha256, b.sha256);
});

test('a 300 MB multi-frame instance is de-identified without holding it in memory', async () => {
  // Build a big explicit-LE file: CT_small's header with a large PixelData value.
  const p = parseDicom(new BufferSource(readFileSync(CT)));
  const pix = p.dataset.find((x) => x.tag === TAG.PixelData)!;
  const head = readFileSync(CT).subarray(0, pix.start);
  const size = 300 * 1024 * 1024;
  const hdr = Buffer.alloc(12);
  hdr.writeUInt16LE(0x7fe0, 0); hdr.writeUInt16LE(0x0010, 2); hdr.write('OW', 4, 'latin1'); hdr.writeUInt32LE(size, 8);
  const big = join(dir, 'huge-in.dcm');
  writeFileSync(big, Buffer.concat([head, hdr]));
  execFileSync('truncate', ['-s', String(head.length + 12 + size), big]);
  const e = createDeidEngine({ secret: 's' });
  const before = process.memoryUsage().rss;
  const r = await e.deidentifyFile(big, join(dir, 'huge-out.dcm'));
  const grew = process.memoryUsage().rss - before;
  assert.equal(r.written, true);
  assert.ok(r.bytes! > size);
  assert.ok(grew < 120 * 1024 * 1024, `RSS grew by ${Math.round(grew / 1e6)} MB`);
});

test('bad input gets a typed error, never a crash', async () => {
  const e = createDeidEngine({ secret: 's' });
  const ct = readFileSync(CT);
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['text', Buffer.from('hello world, not dicom at all')],
    ['preamble only', Buffer.concat([Buffer.alloc(128), Buffer.from('DICM')])],
    ['truncated header', ct.subarray(0, 700)],
    ['truncated pixels', ct.subarray(0, ct.length - 100)],
  ];
  // Bad VR: overwrite the VR of the first data set element.
  const badVr = Buffer.from(ct);
  const p = parseDicom(new BufferSource(ct));
  badVr.write('zz', p.dataset[0]!.start + 4, 'latin1');
  cases.push(['bad VR', badVr]);
  // Undefined length on a non-sequence element.
  const undef = Buffer.from(ct);
  const el = p.dataset.find((x) => x.vr === 'OB' || x.vr === 'UN') ?? p.dataset.find((x) => x.tag === TAG.PixelData)!;
  undef.writeUInt32LE(0xffffffff, el.start + 8);
  cases.push(['undefined length non-SQ', undef]);
  for (const [name, buf] of cases) {
    assert.throws(() => e.deidentifyBuffer(buf), (err: unknown) => err instanceof DicomParseError && /DICOM parse error/.test(err.message), name);
    const path = join(dir, `bad-${name.replace(/\W/g, '')}.dcm`);
    writeFileSync(path, buf);
    await assert.rejects(e.deidentifyFile(path, join(dir, 'never.dcm')), DicomParseError, name);
  }
});

test('empty secret is refused', () => {
  assert.throws(() => createDeidEngine({ secret: '' }), /empty secret/);
});
