/**
 * Browser-test harness: builds the web UI when dist is missing or older than
 * its sources, starts `imago start --demo` as a child process on a free port
 * with a throwaway data directory, and drives Debian's chromium through
 * playwright-core.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = new URL('..', import.meta.url).pathname;
const WEB = join(ROOT, 'packages/web');
export const SHOTS = join(ROOT, 'e2e/screenshots');

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const e of readdirSync(p)) m = Math.max(m, newestMtime(join(p, e)));
  return m;
}

/** Build packages/web into dist unless dist is newer than every source file. */
export function ensureWebBuilt(): void {
  const index = join(WEB, 'dist/index.html');
  const src = Math.max(newestMtime(join(WEB, 'src')), newestMtime(join(WEB, 'index.html')), newestMtime(join(WEB, 'vite.config.ts')));
  if (existsSync(index) && statSync(index).mtimeMs >= src) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: WEB, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('vite build failed');
}

export interface Server {
  url: string;
  dataDir: string;
  logins: Map<string, string>;
  child: ChildProcess;
  /** The upload token of the demo site at the hub (set by startDemo). */
  siteToken?: string;
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** `imago start --demo` in a child process; resolves once it prints its URL. */
export async function startServer(opts: { dataDir?: string; port?: number; env?: Record<string, string> } = {}): Promise<Server> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'imago-e2e-'));
  // The child's configuration is exactly this: no IMAGO_* from the test runner (e.g. IMAGO_TEST_PG_URL) leaks in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('IMAGO_')));
  const env = {
    ...inherited,
    IMAGO_DATA_DIR: dataDir,
    IMAGO_DB__URL: `sqlite:${join(dataDir, 'imago.db')}`,
    IMAGO_HTTP__PORT: String(opts.port ?? 0),
    IMAGO_HTTP__HOST: '127.0.0.1',
    IMAGO_LOG__LEVEL: 'warn',
    // No DIMSE listener: the tests feed the site by STOW-RS, and parallel suites must not fight over port 11112.
    IMAGO_SITE__DIMSE: 'false',
    ...opts.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), 'start', '--demo'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let stopping = false;
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  // A server that dies under the tests says why.
  child.once('exit', (code, signal) => {
    if (!stopping) console.error(`[e2e] imago start exited unexpectedly (code ${code}, signal ${signal})\n--- stdout\n${out.slice(-4000)}\n--- stderr\n${err.slice(-8000)}`);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`imago start did not come up in 120 s\n${out}\n${err}`)), 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Web UI and API:\s+(http:\/\/\S+?)\/?\s/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`imago start exited with ${code}\n${out}\n${err}`));
    });
  });
  const logins = new Map<string, string>();
  for (const line of readFileSync(join(dataDir, 'demo-logins.txt'), 'utf8').trim().split('\n')) {
    const [u, p] = line.split('\t');
    if (u && p) logins.set(u, p);
  }
  return {
    url, dataDir, logins, child,
    async stop(o = {}) {
      stopping = true;
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      if (!o.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function post(server: Server, cookie: string, path: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; json: unknown }> {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { cookie, 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, json };
}

/**
 * The platform with demo data that went through the real pipeline: the
 * operator registers the demo site at the hub, the site node is restarted
 * with that token, synthetic studies arrive at the site by STOW-RS, clinical
 * data is imported as CSV, and the site de-identifies and uploads to the hub.
 * (If `start --demo` already loads a dataset, that is used as it is.)
 */
const debug = (...a: unknown[]) => {
  if (process.env.E2E_DEBUG) console.log('[e2e]', ...a);
};

export async function startDemo(): Promise<Server> {
  const port = await freePort();
  let s = await startServer({ port });
  debug('started', s.url);
  const op = await apiCookie(s, 'operator');
  const stats = await apiGet<{ totals: { instances: number } }>(s, op, '/api/hub/v1/stats');
  if (stats.totals.instances > 0) return s;
  const site = await apiGet<{ site: string }>(s, await apiCookie(s, 'siteadmin'), '/api/site/v1/status');
  let token: string;
  const reg = await post(s, op, '/api/hub/v1/sites', { code: site.site, name: 'Demo General Hospital', region: 'Demo region', splitMode: 'percent', trainingPercent: 70, sharesData: false });
  if (reg.status < 300) token = (reg.json as { token: string }).token;
  else token = ((await post(s, op, `/api/hub/v1/sites/${site.site}/tokens`, { revokeOthers: true })).json as { token: string }).token;
  const dataDir = s.dataDir;
  await s.stop({ keepData: true });
  s = await startServer({ dataDir, port, env: { IMAGO_SITE__HUB_URL: `http://127.0.0.1:${port}`, IMAGO_SITE__HUB_TOKEN: token } });
  s.siteToken = token;
  debug('restarted with the hub link');

  // Synthetic studies (with PHI) arrive at the site by STOW-RS.
  const gen = join(dataDir, 'synth');
  const { generateDataset, sendDataset } = await import('@imago/synth');
  const g = await generateDataset({ out: gen, seed: 11, sites: 1, patients: 16, scale: 0.125, ctSlices: 4, workers: 0 });
  const code = g.sites[0]!.code;
  debug('generated', g.instances, 'instances');
  const admin = await apiCookie(s, 'siteadmin');
  const sent = await sendDataset({ dir: gen, site: code, stowUrl: `${s.url}/dicom-web/studies`, stowHeaders: { cookie: admin }, batch: 10 });
  if (sent.failed) throw new Error(`STOW to the site failed for ${sent.failed} instance(s): ${JSON.stringify(sent.failures.slice(0, 3))}`);
  debug('sent', sent.sent);
  const dm = await apiCookie(s, 'datamanager');
  for (const f of process.env.E2E_SKIP_CLINICAL ? [] : ['data.csv', 'status.csv']) {
    const r = await post(s, dm, '/api/site/v1/clinical/import/csv', readFileSync(join(gen, 'sites', code, 'clinical', f), 'utf8'), 'text/csv');
    if (r.status >= 300) throw new Error(`clinical import ${f}: ${r.status} ${JSON.stringify(r.json)}`);
  }
  // Wait for the pipeline to drain: nothing received, checked or waiting in the outbox, clinical uploaded.
  const deadline = Date.now() + 90_000;
  for (;;) {
    const st = await apiGet<{ instances: Record<string, number>; clinical: Record<string, number> }>(s, admin, '/api/site/v1/status');
    const busy = (st.instances.received ?? 0) + (st.instances.checked ?? 0) + (st.instances.outbox ?? 0) + (st.clinical.ready ?? 0);
    if (!busy && (st.instances.uploaded ?? 0) > 0) break;
    debug('status', JSON.stringify(st.instances), JSON.stringify(st.clinical));
    if (Date.now() > deadline) throw new Error(`site pipeline did not drain: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return s;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A fresh context (own cookies and storage) signed in through the login form. */
export async function signedIn(browser: Browser, server: Server, username: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ baseURL: server.url, viewport: { width: 1360, height: 900 }, locale: 'en-GB' });
  const page = await ctx.newPage();
  await page.goto('/');
  await signIn(page, server, username);
  return { ctx, page };
}

export async function signIn(page: Page, server: Server, username: string): Promise<void> {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(server.logins.get(username)!);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('whoami').waitFor();
}

/** Cookie header for API calls made by the test itself (to compare with what the UI draws). */
export async function apiCookie(server: Server, username: string): Promise<string> {
  const r = await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: server.logins.get(username) }) });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status}`);
  return r.headers.get('set-cookie')!.split(';')[0]!;
}

export async function apiGet<T>(server: Server, cookie: string, path: string): Promise<T> {
  const r = await fetch(`${server.url}${path}`, { headers: { cookie, accept: 'application/json' } });
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation { id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }

/** Run axe-core on the page; returns the serious and critical violations. */
export async function axeSerious(page: Page): Promise<AxeViolation[]> {
  await page.addScriptTag({ content: AXE });
  const v = await page.evaluate(async () => {
    const w = window as unknown as { axe: { run(ctx: Document, o: unknown): Promise<{ violations: AxeViolation[] }> } };
    const r = await w.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((x) => ({ id: x.id, impact: x.impact, help: x.help, nodes: x.nodes.map((n) => ({ target: n.target })) }));
  });
  return v.filter((x) => x.impact === 'serious' || x.impact === 'critical');
}
