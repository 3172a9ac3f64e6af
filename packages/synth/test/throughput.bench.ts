// Throughput of full-size chest radiographs only (no CT/SC/US, no clinical
// files): `node --import tsx packages/synth/test/throughput.bench.ts [DIR] [N]`.
// Use a tmpfs DIR (/dev/shm/...) to measure the generator, a disk DIR to
// measure generator + disk.
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { planDataset, runPool } from '../src/generate.js';

const dir = process.argv[2] ?? '/dev/shm/imago-synth-bench';
const n = Number(process.argv[3] ?? 300);
rmSync(dir, { recursive: true, force: true });
const plan = planDataset({ seed: 7, sites: 5, patients: Math.ceil(n / 1.6), scale: 1, ctSlices: 1, prevalence: 0.5 });
const cxr = plan.instances.filter((i) => i.modality === 'DX' || i.modality === 'CR').slice(0, n);
const t0 = performance.now();
const bytes = await runPool(dir, cxr, availableParallelism(), () => {});
const s = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ instances: cxr.length, seconds: +s.toFixed(2), perSecond: +(cxr.length / s).toFixed(1), MBps: +(bytes / s / 1e6).toFixed(0), meanMB: +(bytes / cxr.length / 1e6).toFixed(2) }));
rmSync(dir, { recursive: true, force: true });
