// Throughput of the synthetic generator on full-size chest radiographs only
// (no CT/SC/US, no clinical files), through the real worker pool.
//
//   node --import tsx bench/synth-throughput.ts [DIR=/tmp/imago-synth-bench] [N=300] [RUNS=3] [WORKERS=cores] [MAIN=boot|always|never]
//
// Prints one JSON line per run and a median line: radiographs/s, MB/s, and
// the process CPU time per radiograph (user+sys over all threads; this is
// much less sensitive to other load on the machine than wall-clock rates),
// plus the 1-minute load average at the start of the run. A tmpfs DIR
// (/dev/shm/...) measures the generator alone, a disk DIR generator + page cache.
import { rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { planDataset, runPool } from '../packages/synth/src/generate.js';

const dir = process.argv[2] ?? '/tmp/imago-synth-bench';
const n = Number(process.argv[3] ?? 300);
const runs = Number(process.argv[4] ?? 3);
const workers = Number(process.argv[5] ?? availableParallelism());
const mainThread = (process.argv[6] ?? 'boot') as 'boot' | 'always' | 'never';
const plan = planDataset({ seed: 7, sites: 5, patients: Math.ceil(n / 1.4), scale: 1, ctSlices: 1, prevalence: 0.5 });
const cxr = plan.instances.filter((i) => i.modality === 'DX' || i.modality === 'CR').slice(0, n);
if (cxr.length < n) throw new Error(`planned only ${cxr.length} radiographs`);
const results: Array<{ perSecond: number; MBps: number; cpuMsPerImage: number }> = [];
for (let r = 0; r < runs; r++) {
  rmSync(dir, { recursive: true, force: true });
  const load = loadavg()[0]!;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const bytes = await runPool(dir, cxr, workers, () => {}, { mainThread });
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const res = {
    run: r + 1, instances: cxr.length, workers, mainThread, seconds: +s.toFixed(2), perSecond: +(cxr.length / s).toFixed(1), MBps: +(bytes / s / 1e6).toFixed(0),
    meanMB: +(bytes / cxr.length / 1e6).toFixed(2), cpuMsPerImage: +((c.user + c.system) / 1000 / cxr.length).toFixed(1), sysMsPerImage: +(c.system / 1000 / cxr.length).toFixed(1), load1: +load.toFixed(2),
  };
  results.push(res);
  console.log(JSON.stringify(res));
}
rmSync(dir, { recursive: true, force: true });
const med = (k: 'perSecond' | 'MBps' | 'cpuMsPerImage') => results.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
console.log(JSON.stringify({ median: { perSecond: med('perSecond'), MBps: med('MBps'), cpuMsPerImage: med('cpuMsPerImage') } }));
