import type { Command } from 'commander';
import { badRequest } from '@imago/core';
import { generateDataset, sendDataset } from '@imago/synth';
import { progress } from '../progress.js';

const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw badRequest(`not a number: ${v}`);
  return n;
};

/**
 * `imago synth`: generate a synthetic national dataset;
 * `imago synth send`: push it to a site node as a PACS would.
 */
export function register(program: Command): void {
  const synth = program
    .command('synth')
    .description('generate a synthetic national chest-imaging dataset (DICOM + NCCID clinical data + answer key)')
    .option('--out <dir>', 'output directory')
    .option('--sites <n>', 'number of hospitals', num, 5)
    .option('--patients <n>', 'number of patients', num, 200)
    .option('--seed <n>', 'seed (same seed, same bytes)', num, 1)
    .option('--scale <x>', 'image scale: 1 = full size (2048+ px radiographs); 0.125 for quick runs', num, 1)
    .option('--ct-slices <n>', 'slices per CT series', num, 24)
    .option('--prevalence <p>', 'COVID-positive fraction', num, 0.5)
    .option('--workers <n>', 'worker threads (0 = main thread only)', num)
    .option('--age-mean <years>', 'mean patient age (default 60; positives are ~4 years older)', num)
    .option('--age-sd <years>', 'SD of patient age (default 17; ages are clipped to 18..99)', num)
    .option('--female <fraction>', 'fraction of female patients, 0..1 (default 0.47)', num)
    .option('--json', 'print the summary as JSON')
    .action(async (o: { out?: string; sites: number; patients: number; seed: number; scale: number; ctSlices: number; prevalence: number; workers?: number; ageMean?: number; ageSd?: number; female?: number; json?: boolean }) => {
      if (!o.out) throw badRequest('--out <dir> is required');
      const population: { ageMean?: number; ageSd?: number; female?: number } = {};
      if (o.ageMean !== undefined) population.ageMean = o.ageMean;
      if (o.ageSd !== undefined) population.ageSd = o.ageSd;
      if (o.female !== undefined) population.female = o.female;
      let bar: ReturnType<typeof progress> | null = null;
      let last = 0;
      const summary = await generateDataset({
        out: o.out, sites: o.sites, patients: o.patients, seed: o.seed, scale: o.scale, ctSlices: o.ctSlices, prevalence: o.prevalence, workers: o.workers, population,
        onProgress: (done, total) => {
          bar ??= progress('synth', total);
          bar.tick(done - last);
          last = done;
          if (done === total) bar.stop();
        },
      });
      if (o.json) console.log(JSON.stringify(summary, null, 2));
      else {
        console.log(`wrote ${summary.instances} instances (${Object.entries(summary.byModality).map(([k, v]) => `${k} ${v}`).join(', ')}) for ${summary.patients} patients (${summary.positives} COVID-positive) at ${summary.sites.length} sites to ${summary.out}`);
        console.log(`${(summary.bytes / 1e6).toFixed(0)} MB in ${summary.seconds.toFixed(1)} s: ${summary.instancesPerSecond.toFixed(1)} instances/s, ${(summary.cxrInstances / summary.seconds).toFixed(1)} radiographs/s`);
        console.log(`answer key: ${summary.out}/answer-key.json (keep it away from the pipeline)`);
      }
    });

  synth
    .command('send')
    .description('push a generated dataset to a site node by C-STORE or STOW-RS, like a PACS')
    .requiredOption('--dir <dir>', 'dataset directory (from imago synth --out)')
    .option('--site <code>', 'only this site')
    .option('--to <target>', 'C-STORE target AET@host:port')
    .option('--calling-aet <aet>', 'our AE title', 'IMAGO_PACS')
    .option('--stow <url>', 'STOW-RS studies URL instead of C-STORE')
    .option('--token <token>', 'bearer token for STOW-RS')
    .option('--rate <n>', 'instances per second (default: as fast as possible)', num)
    .option('--batch <n>', 'instances per association / STOW request', num)
    .option('--limit <n>', 'send at most n instances', num)
    .action(async (o: { dir: string; site?: string; to?: string; callingAet: string; stow?: string; token?: string; rate?: number; batch?: number; limit?: number }) => {
      let dimseTarget: { host: string; port: number; calledAet: string; callingAet: string } | undefined;
      if (o.to) {
        const m = /^([^@]+)@([^:]+):(\d+)$/.exec(o.to);
        if (!m) throw badRequest('--to must look like AET@host:port');
        dimseTarget = { calledAet: m[1]!, host: m[2]!, port: Number(m[3]), callingAet: o.callingAet };
      }
      let bar: ReturnType<typeof progress> | null = null;
      const r = await sendDataset({
        dir: o.dir, site: o.site, dimse: dimseTarget, stowUrl: o.stow, stowHeaders: o.token ? { authorization: `Bearer ${o.token}` } : {},
        rate: o.rate, batch: o.batch, limit: o.limit,
        onProgress: (done, total) => {
          bar ??= progress('send', total);
          bar.tick(1);
          if (done === total) bar.stop();
        },
      });
      console.log(`sent ${r.sent}, failed ${r.failed} in ${r.seconds.toFixed(1)} s (${(r.sent / Math.max(r.seconds, 1e-3)).toFixed(1)}/s)`);
      for (const f of r.failures.slice(0, 10)) console.error(`  failed ${f.path}: ${f.status}`);
      if (r.failed) process.exitCode = 1;
    });
}
