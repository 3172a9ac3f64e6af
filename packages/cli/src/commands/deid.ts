import { readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { isImagoError } from '@imago/core';
import { createDeidEngine, type DeidOptions, type DeidResult } from '@imago/deid';
import { configFor } from '../context.js';
import { progress } from '../progress.js';

/** Option names accepted by --options (comma-separated; prefix `no-` to switch one off). */
const OPTION_FLAGS: Record<string, keyof DeidOptions> = {
  'modified-dates': 'retainLongitudinalModifiedDates',
  'full-dates': 'retainLongitudinalFullDates',
  'patient-characteristics': 'retainPatientCharacteristics',
  'device-identity': 'retainDeviceIdentity',
  'institution-identity': 'retainInstitutionIdentity',
  'safe-private': 'retainSafePrivate',
  'clean-descriptors': 'cleanDescriptors',
  'clean-structured-content': 'cleanStructuredContent',
  'allow-secondary-capture': 'allowSecondaryCapture',
  'quarantine-overlays': 'quarantineOverlays',
};

export function parseOptionList(list: string | undefined): Partial<DeidOptions> {
  const o: Partial<Record<keyof DeidOptions, unknown>> = {};
  if (!list) return o as Partial<DeidOptions>;
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === 'basic') {
      Object.assign(o, { retainLongitudinalModifiedDates: false, retainPatientCharacteristics: false, cleanDescriptors: false });
      continue;
    }
    const allow = /^allow-modality=(.+)$/.exec(raw);
    if (allow) {
      o.allowModalities = [...((o.allowModalities as string[] | undefined) ?? []), ...allow[1]!.split('+').map((m) => m.toUpperCase())];
      continue;
    }
    const shift = /^date-shift=(\d+)-(\d+)$/.exec(raw);
    if (shift) {
      o.dateShiftMinDays = Number(shift[1]);
      o.dateShiftMaxDays = Number(shift[2]);
      continue;
    }
    const off = raw.startsWith('no-');
    const key = OPTION_FLAGS[off ? raw.slice(3) : raw];
    if (!key) throw new Error(`unknown --options entry "${raw}"; known: basic, ${Object.keys(OPTION_FLAGS).join(', ')}, allow-modality=US+SC, date-shift=MIN-MAX`);
    o[key] = !off;
  }
  return o as Partial<DeidOptions>;
}

function walk(root: string): string[] {
  const st = statSync(root);
  if (st.isFile()) return [root];
  const out: string[] = [];
  const rec = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) rec(p);
      else if (e.isFile()) out.push(p);
    }
  };
  rec(root);
  return out;
}

interface FileReport {
  file: string;
  status: 'ok' | 'quarantine' | 'failed';
  reason?: string;
  error?: string;
  pseudonym?: string;
  sopInstanceUID?: string;
  sha256?: string;
  actions?: DeidResult['report']['counts'];
}

export function register(program: Command): void {
  program
    .command('deid')
    .description('de-identify DICOM files (PS3.15 Annex E) from IN (file or folder) into OUT, keeping the tree layout')
    .argument('<in>', 'input file or folder (walked recursively)')
    .argument('<out>', 'output folder (or file, when IN is a file)')
    .requiredOption('--secret-file <file>', 'file holding the site secret for pseudonyms and UIDs')
    .option('--options <list>', 'comma-separated profile options, e.g. basic,modified-dates,no-clean-descriptors,allow-modality=US')
    .option('--report <file>', 'write a JSON report (no PHI: paths are relative, values are never included)')
    .option('--concurrency <n>', 'files in flight', '4')
    .action(async (inArg: string, outArg: string, opts: { secretFile: string; options?: string; report?: string; concurrency: string }, cmd: Command) => {
      const secret = readFileSync(opts.secretFile, 'utf8').trim();
      if (!secret) throw new Error(`secret file ${opts.secretFile} is empty; refusing to run`);
      const cfg = configFor(cmd);
      const options: Partial<DeidOptions> = { ...cfg.deid, ...parseOptionList(opts.options) };
      const engine = createDeidEngine({ secret, options, issuerDefault: cfg.site.code });
      const inRoot = resolve(inArg);
      const single = statSync(inRoot).isFile();
      const files = walk(inRoot);
      const outRoot = resolve(outArg);
      const bar = progress('deid', files.length);
      const reports: FileReport[] = [];
      let next = 0;
      const worker = async () => {
        while (next < files.length) {
          const f = files[next++]!;
          const rel = single ? basename(f) : relative(inRoot, f);
          const target = single && !outArg.endsWith('/') && !isDir(outRoot) ? outRoot : join(outRoot, rel);
          try {
            const r = await engine.deidentifyFile(f, target);
            if (r.decision === 'quarantine') {
              const q = join(single ? dirname(target) : outRoot, '_quarantine', rel);
              await mkdir(dirname(q), { recursive: true });
              // The original (still identifiable) is kept on site for a person to review; no de-identified output is written.
              await copyFile(f, q);
              await writeFile(`${q}.reason.txt`, `${r.reason}\n${r.detail ?? ''}\nsource: ${rel}\nNo de-identified output was written. A person must review the instance and release it (deidentifyFile(..., { released: true })).\n`);
              reports.push({ file: rel, status: 'quarantine', reason: r.reason! });
            } else {
              reports.push({ file: rel, status: 'ok', pseudonym: r.pseudonym, sopInstanceUID: r.sopInstanceUID!, sha256: r.sha256!, actions: r.report.counts });
            }
          } catch (e) {
            reports.push({ file: rel, status: 'failed', error: isImagoError(e) ? e.message : `${(e as Error).name}: ${(e as Error).message}` });
          }
          bar.tick();
        }
      };
      const n = Math.max(1, Number(opts.concurrency) || 4);
      await Promise.all(Array.from({ length: n }, worker));
      bar.stop();
      const summary = {
        ok: reports.filter((r) => r.status === 'ok').length,
        quarantined: reports.filter((r) => r.status === 'quarantine').length,
        failed: reports.filter((r) => r.status === 'failed').length,
      };
      if (opts.report) await writeFile(opts.report, JSON.stringify({ summary, options: engine.options, files: reports }, null, 2));
      console.log(`deid: ${summary.ok} written, ${summary.quarantined} quarantined, ${summary.failed} failed`);
      for (const r of reports.filter((x) => x.status === 'failed')) console.error(`  failed ${r.file}: ${r.error}`);
      if (summary.failed > 0) process.exitCode = 1;
    });
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
