import type { Readable } from 'node:stream';
import { z } from 'zod';
import { badRequest, notFound } from '@imago/core';
import type { App } from '@imago/http';
import { ClinicalRecordSchema, clinicalFromCsv, clinicalFromFhir, csvTemplate, parseCsv, CLINICAL_SCHEMA_VERSION, TEMPLATE_VERSIONS } from './clinical.js';
import { getClinical, listClinical, saveClinical, submitDraft } from './clinical-store.js';
import type { SiteNode } from './node.js';
import { receiveStow, stowResponse } from './stow.js';

const SECURED: Array<Record<string, string[]>> = [{ session: [] }, { token: [] }];
const Id = z.object({ id: z.string().min(1).max(100) });
const Entry = z.object({ patientId: z.string().min(1), issuer: z.string().nullish() });
const StatusOut = z.object({
  site: z.string(), hub: z.string().nullable(),
  instances: z.record(z.string(), z.number()), clinical: z.record(z.string(), z.number()), purges: z.record(z.string(), z.number()),
  oldestWaiting: z.object({ id: z.string(), state: z.string(), since: z.string(), ageSeconds: z.number() }).nullable(),
  lastSuccessfulUpload: z.string().nullable(),
  parked: z.array(z.object({ kind: z.enum(['instance', 'clinical']), id: z.string(), reason: z.string().nullable(), since: z.string(), attempts: z.number() })),
  droppedOptOut: z.object({ instances: z.number(), clinical: z.number() }),
});

/** Optout entries from CSV: columns nhs_number, or patient_id (+ issuer). */
export function optoutsFromCsv(text: string): Array<{ patientId: string; issuer: string | null }> {
  const rows = parseCsv(text);
  if (!rows.length) return [];
  const head = rows[0]!.map((h) => h.trim().toLowerCase().replace(/[\s-]+/g, '_'));
  const nhs = head.findIndex((h) => h === 'nhs_number' || h === 'nhsnumber');
  const pid = head.findIndex((h) => h === 'patient_id' || h === 'mrn' || h === 'local_id' || h === 'id');
  const iss = head.findIndex((h) => h === 'issuer' || h === 'patient_id_issuer' || h === 'issuer_of_patient_id');
  const hasHeader = nhs >= 0 || pid >= 0;
  const body = hasHeader ? rows.slice(1) : rows;
  const out: Array<{ patientId: string; issuer: string | null }> = [];
  body.forEach((r, i) => {
    if (hasHeader && nhs >= 0 && r[nhs]?.trim()) out.push({ patientId: r[nhs]!.trim(), issuer: 'NHS' });
    else if (hasHeader && pid >= 0 && r[pid]?.trim()) out.push({ patientId: r[pid]!.trim(), issuer: iss >= 0 ? r[iss]?.trim() || null : null });
    else if (!hasHeader && r[0]?.trim()) out.push({ patientId: r[0]!.trim(), issuer: r[1]?.trim() || null });
    else throw badRequest(`opt-out CSV row ${i + (hasHeader ? 2 : 1)} has no identifier`);
  });
  return out;
}

/**
 * The site API under /api/site/v1 (status, quarantine, queue, opt-out,
 * pseudonyms, clinical data) and STOW-RS at /dicom-web/studies. Routes only
 * translate HTTP; SiteNode authorises and audits.
 */
export async function registerSiteRoutes(app: App, node: SiteNode): Promise<void> {
  await app.register(async (s) => {
    const r = s as unknown as App;
    r.addContentTypeParser('multipart/related', (_req, payload, done) => done(null, payload));
    r.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string', bodyLimit: 64 * 1024 * 1024 }, (_req, body, done) => done(null, body));
    r.addContentTypeParser(['application/fhir+json'], { parseAs: 'string', bodyLimit: 64 * 1024 * 1024 }, (_req, body, done) => {
      try {
        done(null, JSON.parse(String(body)));
      } catch {
        done(badRequest('body is not JSON'), undefined);
      }
    });
    const P = '/api/site/v1';
    const tags = ['site'];

    r.get(`${P}/status`, { schema: { tags, summary: 'Counts per stage, oldest waiting item, last upload, parked items', security: SECURED, response: { 200: StatusOut } } }, async (req) => node.status(req.actor()));

    r.get(`${P}/quarantine`, { schema: { tags, summary: 'Quarantined instances with their reasons', security: SECURED } }, async (req) => ({ items: await node.listQuarantine(req.actor()) }));
    r.post(`${P}/quarantine/:id/release`, { schema: { tags, summary: 'Release a quarantined instance (de-identify it anyway)', security: SECURED, params: Id, body: z.object({ note: z.string().max(500).optional() }).optional() } }, async (req) => {
      await node.reviewQuarantine(req.actor(), req.params.id, 'release', req.body?.note);
      return { id: req.params.id, decision: 'release' };
    });
    r.post(`${P}/quarantine/:id/reject`, { schema: { tags, summary: 'Reject a quarantined instance (delete it)', security: SECURED, params: Id, body: z.object({ note: z.string().max(500).optional() }).optional() } }, async (req) => {
      await node.reviewQuarantine(req.actor(), req.params.id, 'reject', req.body?.note);
      return { id: req.params.id, decision: 'reject' };
    });
    r.post(`${P}/queue/retry-parked`, { schema: { tags, summary: 'Re-queue parked items', security: SECURED, body: z.object({ ids: z.array(z.string()).optional() }).optional() } }, async (req) => ({ retried: await node.retryParked(req.actor(), req.body?.ids) }));

    r.get(`${P}/optouts`, { schema: { tags, summary: 'Opt-out list size (keyed hashes only) and dropped counts', security: SECURED } }, async (req) => node.listOptouts(req.actor()));
    r.post(`${P}/optouts`, { schema: { tags, summary: 'Add patients to the national data opt-out list', security: SECURED, body: z.object({ entries: z.array(Entry).min(1).max(100_000) }) } }, async (req) => node.addOptouts(req.actor(), req.body.entries, 'api'));
    r.post(`${P}/optouts/import`, { schema: { tags, summary: 'Import opt-outs from CSV (nhs_number, or patient_id + issuer)', security: SECURED, consumes: ['text/csv'] } }, async (req) => {
      if (typeof req.body !== 'string') throw badRequest('send the CSV as text/csv');
      return node.addOptouts(req.actor(), optoutsFromCsv(req.body), 'csv');
    });

    r.get(`${P}/pseudonyms/:id`, { schema: { tags, summary: 'Look up a pseudonym (site administrator only; audited)', security: SECURED, params: Id } }, async (req) => {
      const m = await node.lookupPseudonym(req.actor(), req.params.id);
      if (!m) throw notFound('no such pseudonym at this site');
      return m;
    });

    r.get(`${P}/clinical/schema`, { schema: { tags, summary: 'The clinical record schema (JSON Schema) and template versions', security: [] } }, async () => ({
      version: CLINICAL_SCHEMA_VERSION, templateVersions: TEMPLATE_VERSIONS, jsonSchema: z.toJSONSchema(ClinicalRecordSchema, { unrepresentable: 'any' }),
    }));
    r.get(`${P}/clinical/template.csv`, { schema: { tags, summary: 'Download the CSV template (one row per patient)', security: [] } }, async (_req, reply) => {
      reply.header('content-disposition', `attachment; filename="clinical-template-${node.config.site.code}.csv"`).type('text/csv');
      return csvTemplate(node.config.site.code);
    });
    r.get(`${P}/clinical`, { schema: { tags, summary: 'List clinical records (pseudonymised)', security: SECURED, querystring: z.object({ state: z.string().optional(), pseudonym: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }) } }, async (req) => ({
      items: await listClinical(node, req.actor(), req.query),
    }));
    r.get(`${P}/clinical/:id`, { schema: { tags, summary: 'One clinical record', security: SECURED, params: Id } }, async (req) => {
      const c = await getClinical(node, req.actor(), req.params.id);
      if (!c) throw notFound('no such clinical record');
      return c;
    });
    const Input = z.object({ record: z.record(z.string(), z.unknown()), issuer: z.string().nullish() });
    r.post(`${P}/clinical`, { schema: { tags, summary: 'Store clinical records (validated; all or nothing)', security: SECURED, body: z.object({ records: z.array(Input).min(1).max(10_000) }) } }, async (req, reply) => {
      const out = await saveClinical(node, req.actor(), req.body.records, { source: 'api' });
      return reply.status(201).send(out);
    });
    r.post(`${P}/clinical/drafts`, { schema: { tags, summary: 'Save a draft (web form); only kind and patientId are required', security: SECURED, body: Input } }, async (req, reply) => {
      const out = await saveClinical(node, req.actor(), [req.body], { source: 'form', draft: true });
      return reply.status(201).send({ id: out.ids[0] ?? null, ...out });
    });
    r.post(`${P}/clinical/:id/submit`, { schema: { tags, summary: 'Submit a draft after full validation', security: SECURED, params: Id } }, async (req) => submitDraft(node, req.actor(), req.params.id));
    r.post(`${P}/clinical/import/csv`, { schema: { tags, summary: 'Import clinical data from CSV (the template); any error stores nothing', security: SECURED, consumes: ['text/csv'] } }, async (req, reply) => {
      if (typeof req.body !== 'string') throw badRequest('send the CSV as text/csv');
      await node.require(req.actor(), 'site.clinical.write', 'site-clinical');
      const recs = clinicalFromCsv(req.body, { site: node.config.site.code });
      return reply.status(201).send(await saveClinical(node, req.actor(), recs, { source: 'csv' }));
    });
    r.post(`${P}/clinical/import/fhir`, { schema: { tags, summary: 'Import a FHIR R4 Bundle (Patient, Observation/LOINC, Condition/SNOMED CT)', security: SECURED } }, async (req, reply) => {
      await node.require(req.actor(), 'site.clinical.write', 'site-clinical');
      const recs = clinicalFromFhir(req.body, { site: node.config.site.code });
      return reply.status(201).send(await saveClinical(node, req.actor(), recs, { source: 'fhir' }));
    });

    r.post('/dicom-web/studies', { schema: { tags, summary: 'STOW-RS: store instances (multipart/related; type="application/dicom")', security: SECURED } }, async (req, reply) => {
      await node.require(req.actor(), 'site.ingest', 'site-instance');
      const res = await receiveStow(node, req.body as Readable, req.headers['content-type']);
      await node.deps.audit.record({ actor: req.actor(), action: 'site.ingest', code: 'import', resourceType: 'site-instance', outcome: res.failed.length && !res.stored.length ? 'failure' : 'success', detail: { stored: res.stored.length, failed: res.failed.length, via: 'stow-rs' } });
      const base = `${req.protocol}://${req.headers.host ?? 'localhost'}`;
      const status = res.failed.length === 0 ? 200 : res.stored.length ? 202 : 409;
      return reply.status(status).type('application/dicom+json').send(JSON.stringify(stowResponse(res, base)));
    });
  });
}
