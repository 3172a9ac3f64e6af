import { z } from 'zod';
import type { App } from '@imago/http';
import { hubLinkHealth, listCases, quarantineInstance, quarantineThumbnail } from './cases.js';
import type { SiteNode } from './node.js';

const SECURED: Array<Record<string, string[]>> = [{ session: [] }, { token: [] }];
const Id = z.object({ id: z.string().min(1).max(100) });

const Study = z.object({ uid: z.string().nullable(), modality: z.string().nullable(), firstReceivedAt: z.string(), lastReceivedAt: z.string(), instances: z.number(), estimated: z.boolean() });
const Case = z.object({
  pseudonym: z.string(),
  studies: z.number(),
  studyList: z.array(Study),
  instances: z.number(),
  instancesByState: z.record(z.string(), z.number()),
  modalities: z.array(z.string()),
  firstReceivedAt: z.string().nullable(),
  lastReceivedAt: z.string().nullable(),
  clinical: z.object({ id: z.string(), kind: z.string(), state: z.string(), templateVersion: z.string(), completeness: z.number(), updatedAt: z.string(), records: z.number() }).nullable(),
});
const CasesOut = z.object({ items: z.array(Case), total: z.number(), limit: z.number(), offset: z.number() });
const HubLinkOut = z.object({ configured: z.boolean(), reachable: z.boolean(), latencyMs: z.number().nullable(), checkedAt: z.string().nullable(), hub: z.string().nullable(), error: z.string().optional() });

/**
 * Site API read views for the web UI: quarantine previews and originals,
 * cases by pseudonym, hub link health. Routes only translate HTTP; the data
 * layer (cases.ts) authorises and audits.
 */
export async function registerCaseRoutes(app: App, node: SiteNode): Promise<void> {
  await app.register(async (s) => {
    const r = s as unknown as App;
    const P = '/api/site/v1';
    const tags = ['site'];

    r.get(`${P}/quarantine/:id/thumbnail`, {
      schema: { tags, summary: 'PNG preview of a quarantined instance (uncompressed grayscale; otherwise 415)', security: SECURED, params: Id, produces: ['image/png'] },
    }, async (req, reply) => {
      const png = await quarantineThumbnail(node, req.actor(), req.params.id);
      return reply.type('image/png').header('cache-control', 'private, no-store').send(png);
    });
    r.get(`${P}/quarantine/:id/instance`, {
      schema: { tags, summary: 'The quarantined (identifiable) original as application/dicom, for review at the site', security: SECURED, params: Id, produces: ['application/dicom'] },
    }, async (req, reply) => {
      const { stream, size } = await quarantineInstance(node, req.actor(), req.params.id);
      return reply.type('application/dicom').header('content-length', size).header('cache-control', 'private, no-store').send(stream);
    });

    r.get(`${P}/cases`, {
      schema: {
        tags, summary: 'Patients by pseudonym with their studies, instances per state and a clinical summary', security: SECURED,
        querystring: z.object({ q: z.string().max(40).optional(), limit: z.coerce.number().int().min(1).max(500).optional(), offset: z.coerce.number().int().min(0).optional() }),
        response: { 200: CasesOut },
      },
    }, async (req) => listCases(node, req.actor(), req.query));

    r.get(`${P}/hub-link`, {
      schema: { tags, summary: 'Health of the link to the hub (ping with the site token; cached for a few seconds)', security: SECURED, response: { 200: HubLinkOut } },
    }, async (req) => hubLinkHealth(node, req.actor()));
  });
}
