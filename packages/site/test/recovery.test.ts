import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCore } from '@imago/cli';
import { tempDir } from '@imago/testkit';
import { completionMarker, SiteNode } from '../src/node.js';
import { pairConfig } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';

test('start-up recovery: a complete received file whose row was lost is adopted; torn, unmarked and partial files are deleted', { timeout: 60_000 }, async () => {
  const config = await pairConfig({ site: { dimse: false } });
  const core = await openCore(config);
  try {
    const node = await SiteNode.open({ config, logger: core.logger, db: core.db, audit: core.audit });
    const src = join(tempDir(), 'x.dcm');
    writeInstance(src, { patientId: 'MRN-REC', studyUid: uid(51, 1), seriesUid: uid(51, 1, 1), sopUid: uid(51, 1, 1, 1) });
    const bytes = readFileSync(src);
    const md5 = createHash('md5').update(bytes).digest('hex'); // preamble is zero, as a receiver writes it
    const marked = (b: Buffer, size: number, sum: string) => Buffer.concat([completionMarker(size, sum), b.subarray(128)]);
    const ids = { good: randomUUID(), torn: randomUUID(), unmarked: randomUUID(), renamed: randomUUID(), part: randomUUID() };
    const inc = node.incomingDir;
    writeFileSync(join(inc, `${ids.good}.r.dcm`), marked(bytes, bytes.length, md5));
    const torn = marked(bytes, bytes.length, md5);
    torn.fill(0, torn.length - 4096); // the tail never reached the disk
    writeFileSync(join(inc, `${ids.torn}.r.dcm`), torn);
    writeFileSync(join(inc, `${ids.unmarked}.r.dcm`), bytes.subarray(0, 5000)); // a receive cut off mid-way
    writeFileSync(join(inc, `${ids.renamed}.dcm`), bytes); // renamed only after fdatasync: complete
    writeFileSync(join(inc, `${ids.renamed}x.dcm.part`), bytes.subarray(0, 1000));
    const r = await node.reconcile();
    assert.equal(r.adopted, 2);
    assert.equal(r.orphans, 3);
    const rows = await core.db.db.selectFrom('site_instances').selectAll().execute();
    assert.deepEqual(rows.map((x) => x.id).sort(), [ids.good, ids.renamed].sort());
    for (const x of rows) {
      assert.equal(x.state, 'received');
      assert.equal(x.source, 'recovered');
      assert.ok(existsSync(join(node.root, x.incoming_path!)));
    }
    // A late fast-path commit of a file that was adopted meanwhile: still one row (primary key = the file's id).
    node.queueIncoming({ id: ids.good, path: join(inc, `${ids.good}.r.dcm`), rel: `incoming/${ids.good}.r.dcm`, part: '' }, { source: 'dimse', callingAe: 'LATE' }, bytes.length);
    await node.flushIncoming();
    const again = await core.db.db.selectFrom('site_instances').select(['id', 'source']).execute();
    assert.equal(again.length, 2);
    assert.equal(again.find((x) => x.id === ids.good)?.source, 'recovered');
    assert.equal((await node.reconcile()).adopted, 0, 'a second start adopts nothing more');
    assert.equal(existsSync(join(inc, `${ids.torn}.r.dcm`)), false, 'torn file deleted');
    assert.equal(existsSync(join(inc, `${ids.unmarked}.r.dcm`)), false, 'unmarked file deleted');
    await node.stop();
  } finally {
    await core.close();
  }
});
