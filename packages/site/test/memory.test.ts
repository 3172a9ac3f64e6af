import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir } from '@imago/testkit';
import { storescu, waitFor } from './helpers.js';
import { uid, writeInstance } from './make-dicom.js';
import { hubCounts, kill9, siteRows, startHub, startSiteProcess, writeSiteConfig } from './procs.js';

function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

test('memory: a 500 MB multi-frame instance over C-STORE keeps the site process RSS under 300 MB (receive, de-identify, upload)', { timeout: 300_000 }, async () => {
  const dir = tempDir('imago-mem-');
  const file = join(dir, 'big.dcm');
  // 2048 x 2048 x 16-bit x 60 frames = 503 MB of pixel data
  writeInstance(file, { patientId: 'MRN-BIG', modality: 'DX', rows: 2048, columns: 2048, frames: 60, studyUid: uid(5, 1), seriesUid: uid(5, 1, 1), sopUid: uid(5, 1, 1, 1) });
  const hubPort = await freePort();
  const { platform: hub, token } = await startHub(dir, hubPort);
  const site = await writeSiteConfig(dir, hubPort, token);
  const child = await startSiteProcess(site.file);
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(child.pid!).rss);
    } catch {
      /* exited */
    }
  }, 50);
  try {
    const t0 = Date.now();
    const r = await storescu(site.dimsePort, [file], { extra: ['--max-send-pdu', '131072'] });
    assert.equal(r.code, 0, r.stderr);
    const tRecv = Date.now() - t0;
    await waitFor('uploaded', async () => (await siteRows(site.dbUrl)).every((x) => x.state === 'uploaded') && (await hubCounts(hub)).n === 1, 240_000, 250);
    const m = rssMb(child.pid!);
    console.log(`500 MB instance: received in ${tRecv} ms, end-to-end ${Date.now() - t0} ms; site RSS peak sampled ${peak.toFixed(0)} MB, VmHWM ${m.hwm.toFixed(0)} MB`);
    assert.ok(m.hwm < 300, `site process peak RSS ${m.hwm.toFixed(0)} MB`);
  } finally {
    clearInterval(sampler);
    await kill9(child);
    await hub.close();
  }
});
