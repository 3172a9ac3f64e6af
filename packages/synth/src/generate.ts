import { mkdirSync, writeFileSync, readFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { badRequest, internal } from '@imago/core';
import { makeSites, type SiteProfile } from './sites.js';
import { planPatient, type PatientPlan, type PopulationOptions } from './model.js';
import { instancesFor, type InstancePlan } from './iods.js';
import { clinicalRecord, toCsv, toFhirBundle, type NccidClinicalRecord } from './clinical.js';
import { writeInstance } from './render.js';

export interface GenerateOptions {
  out: string;
  seed?: number;
  sites?: number;
  patients?: number;
  /** Image scale: 1 = full size (default). Tests use 0.125 (256-pixel radiographs). */
  scale?: number;
  ctSlices?: number;
  /** Worker threads; 0 renders in the calling thread. Default: available cores. */
  workers?: number;
  prevalence?: number;
  population?: Partial<PopulationOptions>;
  onProgress?: (done: number, total: number) => void;
}

export interface GenerateSummary {
  out: string;
  seed: number;
  sites: Array<{ code: string; name: string; patients: number; instances: number }>;
  patients: number;
  positives: number;
  studies: number;
  instances: number;
  byModality: Record<string, number>;
  bytes: number;
  seconds: number;
  instancesPerSecond: number;
  cxrInstances: number;
}

/** One instance in the generated tree, as listInstances() returns it. */
export interface ListedInstance {
  site: string;
  path: string;
  relPath: string;
  modality: string;
  sopClassUid: string;
  sopInstanceUid: string;
  studyUid: string;
  seriesUid: string;
  patientKey: string;
}

export interface AnswerKeyInstance {
  path: string;
  modality: string;
  sopInstanceUid: string;
  seriesUid: string;
  studyIndex: number;
  /** Should be quarantined by the site node (burned-in annotation / ultrasound). */
  quarantine: boolean;
}

export interface AnswerKeyPatient {
  key: string;
  site: string;
  label: 'positive' | 'negative';
  cxrSeverity: number;
  sex: string;
  age: number;
  ethnicity: string;
  studies: Array<{ index: number; kind: string; role: string; modality: string; at: string; studyUid: string; accession: string; severity: number; covidAtStudy: boolean }>;
  instances: AnswerKeyInstance[];
  phi: {
    name: string;
    familyName: string;
    givenName: string;
    nhsNumber: string;
    mrn: string;
    birthDate: string;
    address: string;
    postcode: string;
    phone: string;
    accessions: string[];
    physicians: string[];
  };
  /** Flat list of strings that must never leave the site. */
  phiTokens: string[];
  outcomes: PatientPlan['outcomes'];
}

export interface AnswerKey {
  seed: number;
  generator: string;
  options: { sites: number; patients: number; scale: number; ctSlices: number };
  patients: AnswerKeyPatient[];
}

interface Plan {
  sites: SiteProfile[];
  patients: PatientPlan[];
  instances: InstancePlan[];
  records: Map<string, NccidClinicalRecord>;
}

export function planDataset(o: Required<Pick<GenerateOptions, 'seed' | 'sites' | 'patients' | 'scale' | 'ctSlices' | 'prevalence'>> & { population?: Partial<PopulationOptions> }): Plan {
  const pop: PopulationOptions = { ageMean: 60, ageSd: 17, female: 0.47 };
  for (const k of ['ageMean', 'ageSd', 'female'] as const) if (o.population?.[k] !== undefined) pop[k] = o.population[k];
  const sites = makeSites(o.seed, o.sites, o.prevalence);
  const patients: PatientPlan[] = [];
  const instances: InstancePlan[] = [];
  const records = new Map<string, NccidClinicalRecord>();
  for (let i = 0; i < o.patients; i++) {
    const site = sites[i % sites.length]!;
    const p = planPatient(o.seed, site, Math.floor(i / sites.length), i, pop);
    patients.push(p);
    records.set(p.key, clinicalRecord(o.seed, site, p));
    for (const s of p.studies) instances.push(...instancesFor(o.seed, site, p, s, { scale: o.scale, ctSlices: o.ctSlices }));
  }
  return { sites, patients, instances, records };
}

function answerKeyPatient(p: PatientPlan, inst: InstancePlan[]): AnswerKeyPatient {
  const physicians = [p.gp, ...p.studies.flatMap((s) => [s.referring, s.performing, s.operator, s.reader])].map((n) => n.dicom);
  const phi = {
    name: p.name.dicom, familyName: p.name.family, givenName: p.name.given, nhsNumber: p.nhsNumber, mrn: p.mrn, birthDate: p.birthDate,
    address: p.address.text, postcode: p.address.postcode, phone: p.phone, accessions: p.studies.map((s) => s.accession), physicians: [...new Set(physicians)],
  };
  return {
    key: p.key, site: p.site, label: p.covid ? 'positive' : 'negative', cxrSeverity: p.cxrSeverity, sex: p.sex, age: p.age, ethnicity: p.ethnicity,
    studies: p.studies.map((s) => ({ index: s.index, kind: s.kind, role: s.role, modality: s.modality, at: s.at, studyUid: s.studyUid, accession: s.accession, severity: s.severity, covidAtStudy: s.covidAtStudy })),
    instances: inst.map((i) => ({ path: i.path, modality: i.modality, sopInstanceUid: i.sopInstanceUid, seriesUid: i.seriesUid, studyIndex: i.studyIndex, quarantine: i.modality === 'SC' || i.modality === 'US' })),
    phi,
    phiTokens: [...new Set([p.name.dicom, p.name.family, p.nhsNumber, p.mrn, p.birthDate.replaceAll('-', ''), p.address.lines[0]!, p.address.postcode, p.phone, ...phi.accessions])],
    outcomes: p.outcomes,
  };
}

function json(file: string, v: unknown): void {
  writeFileSync(file, JSON.stringify(v, null, 1) + '\n');
}

/**
 * Generate a synthetic national dataset under `opts.out`:
 *   sites/<code>/dicom/<date>/<accession>/S<n>/I<n>.dcm   (PACS-like tree)
 *   sites/<code>/clinical/{data.csv,status.csv,records.json,fhir/<patient>.json}
 *   sites/<code>/site.json                                 (site profile)
 *   manifest.json                                           (instances, no PHI)
 *   answer-key.json                                         (truth + PHI tokens; never feed to the pipeline)
 */
export async function generateDataset(opts: GenerateOptions): Promise<GenerateSummary> {
  const seed = opts.seed ?? 1;
  const nSites = opts.sites ?? 5;
  const nPatients = opts.patients ?? 200;
  const scale = opts.scale ?? 1;
  const ctSlices = opts.ctSlices ?? 24;
  if (!Number.isInteger(nSites) || nSites < 1 || nSites > 600) throw badRequest('sites must be an integer 1..600');
  if (!Number.isInteger(nPatients) || nPatients < 1) throw badRequest('patients must be a positive integer');
  if (!(scale > 0 && scale <= 2)) throw badRequest('scale must be in (0, 2]');
  if (!Number.isInteger(seed) || seed < 0) throw badRequest('seed must be a non-negative integer');
  const pop = opts.population ?? {};
  if (pop.ageMean !== undefined && !(pop.ageMean >= 18 && pop.ageMean <= 99)) throw badRequest('population ageMean must be in 18..99');
  if (pop.ageSd !== undefined && !(pop.ageSd >= 0 && pop.ageSd <= 50)) throw badRequest('population ageSd must be in 0..50');
  if (pop.female !== undefined && !(pop.female >= 0 && pop.female <= 1)) throw badRequest('population female must be a fraction in 0..1');
  const t0 = performance.now();
  const plan = planDataset({ seed, sites: nSites, patients: nPatients, scale, ctSlices, prevalence: opts.prevalence ?? 0.5, population: opts.population });
  const out = opts.out;
  mkdirSync(out, { recursive: true });

  // clinical outputs
  for (const site of plan.sites) {
    const dir = join(out, 'sites', site.code, 'clinical');
    mkdirSync(join(dir, 'fhir'), { recursive: true });
    const pats = plan.patients.filter((p) => p.site === site.code);
    const recs = pats.map((p) => plan.records.get(p.key)!);
    writeFileSync(join(dir, 'data.csv'), toCsv(recs, site.csvTemplate, 'data'));
    writeFileSync(join(dir, 'status.csv'), toCsv(recs, site.csvTemplate, 'status'));
    json(join(dir, 'records.json'), recs);
    for (const p of pats) json(join(dir, 'fhir', `${p.key}.json`), toFhirBundle(site, p, plan.records.get(p.key)!));
    json(join(out, 'sites', site.code, 'site.json'), { ...site, csvTemplate: site.csvTemplate });
  }

  // pixels
  const total = plan.instances.length;
  let done = 0;
  let bytes = 0;
  const workers = opts.workers ?? availableParallelism();
  if (workers <= 0) {
    for (const ip of plan.instances) {
      bytes += writeInstance(out, ip);
      opts.onProgress?.(++done, total);
    }
  } else {
    bytes = await runPool(out, plan.instances, workers, (n) => {
      done += n;
      opts.onProgress?.(done, total);
    });
  }

  const byModality: Record<string, number> = {};
  for (const i of plan.instances) byModality[i.modality] = (byModality[i.modality] ?? 0) + 1;
  const manifest: ListedInstance[] = plan.instances.map((i) => ({
    site: i.site, path: join(out, i.path), relPath: i.path, modality: i.modality, sopClassUid: i.sopClassUid,
    sopInstanceUid: i.sopInstanceUid, studyUid: i.studyUid, seriesUid: i.seriesUid, patientKey: i.patientKey,
  }));
  json(join(out, 'manifest.json'), { seed, instances: manifest.map(({ path: _p, ...rest }) => rest) });
  const byPatient = new Map<string, InstancePlan[]>();
  for (const i of plan.instances) byPatient.set(i.patientKey, [...(byPatient.get(i.patientKey) ?? []), i]);
  const key: AnswerKey = {
    seed, generator: 'imago-synth/1', options: { sites: nSites, patients: nPatients, scale, ctSlices },
    patients: plan.patients.map((p) => answerKeyPatient(p, byPatient.get(p.key) ?? [])),
  };
  json(join(out, 'answer-key.json'), key);
  const seconds = (performance.now() - t0) / 1000;
  const summary: GenerateSummary = {
    out, seed,
    sites: plan.sites.map((s) => ({ code: s.code, name: s.name, patients: plan.patients.filter((p) => p.site === s.code).length, instances: plan.instances.filter((i) => i.site === s.code).length })),
    patients: plan.patients.length,
    positives: plan.patients.filter((p) => p.covid).length,
    studies: plan.patients.reduce((n, p) => n + p.studies.length, 0),
    instances: total, byModality, bytes, seconds,
    instancesPerSecond: total / seconds,
    cxrInstances: (byModality.DX ?? 0) + (byModality.CR ?? 0),
  };
  return summary;
}

/** Batches posted ahead to each worker. */
const QUEUE = 2;

export interface PoolOptions {
  /**
   * Let the calling thread render too: 'boot' (default) only until every
   * worker has loaded its modules (~0.3-0.7 s of TypeScript loading per
   * worker), 'always' as an extra producer throughout, 'never'.
   */
  mainThread?: 'boot' | 'always' | 'never';
}

export async function runPool(out: string, plans: InstancePlan[], n: number, tick: (n: number) => void, po: PoolOptions = {}): Promise<number> {
  // Batches keep message overhead low for small CT slices; big images go singly.
  const batches: InstancePlan[][] = [];
  let cur: InstancePlan[] = [];
  let px = 0;
  for (const p of plans) {
    cur.push(p);
    px += p.image.rows * p.image.cols;
    if (px >= 1_000_000) {
      batches.push(cur);
      cur = [];
      px = 0;
    }
  }
  if (cur.length) batches.push(cur);
  const mainMode = po.mainThread ?? 'boot';
  const pool = Array.from({ length: Math.min(n, batches.length) }, () => startWorker(new URL('./worker.ts', import.meta.url), { outDir: out }));
  let next = 0;
  let bytes = 0;
  let ready = 0;
  let failed = false;
  // The calling thread as a producer, one batch per event-loop turn so worker
  // messages are still handled between its images.
  const mainProducer = async () => {
    if (mainMode === 'never') return;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (failed || (mainMode === 'boot' && ready >= pool.length) || next >= batches.length) return;
      const id = next++;
      for (const p of batches[id]!) bytes += writeInstance(out, p);
      tick(batches[id]!.length);
    }
  };
  try {
    await Promise.all([
      mainProducer(),
      ...pool.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            // keep up to QUEUE batches posted per worker, so it renders the next
            // image while the last file is written and never waits for us
            let outstanding = 0;
            const send = () => {
              while (outstanding < QUEUE && next < batches.length) {
                const id = next++;
                outstanding++;
                w.postMessage({ id, plans: batches[id] });
              }
              if (outstanding === 0) resolve();
            };
            w.on('message', (m: { id: number; ready?: boolean; bytes?: number; error?: string }) => {
              if (m.ready) {
                ready++;
                return send();
              }
              if (m.error) {
                failed = true;
                return reject(internal(`synth worker failed: ${m.error}`));
              }
              outstanding--;
              bytes += m.bytes ?? 0;
              tick(batches[m.id]!.length);
              send();
            });
            w.on('error', (e) => {
              failed = true;
              reject(e);
            });
            w.on('exit', (code) => {
              if (outstanding > 0 || ready === 0) {
                failed = true;
                reject(internal(`synth worker exited (code ${code}) with work outstanding`));
              }
            });
          }),
      ),
    ]);
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return bytes;
}

/**
 * Every DICOM instance in a generated dataset, in generation order. Uses
 * manifest.json when present, else walks sites/<code>/dicom.
 */
export function listInstances(dir: string, opts: { site?: string } = {}): ListedInstance[] {
  const mf = join(dir, 'manifest.json');
  let list: ListedInstance[];
  if (existsSync(mf)) {
    const m = JSON.parse(readFileSync(mf, 'utf8')) as { instances: Array<Omit<ListedInstance, 'path'>> };
    list = m.instances.map((i) => ({ ...i, path: join(dir, i.relPath) }));
  } else {
    list = [];
    const sitesDir = join(dir, 'sites');
    for (const site of existsSync(sitesDir) ? readdirSync(sitesDir).sort() : []) {
      const walk = (d: string) => {
        for (const e of readdirSync(d).sort()) {
          const p = join(d, e);
          if (statSync(p).isDirectory()) walk(p);
          else if (e.endsWith('.dcm')) list.push({ site, path: p, relPath: relative(dir, p), modality: '', sopClassUid: '', sopInstanceUid: '', studyUid: '', seriesUid: '', patientKey: '' });
        }
      };
      const dd = join(sitesDir, site, 'dicom');
      if (existsSync(dd)) walk(dd);
    }
  }
  return opts.site ? list.filter((i) => i.site === opts.site) : list;
}

export function readAnswerKey(dir: string): AnswerKey {
  return JSON.parse(readFileSync(join(dir, 'answer-key.json'), 'utf8')) as AnswerKey;
}

/**
 * Start a TypeScript worker. `--import tsx` in execArgv does not reliably
 * cover a worker's entry module on Node 20, so a tiny CommonJS bootstrap
 * registers tsx's ESM hooks in the worker and then imports the entry.
 */
export function startWorker(entry: URL, workerData: unknown): Worker {
  const boot = `const { workerData } = require('node:worker_threads');
import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })
  .catch((e) => { console.error(e); process.exit(1); });`;
  return new Worker(boot, { eval: true, workerData });
}
