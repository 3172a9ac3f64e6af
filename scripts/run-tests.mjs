#!/usr/bin/env node
// Runs every *.test.ts under packages/ and e2e/ with node's test runner (tsx
// loader), against one throwaway PostgreSQL server started for the run.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (/\.test\.tsx?$/.test(e)) out.push(p);
  }
  return out;
}

let files = [...walk(join(root, 'packages'), []), ...walk(join(root, 'e2e'), [])].map((f) => relative(root, f)).sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (!files.length) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

const { startPostgres } = await import('../packages/testkit/src/postgres.ts').catch(async () => {
  // Plain node cannot import .ts; re-exec under tsx.
  return { startPostgres: null };
});

if (!startPostgres) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...process.argv.slice(1)], { stdio: 'inherit', cwd: root });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  const server = await startPostgres();
  console.log(`run-tests: PostgreSQL 15 on port ${server.port}; ${files.length} test files`);
  const env = { ...process.env, TESTKIT_PG_URL: server.url, IMAGO_LOG__LEVEL: process.env.IMAGO_LOG__LEVEL ?? 'silent' };
  const tap = join(mkdtempSync(join(tmpdir(), 'imago-tap-')), 'results.tap');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
    { stdio: 'inherit', cwd: root, env },
  );
  const stop = () => server.stop();
  process.on('SIGINT', () => { child.kill('SIGINT'); });
  child.on('exit', (code) => {
    stop();
    // A plain closing line that any CI reader understands.
    let text = '';
    try { text = readFileSync(tap, 'utf8'); } catch { /* no report */ }
    const count = (k) => Number((new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text) ?? [])[1] ?? 0);
    console.log(`\n${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
    process.exit(code ?? 1);
  });
}
