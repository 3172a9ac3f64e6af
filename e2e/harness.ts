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
  stop(): Promise<void>;
}

/** `imago start --demo` in a child process; resolves once it prints its URL. */
export async function startServer(): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'imago-e2e-'));
  const env = {
    ...process.env,
    IMAGO_DATA_DIR: dataDir,
    IMAGO_DB__URL: `sqlite:${join(dataDir, 'imago.db')}`,
    IMAGO_HTTP__PORT: '0',
    IMAGO_HTTP__HOST: '127.0.0.1',
    IMAGO_LOG__LEVEL: 'warn',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'packages/cli/src/bin.ts'), 'start', '--demo'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
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
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A fresh context (own cookies and storage) signed in through the login form. */
export async function signedIn(browser: Browser, server: Server, username: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ baseURL: server.url, viewport: { width: 1360, height: 900 } });
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
