import type { Readable } from 'node:stream';
import { z } from 'zod';
import { badRequest, type Action } from '@imago/core';
import type { App } from '@imago/http';
import type { Hub } from './hub.js';
import { qido, checkDicomAccept, wadoMetadata, wadoRetrieve, wadoThumbnail, type QidoLevel, type QidoQuery } from './dicomweb.js';
import { createRelease, getRelease, listReleases, releaseCatalogue, releaseManifest, verifyRelease } from './release.js';
import { hubStats } from './stats.js';

export const HUB_PREFIX = '/api/hub/v1';

/** How a route is authorised before its body is read (the data layer checks again). */
export type HubAuth = { action: Action; site?: boolean } | { ping: true };

declare module 'fastify' {
  interface FastifyContextConfig {
    hubAuth?: HubAuth;
  }
}

const SECURED: Array<Record<string, string[]>> = [{ token: [] }, { session: [] }];
const SITE_SECURED: Array<Record<string, string[]>> = [{ token: [] }];

const SiteParam = z.object({ site: z.string().regex(/^[A-Z0-9_-]{2,32}$/) });
const Sha = z.string().regex(/^[0-9a-fA-F]{64}$/);
const SiteView = z.object({
  code: z.string(), name: z.string(), region: z.string(), sharesData: z.boolean(), splitMode: z.enum(['training', 'validation', 'percent']),
  trainingPercent: z.number(), rule: z.string(), createdAt: z.string(), updatedAt: z.string(),
});
const PutResult = z.object({ sha256: z.string(), instanceKey: z.string(), status: z.enum(['stored', 'already-stored']) });
const ErrorBody = z.object({ error: z.string(), message: z.string(), issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(), detail: z.record(z.string(), z.unknown()).optional() });
const Group = z.enum(['training', 'validation']);

/**
 * Mount the hub API under /api/hub/v1: the site API (site_uplink tokens,
 * each site only as itself), the operator API, and DICOMweb for operators.
 * Returns the list of routes registered, for the route × role tests.
 */
export async function registerHubRoutes(app: App, hub: Hub): Promise<Array<{ method: string; url: string }>> {
  const routes: Array<{ method: string; url: string }> = [];
  await app.register(async (s0) => {
    const s = s0 as unknown as App;
    s.addHook('onRoute', (r) => {
      for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m, url: r.url });
    });
    // The instance body is streamed straight into the blob store, never buffered whole.
    s.addContentTypeParser('application/dicom', (_req, payload, done) => done(null, payload));
    // Authorise before the body is validated or used. (preValidation: an unread
    // application/dicom stream is drained on refusal so the client sees the answer.)
    s.addHook('preValidation', async (req) => {
      const a = req.routeOptions.config.hubAuth;
      const actor = req.actor();
      if (!a) return;
      try {
        if ('ping' in a) await hub.siteOfPrincipal(actor);
        else if (a.site) await hub.requireSite(actor, a.action, (req.params as { site?: string }).site ?? '');
        else await hub.require(actor, a.action, req.routeOptions.url ?? 'hub');
      } catch (e) {
        const b = req.body as { resume?: () => void } | undefined;
        if (b && typeof b.resume === 'function') b.resume();
        throw e;
      }
    });
    // DICOMweb calls that fail after authorisation are audited too.
    s.addHook('onError', async (req, _reply, err) => {
      if (!req.routeOptions.url?.includes('/dicomweb')) return;
      const code = (err as { code?: unknown }).code;
      if (code === 'forbidden' || code === 'unauthorized') return; // denials are audited by the policy check
      if (req.principal.kind === 'anonymous') return;
      await hub.audit.record({ actor: req.actor(), action: 'hub.dicomweb', code: 'query', resourceType: 'hub.dicomweb', resourceId: req.routeOptions.url ?? null, outcome: 'failure', detail: { error: typeof code === 'string' ? code : 'internal' } }).catch(() => undefined);
    });
    const baseUrl = (host: string | undefined) => `${hub.config.http.publicUrl ?? `http://${host ?? 'localhost'}`}${HUB_PREFIX}/dicomweb`.replace(/([^:])\/\//g, '$1/');

    // ---- site API -----------------------------------------------------------
    s.get('/ping', {
      config: { hubAuth: { ping: true } },
      schema: { tags: ['hub site API'], summary: 'Check connectivity and credentials of a site uplink token', security: SITE_SECURED, response: { 200: z.object({ site: z.string(), ok: z.literal(true) }) } },
    }, async (req) => hub.ping(req.actor()));

    s.put('/sites/:site/instances/:sha256', {
      config: { hubAuth: { action: 'hub.submit', site: true } },
      schema: {
        tags: ['hub site API'],
        summary: 'Store one de-identified DICOM Part 10 instance (body application/dicom, streamed)',
        description: 'The hub recomputes the SHA-256 while streaming into the blob store and refuses a mismatch (422, nothing kept). It then verifies de-identification: PatientIdentityRemoved=YES, DeidentificationMethod present, PatientID of the pseudonym form IMG-XXXX-XXXX-XXXX-XXXX, no PatientBirthDate value; a failure is 422 with the reason and the blob is removed. 201 when stored, 200 when already held.',
        security: SITE_SECURED,
        consumes: ['application/dicom'],
        params: SiteParam.extend({ sha256: Sha }),
        response: { 200: PutResult, 201: PutResult, 413: ErrorBody, 422: ErrorBody },
      },
    }, async (req, reply) => {
      const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (ct !== 'application/dicom') throw badRequest('body must be application/dicom');
      const body = req.body as Readable;
      try {
        const r = await hub.putInstance(req.actor(), req.params.site, req.params.sha256, body);
        return await reply.status(r.status === 'stored' ? 201 : 200).send(r);
      } catch (e) {
        if (!body.readableEnded) {
          // Over the size limit: do not read the rest, close the connection after answering.
          if ((e as { code?: unknown }).code === 'payloadTooLarge') reply.header('connection', 'close');
          else body.resume();
        }
        throw e;
      }
    });

    s.get('/sites/:site/instances/:sha256', {
      config: { hubAuth: { action: 'hub.submit', site: true } },
      schema: { tags: ['hub site API'], summary: 'Whether the hub holds an instance from this site (re-check after an ambiguous upload)', security: SITE_SECURED, params: SiteParam.extend({ sha256: Sha }), response: { 200: z.object({ sha256: z.string(), instanceKey: z.string() }) } },
    }, async (req) => hub.findInstance(req.actor(), req.params.site, req.params.sha256.toLowerCase()));

    s.post('/sites/:site/check', {
      config: { hubAuth: { action: 'hub.submit', site: true } },
      schema: { tags: ['hub site API'], summary: 'Which of these instance hashes the hub holds from this site', security: SITE_SECURED, params: SiteParam, body: z.object({ sha256: z.array(z.string()).max(10000) }), response: { 200: z.object({ present: z.array(z.string()) }) } },
    }, async (req) => ({ present: await hub.checkInstances(req.actor(), req.params.site, req.body.sha256) }));

    s.post('/sites/:site/clinical', {
      config: { hubAuth: { action: 'hub.submit', site: true } },
      schema: {
        tags: ['hub site API'], summary: 'Submit clinical records; each confirmed by the sha256 of the canonical JSON of `record`', security: SITE_SECURED, params: SiteParam,
        body: z.object({
          records: z.array(z.object({
            id: z.string().min(1).max(128), sha256: z.string().max(64), pseudonym: z.string().max(64), kind: z.enum(['data', 'status']), templateVersion: z.string().min(1).max(64),
            receivedAt: z.string().max(64), record: z.record(z.string(), z.unknown()),
          })).max(1000),
        }),
        response: { 200: z.object({ results: z.array(z.object({ id: z.string(), sha256: z.string(), status: z.enum(['stored', 'already-stored', 'rejected']), reason: z.string().optional() })) }) },
      },
    }, async (req) => ({ results: await hub.submitClinical(req.actor(), req.params.site, req.body.records) }));

    s.post('/sites/:site/purges', {
      config: { hubAuth: { action: 'hub.purge.request.site', site: true } },
      schema: {
        tags: ['hub site API'], summary: 'Request purges (opt-out) of the site’s own patients', security: SITE_SECURED, params: SiteParam,
        body: z.object({ requests: z.array(z.object({ id: z.string().min(1).max(128), pseudonym: z.string().max(64), reason: z.string().max(500).optional() })).max(1000) }),
        response: { 200: z.object({ results: z.array(z.object({ id: z.string(), status: z.enum(['purged', 'already-purged']), evidenceId: z.string() })) }) },
      },
    }, async (req) => ({ results: await hub.sitePurges(req.actor(), req.params.site, req.body.requests) }));

    // ---- operator API ----------------------------------------------------------
    const op = (action: Action) => ({ hubAuth: { action } });
    s.post('/sites', {
      config: op('hub.site.manage'),
      schema: {
        tags: ['hub operator'], summary: 'Register a site; returns its uplink token once', security: SECURED,
        body: z.object({ code: z.string().regex(/^[A-Z0-9_-]{2,32}$/), name: z.string().min(1).max(200), region: z.string().min(1).max(100), sharesData: z.boolean().default(false), splitMode: z.enum(['training', 'validation', 'percent']).default('percent'), trainingPercent: z.number().int().min(0).max(100).optional() }),
        response: { 201: z.object({ site: SiteView, token: z.string(), tokenId: z.string() }) },
      },
    }, async (req, reply) => reply.status(201).send(await hub.registerSite(req.actor(), req.body)));

    s.get('/sites', { config: op('hub.site.manage'), schema: { tags: ['hub operator'], summary: 'List sites', security: SECURED, response: { 200: z.object({ sites: z.array(SiteView) }) } } },
      async (req) => ({ sites: await hub.listSites(req.actor()) }));

    s.get('/sites/:site', { config: op('hub.site.manage'), schema: { tags: ['hub operator'], summary: 'One site', security: SECURED, params: SiteParam, response: { 200: SiteView } } },
      async (req) => hub.getSite(req.actor(), req.params.site));

    s.patch('/sites/:site', {
      config: op('hub.site.manage'),
      schema: {
        tags: ['hub operator'], summary: 'Change a site (split rule, sharing); patients already assigned keep their group', security: SECURED, params: SiteParam,
        body: z.object({ name: z.string().min(1).max(200).optional(), region: z.string().min(1).max(100).optional(), sharesData: z.boolean().optional(), splitMode: z.enum(['training', 'validation', 'percent']).optional(), trainingPercent: z.number().int().min(0).max(100).optional() }),
        response: { 200: SiteView },
      },
    }, async (req) => hub.updateSite(req.actor(), req.params.site, req.body));

    s.post('/sites/:site/tokens', {
      config: op('hub.site.manage'),
      schema: { tags: ['hub operator'], summary: 'Issue a new uplink token for a site', security: SECURED, params: SiteParam, body: z.object({ revokeOthers: z.boolean().default(false) }).optional(), response: { 201: z.object({ token: z.string(), tokenId: z.string(), revoked: z.number() }) } },
    }, async (req, reply) => reply.status(201).send(await hub.issueSiteToken(req.actor(), req.params.site, { revokeOthers: req.body?.revokeOthers ?? false })));

    s.delete('/sites/:site/tokens', {
      config: op('hub.site.manage'),
      schema: { tags: ['hub operator'], summary: 'Revoke every active uplink token of a site without issuing a new one', security: SECURED, params: SiteParam, response: { 200: z.object({ revoked: z.number(), tokenIds: z.array(z.string()) }) } },
    }, async (req) => hub.revokeSiteTokens(req.actor(), req.params.site));

    s.get('/split/conflicts', {
      config: op('hub.stats.read'),
      schema: { tags: ['hub operator'], summary: 'Patients found in both groups (never resolved silently)', security: SECURED, response: { 200: z.object({ conflicts: z.array(z.object({ id: z.string(), pseudonym: z.string(), site: z.string(), assignedGroup: z.string(), claimedGroup: z.string(), reason: z.string(), detectedAt: z.string() })) }) } },
    }, async (req) => ({ conflicts: await hub.splitConflicts(req.actor()) }));

    s.get('/stats', {
      config: op('hub.stats.read'),
      schema: { tags: ['hub operator'], summary: 'Data quality and representativeness: counts over time, clinical completeness, distributions against the reference population, split balance', security: SECURED, querystring: z.object({ bucket: z.enum(['day', 'month']).optional() }) },
    }, async (req) => hubStats(hub, req.actor(), req.query.bucket ? { bucket: req.query.bucket } : {}));

    s.get('/patients/:pseudonym/clinical', {
      config: op('hub.stats.read'),
      schema: { tags: ['hub operator'], summary: 'Linked clinical view of a patient (newest data record wins over status; linked sources merged with provenance; history)', security: SECURED, params: z.object({ pseudonym: z.string().max(64) }) },
    }, async (req) => hub.clinicalFor(req.actor(), req.params.pseudonym));

    s.post('/purges', {
      config: op('hub.purge.request'),
      schema: { tags: ['hub operator'], summary: 'Purge a patient by pseudonym everywhere (opt-out)', security: SECURED, body: z.object({ pseudonym: z.string().max(64), reason: z.string().max(500).optional() }), response: { 200: z.object({ status: z.enum(['purged', 'already-purged']), evidenceId: z.string(), counts: z.record(z.string(), z.number()) }) } },
    }, async (req) => hub.purge(req.actor(), req.body.pseudonym, req.body.reason ? { reason: req.body.reason } : {}));

    s.get('/purges', { config: op('hub.purge.request'), schema: { tags: ['hub operator'], summary: 'Purge evidence (counts and hashes, never the identity)', security: SECURED } },
      async (req) => ({ purges: await hub.listPurges(req.actor()) }));

    s.post('/link', {
      config: op('hub.link.import'),
      schema: { tags: ['hub operator'], summary: 'Import an external source keyed by pseudonym (CSV, JSON or NDJSON text)', security: SECURED, body: z.object({ source: z.string().min(1).max(64), fileName: z.string().min(1).max(256), content: z.string() }) },
    }, async (req) => hub.importLinked(req.actor(), req.body));

    // ---- releases -----------------------------------------------------------------
    const RelParam = z.object({ release: z.string().min(1).max(128) });
    s.post('/releases', {
      config: op('hub.release.manage'),
      schema: { tags: ['hub releases'], summary: 'Freeze an immutable, versioned release (training and validation hashed separately)', security: SECURED, body: z.object({ title: z.string().max(200).optional(), description: z.string().max(2000).optional() }).optional() },
    }, async (req, reply) => reply.status(201).send(await createRelease(hub, req.actor(), { ...(req.body?.title ? { title: req.body.title } : {}), ...(req.body?.description ? { description: req.body.description } : {}) })));
    s.get('/releases', { config: op('hub.release.read'), schema: { tags: ['hub releases'], summary: 'List releases', security: SECURED } },
      async (req) => ({ releases: await listReleases(hub, req.actor()) }));
    s.get('/releases/:release', { config: op('hub.release.read'), schema: { tags: ['hub releases'], summary: 'One release with its datasheet (id, version or identifier)', security: SECURED, params: RelParam } },
      async (req) => getRelease(hub, req.actor(), req.params.release));
    s.get('/releases/:release/manifest', {
      config: op('hub.release.read'),
      schema: { tags: ['hub releases'], summary: 'Manifest of one group as served now (purged patients withheld, and marked)', security: SECURED, params: RelParam, querystring: z.object({ group: Group.default('training') }) },
    }, async (req) => releaseManifest(hub, req.actor(), req.params.release, req.query.group));
    s.get('/releases/:release/datasheet.md', { config: op('hub.release.read'), schema: { tags: ['hub releases'], summary: 'Datasheet as Markdown', security: SECURED, params: RelParam } },
      async (req, reply) => reply.type('text/markdown; charset=utf-8').send((await getRelease(hub, req.actor(), req.params.release)).datasheetMarkdown));
    s.get('/releases/:release/catalog.jsonld', { config: op('hub.release.read'), schema: { tags: ['hub releases'], summary: 'DCAT catalogue entry (JSON-LD) for discovery portals', security: SECURED, params: RelParam } },
      async (req, reply) => reply.type('application/ld+json').send(JSON.stringify(await releaseCatalogue(hub, req.actor(), req.params.release, hub.config.http.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`))));
    s.post('/releases/:release/verify', { config: op('hub.release.manage'), schema: { tags: ['hub releases'], summary: 'Verify a release against the blobs and its frozen hashes', security: SECURED, params: RelParam } },
      async (req) => verifyRelease(hub, req.actor(), req.params.release));

    // ---- DICOMweb (operators) --------------------------------------------------------
    const dw = op('hub.dicomweb.read');
    const Q = z.record(z.string(), z.union([z.string(), z.array(z.string())]));
    const sendJson = (reply: { type(t: string): { send(b: string): unknown } }, body: unknown) => reply.type('application/dicom+json').send(typeof body === 'string' ? body : JSON.stringify(body));
    const qroute = (url: string, level: QidoLevel, summary: string) => {
      s.get(`/dicomweb${url}`, { config: dw, schema: { tags: ['hub DICOMweb'], summary, security: SECURED, querystring: Q } }, async (req, reply) => {
        const p = req.params as { study?: string; series?: string };
        const scope = { ...(p.study ? { studyUid: p.study } : {}), ...(p.series ? { seriesUid: p.series } : {}) };
        return sendJson(reply, await qido(hub, req.actor(), level, req.query as QidoQuery, scope, baseUrl(req.headers.host)));
      });
    };
    qroute('/studies', 'study', 'QIDO-RS: search studies');
    qroute('/series', 'series', 'QIDO-RS: search series');
    qroute('/instances', 'instance', 'QIDO-RS: search instances');
    qroute('/studies/:study/series', 'series', 'QIDO-RS: series of a study');
    qroute('/studies/:study/instances', 'instance', 'QIDO-RS: instances of a study');
    qroute('/studies/:study/series/:series/instances', 'instance', 'QIDO-RS: instances of a series');

    type P = { study: string; series?: string; instance?: string };
    const target = (p: P) => ({ studyUid: p.study, seriesUid: p.series, sopUid: p.instance });
    for (const [url, what] of [['/studies/:study', 'study'], ['/studies/:study/series/:series', 'series'], ['/studies/:study/series/:series/instances/:instance', 'instance']] as const) {
      s.get(`/dicomweb${url}`, { config: dw, schema: { tags: ['hub DICOMweb'], summary: `WADO-RS: retrieve a ${what} (multipart/related; type="application/dicom")`, security: SECURED } }, async (req, reply) => {
        checkDicomAccept(req.headers.accept);
        const r = await wadoRetrieve(hub, req.actor(), target(req.params as P));
        return reply.type(r.contentType).send(r.body);
      });
      s.get(`/dicomweb${url}/metadata`, { config: dw, schema: { tags: ['hub DICOMweb'], summary: `WADO-RS: metadata of a ${what} as DICOM JSON`, security: SECURED } }, async (req, reply) =>
        sendJson(reply, await wadoMetadata(hub, req.actor(), target(req.params as P))));
      s.get(`/dicomweb${url}/thumbnail`, { config: dw, schema: { tags: ['hub DICOMweb'], summary: `WADO-RS: rendered PNG thumbnail of a ${what}`, security: SECURED } }, async (req, reply) =>
        reply.type('image/png').send(await wadoThumbnail(hub, req.actor(), target(req.params as P), req.headers.accept)));
    }
  }, { prefix: HUB_PREFIX });
  return routes;
}
