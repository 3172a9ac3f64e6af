import { mkdirSync, existsSync, writeFileSync, readFileSync, chmodSync, statSync } from 'node:fs';
import { join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, newSecret, notFound, type Config, type Logger } from '@imago/core';
import { AuditLog } from '@imago/audit';
import { openDatabase, type ImagoDb } from '@imago/db';
import { Identity, OidcLogin, systemActor } from '@imago/identity';
import { loadDemoDataset } from './demo.js';
import { createHttpServer, registerAuditRoutes, registerAuthRoutes, type App } from '@imago/http';

export interface Platform {
  config: Config;
  logger: Logger;
  db: ImagoDb;
  audit: AuditLog;
  identity: Identity;
  app: App;
  /** The site part, when this process runs one. */
  site: import('@imago/site').SitePart | null;
  /** Base URL once listening. */
  url: string;
  close(): Promise<void>;
}

export interface Core {
  config: Config;
  logger: Logger;
  db: ImagoDb;
  audit: AuditLog;
  identity: Identity;
  close(): Promise<void>;
}

/** Open the shared services (database, audit, identity) without HTTP: what CLI commands use. */
export async function openCore(config: Config, opts: { logger?: Logger } = {}): Promise<Core> {
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  mkdirSync(resolve(config.dataDir), { recursive: true });
  const db = await openDatabase(config.db.url, { poolSize: config.db.poolSize });
  const audit = new AuditLog(db);
  const identity = new Identity(db, audit, config.auth);
  return { config, logger, db, audit, identity, close: () => db.close() };
}

export const DEMO_ORGS = [
  { code: 'HUB', name: 'Imago national hub', kind: 'hub' },
  { code: 'DEMO1', name: 'Demo General Hospital', kind: 'hospital' },
  { code: 'UNIV1', name: 'Demo University', kind: 'university' },
] as const;

export const DEMO_USERS = [
  { username: 'operator', displayName: 'Olu Operator', grants: [{ role: 'platform_operator', org: null }] },
  { username: 'siteadmin', displayName: 'Sam Siteadmin', grants: [{ role: 'site_admin', org: 'DEMO1' }] },
  { username: 'datamanager', displayName: 'Dana Datamanager', grants: [{ role: 'site_data_manager', org: 'DEMO1' }] },
  { username: 'researcher', displayName: 'Rae Researcher', grants: [{ role: 'researcher', org: 'UNIV1' }] },
  { username: 'dac', displayName: 'Dee Committee', grants: [{ role: 'dac_member', org: null }] },
  { username: 'validator', displayName: 'Val Validator', grants: [{ role: 'validator', org: null }] },
  { username: 'safety', displayName: 'Cleo Safety', grants: [{ role: 'clinical_safety_officer', org: 'DEMO1' }] },
  { username: 'radiologist', displayName: 'Ray Radiologist', grants: [{ role: 'radiologist', org: 'DEMO1' }] },
] as const;

/**
 * Create the demo organisations and users the first time. Passwords are random,
 * printed once, and kept in DATA/demo-logins.txt (mode 600) for the local user.
 */
export async function ensureDemoUsers(core: Core): Promise<Array<{ username: string; password: string; roles: string }>> {
  const file = join(resolve(core.config.dataDir), 'demo-logins.txt');
  for (const o of DEMO_ORGS) await core.identity.ensureOrganisation(o.code, o.name, o.kind);
  const created: Array<{ username: string; password: string; roles: string }> = [];
  for (const u of DEMO_USERS) {
    if (await core.identity.findUserByUsername(u.username)) continue;
    const password = newSecret(12);
    await core.identity.addUser('system', { username: u.username, displayName: u.displayName, password, grants: u.grants.map((g) => ({ ...g })) });
    created.push({ username: u.username, password, roles: u.grants.map((g) => (g.org ? `${g.role}@${g.org}` : g.role)).join(', ') });
  }
  if (created.length) {
    const prior = existsSync(file) ? readFileSync(file, 'utf8') : '';
    writeFileSync(file, prior + created.map((c) => `${c.username}\t${c.password}\t${c.roles}`).join('\n') + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return created;
}

export function readDemoLogins(config: Config): Array<{ username: string; password: string; roles: string }> {
  const file = join(resolve(config.dataDir), 'demo-logins.txt');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const [username = '', password = '', roles = ''] = l.split('\t');
    return { username, password, roles };
  });
}

/** Start every part of the platform in this process. */
export async function startPlatform(config: Config, opts: { demo?: boolean; logger?: Logger; onProgress?: (msg: string) => void } = {}): Promise<Platform> {
  const core = await openCore(config, opts);
  // The port must be known before the site part starts when it uploads to this
  // same process; port 0 means "any free port", so pick one now.
  if (config.http.port === 0 && config.parts.site && config.parts.hub && !config.site.hubUrl) config.http.port = await freeLoopbackPort();
  const { logger, db, audit, identity } = core;
  const publicUrl = config.http.publicUrl ?? `http://${config.http.host}:${config.http.port}`;
  const oidc = config.auth.oidc ? new OidcLogin(config.auth.oidc, identity, new URL('/api/auth/oidc/callback', publicUrl).toString()) : undefined;
  const app = await createHttpServer({ config, logger, db, audit, identity, ...(oidc ? { oidc } : {}) });
  await registerAuthRoutes(app, { config, logger, db, audit, identity, ...(oidc ? { oidc } : {}) });
  // ---- hub (packages/hub): warehouse API, site API and DICOMweb under /api/hub/v1 ----
  if (config.parts.hub) {
    const { createHub, registerHubRoutes } = await import('@imago/hub');
    const hub = createHub({ config, db, audit, identity, logger });
    await registerHubRoutes(app, hub);
    // All-in-one: the local site node uploads to this process's own hub.
    if (config.parts.site && !config.site.hubUrl) await linkLocalSite(config, hub, logger);
  }
  // ---- end hub ----
  await registerAuditRoutes(app, { config, logger, db, audit, identity, ...(oidc ? { oidc } : {}) });
  // --- web UI (packages/web): built SPA at /, fallback to index.html outside /api and /dicom-web ---
  await registerWebUi(app, logger, { oidc: !!oidc });
  // --- end web UI ---
  // --- site part (packages/site): site API routes, DIMSE server, pipeline workers ---
  const sitePart = config.parts.site ? await (await import('@imago/site')).startSite({ config, logger, db, audit, app }) : null;
  // --- end site part ---
  if (opts.demo) await ensureDemoUsers(core);
  await app.listen({ host: config.http.host, port: config.http.port });
  if (opts.demo && sitePart) {
    const r = await loadDemoDataset(sitePart.node, config.dataDir, logger, opts.onProgress);
    if (!r.skipped) opts.onProgress?.(`demo dataset: ${r.instances} instances and ${r.clinicalRecords} clinical records entered the site pipeline`);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
  const url = config.http.publicUrl ?? `http://${config.http.host}:${port}`;
  await audit.record({ actor: systemActor(), action: 'platform.start', code: 'applicationActivity', resourceType: 'platform', outcome: 'success', detail: { parts: config.parts } });
  return {
    config, logger, db, audit, identity, app, url, site: sitePart,
    async close() {
      await sitePart?.close(); // site part
      await app.close();
      await db.close();
    },
  };
}

// --- web UI (packages/web) ---------------------------------------------------
// The built single-page app (packages/web/dist, `npm run build -w @imago/web`)
// is served at /. Any GET outside /api and /dicom-web that is not a file falls
// back to index.html so that client-side routes survive a reload.
const WEB_DIST = fileURLToPath(new URL('../../web/dist/', import.meta.url));

async function registerWebUi(app: App, logger: Logger, ui: { oidc: boolean }): Promise<void> {
  // What the sign-in page needs to know before anyone is signed in.
  app.get('/api/ui/config', { schema: { hide: true } }, async () => ({ oidc: ui.oidc }));
  const fastifyStatic = (await import('@fastify/static')).default;
  const built = () => existsSync(join(WEB_DIST, 'index.html'));
  if (!built()) logger.warn({ dist: WEB_DIST }, 'web UI is not built; run `npm run build -w @imago/web`');
  await app.register(fastifyStatic, { root: WEB_DIST, serve: false });
  app.get('/*', { schema: { hide: true } }, async (req, reply) => {
    let path: string;
    try {
      path = decodeURIComponent(req.url.split('?')[0] ?? '/');
    } catch {
      throw notFound('no such page');
    }
    if (/^\/(api|dicom-web)(\/|$)/.test(path)) throw notFound(`no route ${req.method} ${path}`);
    if (!built()) return reply.status(503).type('text/plain').send('The web UI is not built. Run: npm run build -w @imago/web');
    const rel = normalize(path).replace(/^([/\\])+/, '');
    if (rel && !rel.startsWith('..') && existsSync(join(WEB_DIST, rel)) && statSync(join(WEB_DIST, rel)).isFile()) {
      const immutable = rel.startsWith('assets/');
      return reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache').sendFile(rel);
    }
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  });
}
// --- end web UI ----------------------------------------------------------------

// --- all-in-one site ↔ hub link ---------------------------------------------------
/**
 * When one process runs both the site node and the hub, register the local site
 * at the hub the first time, keep its uplink token in DATA/site/hub-token
 * (mode 600), and point the site's uplink at this process over loopback. The
 * site still talks to the hub only through the site API with its own token.
 */
async function linkLocalSite(config: Config, hub: import('@imago/hub').Hub, logger: Logger): Promise<void> {
  const dir = join(resolve(config.dataDir), 'site');
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, 'hub-token');
  const operator = { principal: { kind: 'user' as const, id: 'system', name: 'local-hub-link', grants: [{ role: 'platform_operator', orgId: null }] }, ip: null };
  let token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  if (!token) {
    const code = config.site.code;
    const known = (await hub.listSites(operator)).some((s) => s.code === code);
    token = known
      ? (await hub.issueSiteToken(operator, code)).token
      : (await hub.registerSite(operator, { code, name: `${code} (local site node)`, region: 'local', sharesData: false })).token;
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    chmodSync(tokenFile, 0o600);
    logger.info({ site: code }, 'registered the local site node at the local hub');
  }
  config.site.hubUrl = `http://127.0.0.1:${config.http.port}`;
  config.site.hubToken = token;
}

async function freeLoopbackPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}
// --- end all-in-one link -------------------------------------------------------------
