import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { conflict, ImagoError, notFound, payloadTooLarge, unprocessable } from '@imago/core';
import type { Actor } from '@imago/audit';
import { renderThumbnail } from '@imago/dicom';
import { DataRecordSchema, StatusRecordSchema } from './clinical.js';
import { HubClient } from './hub-client.js';
import type { SiteNode } from './node.js';

/**
 * Read-side views of the site for the web UI: quarantined images (thumbnail
 * and the identifiable original, which never leaves the site), cases by
 * pseudonym with their studies and clinical summary, and the health of the
 * link to the hub. Every function authorises through `node.require` first and
 * audits what a person saw.
 */

/** Longest side of a quarantine preview: larger than the hub's thumbnails, so a reviewer can read burned-in text. */
export const QUARANTINE_PREVIEW_SIZE = 320;
/** The preview reads the whole original into memory; above this size it is refused (the viewer still streams it). */
const MAX_PREVIEW_BYTES = 256 * 1024 * 1024;

async function quarantined(node: SiteNode, actor: Actor, id: string): Promise<{ path: string; size: number; modality: string | null }> {
  await node.require(actor, 'site.quarantine.review', 'site-instance', id);
  const row = await node.db.db.selectFrom('site_instances').select(['state', 'incoming_path', 'modality']).where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('no such instance');
  if (row.state !== 'quarantine') throw conflict(`instance is ${row.state}, not in quarantine`);
  if (!row.incoming_path) throw notFound('the quarantined original is no longer on this site');
  const path = join(node.root, row.incoming_path);
  const st = await stat(path).catch(() => null);
  if (!st) throw notFound('the quarantined original is no longer on this site');
  return { path, size: st.size, modality: row.modality };
}

async function auditAccess(node: SiteNode, actor: Actor, id: string, what: 'thumbnail' | 'instance', outcome: 'success' | 'failure', reason?: string): Promise<void> {
  await node.deps.audit.record({ actor, action: 'site.quarantine.view', code: 'instancesAccessed', resourceType: 'site-instance', resourceId: id, outcome, detail: { what, ...(reason ? { reason } : {}) } });
}

/**
 * PNG preview of a quarantined (still identifiable) instance, rendered by the
 * shared renderer of `@imago/dicom`. Compressed transfer syntaxes and colour
 * images answer 415 `unsupportedMediaType`; the UI then says "No preview".
 */
export async function quarantineThumbnail(node: SiteNode, actor: Actor, id: string): Promise<Buffer> {
  const q = await quarantined(node, actor, id);
  if (q.size > MAX_PREVIEW_BYTES) throw payloadTooLarge(`the instance is too large to preview (${q.size} bytes); open it in the viewer`, { detail: { reason: 'too-large' } });
  try {
    const png = renderThumbnail(await readFile(q.path), QUARANTINE_PREVIEW_SIZE);
    await auditAccess(node, actor, id, 'thumbnail', 'success');
    return png;
  } catch (e) {
    const err = e instanceof ImagoError ? e : unprocessable('the instance cannot be read as DICOM', { detail: { reason: 'unreadable' } });
    await auditAccess(node, actor, id, 'thumbnail', 'failure', err.code);
    throw err;
  }
}

/** The quarantined original as application/dicom, streamed from disk (for the review viewer; it never leaves the site). */
export async function quarantineInstance(node: SiteNode, actor: Actor, id: string): Promise<{ stream: Readable; size: number }> {
  const q = await quarantined(node, actor, id);
  await auditAccess(node, actor, id, 'instance', 'success');
  return { stream: createReadStream(q.path, { highWaterMark: 1 << 20 }), size: q.size };
}

// ------------------------------------------------------------------ cases

type Shape = Record<string, { shape?: Shape } | unknown>;
const META = new Set(['kind', 'templateVersion', 'submittingSite', 'patientId']);

/** Dotted paths of the NCCID fields of a record schema (nested groups expanded; identifiers and metadata left out). */
function fieldPaths(shape: Shape, prefix = ''): string[] {
  return Object.entries(shape).flatMap(([k, v]) => {
    if (!prefix && META.has(k)) return [];
    const inner = (v as { shape?: Shape }).shape;
    return inner && typeof inner === 'object' ? fieldPaths(inner, `${prefix}${k}.`) : [`${prefix}${k}`];
  });
}

/** NCCID fields per record kind, from the site's own schema. */
export const NCCID_FIELDS = {
  data: fieldPaths(DataRecordSchema.shape as unknown as Shape),
  status: fieldPaths(StatusRecordSchema.shape as unknown as Shape),
} as const;

function getPath(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const p of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

/** Fraction (0–1) of the NCCID fields of the record's template that are filled in (null, undefined and '' count as empty). */
export function clinicalCompleteness(record: Record<string, unknown>): number {
  const fields = record.kind === 'status' ? NCCID_FIELDS.status : NCCID_FIELDS.data;
  const filled = fields.filter((f) => {
    const v = getPath(record, f);
    return v !== null && v !== undefined && v !== '';
  }).length;
  return fields.length ? Math.round((filled / fields.length) * 1000) / 1000 : 0;
}

export interface CaseStudy {
  /** The de-identified StudyInstanceUID when the pipeline recorded it; null for an estimated group. */
  uid: string | null;
  modality: string | null;
  firstReceivedAt: string;
  lastReceivedAt: string;
  instances: number;
  /** True when the study is a group of instances by modality and day received (the site does not record StudyInstanceUID yet). */
  estimated: boolean;
}

export interface CaseSummary {
  pseudonym: string;
  /** Number of studies (see `studyList[].estimated`). */
  studies: number;
  studyList: CaseStudy[];
  /** Instances held or handled for the patient (dropped opt-out rows excluded). */
  instances: number;
  instancesByState: Record<string, number>;
  modalities: string[];
  firstReceivedAt: string | null;
  lastReceivedAt: string | null;
  clinical: { id: string; kind: string; state: string; templateVersion: string; completeness: number; updatedAt: string; records: number } | null;
}

/** Rows that are not counted as a patient's images: opted-out (dropped) data, and duplicates/rejections for studies. */
const HIDDEN = ['dropped-opt-out'];
const NOT_IN_STUDIES = new Set(['duplicate', 'rejected']);

/** Pseudonyms are Crockford base32 with dashes: anything else in a search cannot match and is dropped (no LIKE wildcards get through). */
function likePrefix(q: string): string {
  return `${q.replace(/[^A-Z0-9-]/g, '')}%`;
}

/**
 * Patients at this site by pseudonym (prefix search, case-insensitive), with
 * their studies from `site_instances`, instance counts per pipeline state and
 * a summary of their clinical data. A `data` record wins over a `status`
 * record (as at the hub). Opted-out patients' dropped rows are not shown.
 */
export async function listCases(node: SiteNode, actor: Actor, opts: { q?: string; limit?: number; offset?: number } = {}): Promise<{ items: CaseSummary[]; total: number; limit: number; offset: number }> {
  await node.require(actor, 'site.clinical.read', 'site-case');
  const db = node.db.db;
  const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
  const offset = Math.max(opts.offset ?? 0, 0);
  const q = opts.q?.trim().toUpperCase() ?? '';
  const inst = db.selectFrom('site_instances').select('pseudonym').where('pseudonym', 'is not', null).where('state', 'not in', HIDDEN);
  const clin = db.selectFrom('site_clinical').select('pseudonym').where('state', '!=', 'dropped-opt-out');
  const union = (q ? inst.where('pseudonym', 'like', likePrefix(q)) : inst).union(q ? clin.where('pseudonym', 'like', likePrefix(q)) : clin);
  const all = db.selectFrom(union.as('p')).select('p.pseudonym');
  const totalRow = await db.selectFrom(union.as('p')).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst();
  const total = Number(totalRow?.n ?? 0);
  const page = (await all.orderBy('p.pseudonym').limit(limit).offset(offset).execute()).map((r) => r.pseudonym!).filter(Boolean);
  const items: CaseSummary[] = [];
  if (page.length) {
    // selectAll so that a de-identified StudyInstanceUID column (study_uid), once the pipeline records it, is used as is.
    const rows = await db.selectFrom('site_instances').selectAll().where('pseudonym', 'in', page).where('state', 'not in', HIDDEN).execute();
    const recs = await db.selectFrom('site_clinical').select(['id', 'pseudonym', 'kind', 'state', 'template_version', 'record', 'updated_at']).where('pseudonym', 'in', page).where('state', '!=', 'dropped-opt-out').execute();
    for (const p of page) {
      const mine = rows.filter((r) => r.pseudonym === p);
      const byState: Record<string, number> = {};
      const studies = new Map<string, CaseStudy>();
      const modalities = new Set<string>();
      let first: string | null = null;
      let last: string | null = null;
      for (const r of mine) {
        byState[r.state] = (byState[r.state] ?? 0) + 1;
        if (first === null || r.received_at < first) first = r.received_at;
        if (last === null || r.received_at > last) last = r.received_at;
        if (NOT_IN_STUDIES.has(r.state)) continue;
        if (r.modality) modalities.add(r.modality);
        const uid = (r as { study_uid?: string | null }).study_uid ?? null;
        const key = uid ?? `${r.modality ?? '?'}|${r.received_at.slice(0, 10)}`;
        const s = studies.get(key);
        if (!s) studies.set(key, { uid, modality: r.modality, firstReceivedAt: r.received_at, lastReceivedAt: r.received_at, instances: 1, estimated: uid === null });
        else {
          s.instances++;
          if (r.received_at < s.firstReceivedAt) s.firstReceivedAt = r.received_at;
          if (r.received_at > s.lastReceivedAt) s.lastReceivedAt = r.received_at;
        }
      }
      const cr = recs.filter((r) => r.pseudonym === p).sort((a, b) => (a.kind === b.kind ? b.updated_at.localeCompare(a.updated_at) : a.kind === 'data' ? -1 : 1));
      const top = cr[0];
      const studyList = [...studies.values()].sort((a, b) => a.firstReceivedAt.localeCompare(b.firstReceivedAt));
      items.push({
        pseudonym: p, studies: studyList.length, studyList, instances: mine.length, instancesByState: byState,
        modalities: [...modalities].sort(), firstReceivedAt: first, lastReceivedAt: last,
        clinical: top ? { id: top.id, kind: top.kind, state: top.state, templateVersion: top.template_version, completeness: clinicalCompleteness(JSON.parse(top.record) as Record<string, unknown>), updatedAt: top.updated_at, records: cr.length } : null,
      });
    }
  }
  await node.deps.audit.record({ actor, action: 'site.cases.read', code: 'query', resourceType: 'site-case', outcome: 'success', detail: { ...(q ? { q } : {}), limit, offset, returned: items.length, total } });
  return { items, total, limit, offset };
}

// ------------------------------------------------------------------ hub link

export interface HubLinkHealth {
  configured: boolean;
  reachable: boolean;
  latencyMs: number | null;
  checkedAt: string | null;
  hub: string | null;
  error?: string;
}

/** How long a ping result is reused: the Status screen polls every 3 s and must not turn into a ping per poll per user. */
export const HUB_LINK_CACHE_MS = 5_000;
const PING_TIMEOUT_MS = 5_000;
const linkCache = new WeakMap<SiteNode, { at: number; value: Promise<HubLinkHealth> }>();

async function ping(node: SiteNode): Promise<HubLinkHealth> {
  const { hubUrl, hubToken, code } = node.config.site;
  if (!hubUrl || !hubToken) return { configured: false, reachable: false, latencyMs: null, checkedAt: null, hub: hubUrl ?? null };
  const client = new HubClient({ hubUrl, token: hubToken, site: code, timeoutMs: PING_TIMEOUT_MS });
  const t0 = performance.now();
  try {
    const r = await client.ping();
    const latencyMs = Math.round(performance.now() - t0);
    if (!r?.ok) return { configured: true, reachable: false, latencyMs, checkedAt: new Date().toISOString(), hub: hubUrl, error: 'the hub answered without ok' };
    return { configured: true, reachable: true, latencyMs, checkedAt: new Date().toISOString(), hub: hubUrl };
  } catch (e) {
    return { configured: true, reachable: false, latencyMs: null, checkedAt: new Date().toISOString(), hub: hubUrl, error: (e as Error).message.slice(0, 300) };
  }
}

/** Health of the link to the hub (`GET /api/hub/v1/ping` with the site's token), cached for a few seconds. */
export async function hubLinkHealth(node: SiteNode, actor: Actor, opts: { fresh?: boolean } = {}): Promise<HubLinkHealth> {
  await node.require(actor, 'site.status.read', 'site-status');
  const c = linkCache.get(node);
  if (c && !opts.fresh && Date.now() - c.at < HUB_LINK_CACHE_MS) return c.value;
  const value = ping(node);
  linkCache.set(node, { at: Date.now(), value });
  return value;
}
