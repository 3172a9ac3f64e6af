import { notFound, unprocessable, type FieldIssue } from '@imago/core';
import type { Actor } from '@imago/audit';
import { nowIso } from '@imago/db';
import { DraftSchema, newClinicalId, plainIssues, pseudonymise, recordSha256, validateClinical, type ClinicalRecord } from './clinical.js';
import type { SiteNode } from './node.js';

export interface StoredClinical {
  id: string;
  pseudonym: string;
  kind: string;
  templateVersion: string;
  state: string;
  sha256: string;
  record: Record<string, unknown>;
  updatedAt: string;
  uploadedAt: string | null;
  reason: string | null;
}

/**
 * Store clinical records (all or nothing). Each is keyed by the pseudonym of
 * its patient (the same engine as the images); opted-out patients are
 * dropped and only counted. One current record per pseudonym and kind.
 */
export async function saveClinical(node: SiteNode, actor: Actor, inputs: Array<{ record: unknown; issuer?: string | null }>, opts: { draft?: boolean; source: string }): Promise<{ stored: number; unchanged: number; droppedOptOut: number; ids: string[] }> {
  await node.require(actor, 'site.clinical.write', 'site-clinical');
  const issues: FieldIssue[] = [];
  const ok: Array<{ record: Record<string, unknown> & { kind: string; patientId: string; templateVersion?: string }; issuer: string | null }> = [];
  inputs.forEach((inp, i) => {
    const prefix = inputs.length > 1 ? `records.${i}` : '';
    if (opts.draft) {
      const d = DraftSchema.safeParse(inp.record);
      if (!d.success) issues.push(...plainIssues(d.error, prefix));
      else ok.push({ record: d.data as never, issuer: inp.issuer ?? null });
    } else {
      const v = validateClinical(inp.record, { prefix });
      if (!v.ok) issues.push(...v.issues);
      else ok.push({ record: v.record as ClinicalRecord & Record<string, unknown>, issuer: inp.issuer ?? null });
    }
  });
  if (issues.length) throw unprocessable(`${issues.length} field error(s); nothing was stored`, { issues });
  let stored = 0;
  let unchanged = 0;
  let dropped = 0;
  const ids: string[] = [];
  // Opt-out checks before the transaction (SQLite has one connection: no queries outside `trx` inside it).
  const keep: Array<{ record: (typeof ok)[number]['record']; issuer: string | null; pid: string; pseudonym: string }> = [];
  for (const { record, issuer } of ok) {
    const pid = record.patientId.trim();
    const pseudonym = await node.resolvePseudonym(pid, issuer);
    if ((await node.isOptedOut(pid, issuer)) || (await node.isPseudonymOptedOut(pseudonym))) dropped++;
    else keep.push({ record, issuer, pid, pseudonym });
  }
  await node.db.transaction(async (trx) => {
    for (const { record, issuer, pid, pseudonym } of keep) {
      await trx.insertInto('site_pseudonyms').values({ pseudonym, patient_id: pid, issuer: issuer?.trim() || node.config.site.code, created_at: nowIso() }).onConflict((oc) => oc.doNothing()).execute();
      const rec = pseudonymise(record, pseudonym);
      const sha = recordSha256(rec);
      const state = opts.draft ? 'draft' : 'ready';
      const tv = String(record.templateVersion ?? '');
      const existing = await trx.selectFrom('site_clinical').select(['id', 'sha256', 'state']).where('pseudonym', '=', pseudonym).where('kind', '=', record.kind).executeTakeFirst();
      const now = nowIso();
      if (existing) {
        ids.push(existing.id);
        if (existing.sha256 === sha && existing.state !== 'draft' && !opts.draft) {
          unchanged++;
          continue;
        }
        await trx.updateTable('site_clinical').set({ record: JSON.stringify(rec), sha256: sha, template_version: tv, state, reason: null, updated_at: now, uploaded_at: null }).where('id', '=', existing.id).execute();
      } else {
        const id = newClinicalId();
        ids.push(id);
        await trx.insertInto('site_clinical').values({ id, pseudonym, kind: record.kind, template_version: tv, record: JSON.stringify(rec), sha256: sha, state, reason: null, created_at: now, updated_at: now, uploaded_at: null }).execute();
      }
      stored++;
    }
    if (dropped) await node.bump('dropped-opt-out-clinical', dropped, trx);
    await node.deps.audit.record({ actor, action: 'site.clinical.write', code: 'patientRecord', resourceType: 'site-clinical', outcome: 'success', detail: { stored, unchanged, droppedOptOut: dropped, source: opts.source, draft: !!opts.draft } }, trx);
  });
  if (!opts.draft) await node.kickClinical();
  return { stored, unchanged, droppedOptOut: dropped, ids };
}

/** Submit a saved draft: it must now pass the full schema. */
export async function submitDraft(node: SiteNode, actor: Actor, id: string): Promise<StoredClinical> {
  await node.require(actor, 'site.clinical.write', 'site-clinical', id);
  const row = await node.db.db.selectFrom('site_clinical').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('no such clinical record');
  const rec = JSON.parse(row.record) as Record<string, unknown>;
  const v = validateClinical(rec);
  if (!v.ok) throw unprocessable('the draft is not complete', { issues: v.issues });
  const sha = recordSha256(v.record);
  await node.db.db.updateTable('site_clinical').set({ state: 'ready', sha256: sha, record: JSON.stringify(v.record), template_version: v.record.templateVersion, updated_at: nowIso() }).where('id', '=', id).execute();
  await node.deps.audit.record({ actor, action: 'site.clinical.write', code: 'patientRecord', resourceType: 'site-clinical', resourceId: id, outcome: 'success', detail: { submitted: true } });
  await node.kickClinical();
  return (await getClinical(node, actor, id))!;
}

function view(r: { id: string; pseudonym: string; kind: string; template_version: string; state: string; sha256: string; record: string; updated_at: string; uploaded_at: string | null; reason: string | null }): StoredClinical {
  return { id: r.id, pseudonym: r.pseudonym, kind: r.kind, templateVersion: r.template_version, state: r.state, sha256: r.sha256, record: JSON.parse(r.record) as Record<string, unknown>, updatedAt: r.updated_at, uploadedAt: r.uploaded_at, reason: r.reason };
}

export async function getClinical(node: SiteNode, actor: Actor, id: string): Promise<StoredClinical | null> {
  await node.require(actor, 'site.clinical.read', 'site-clinical', id);
  const r = await node.db.db.selectFrom('site_clinical').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? view(r) : null;
}

export async function listClinical(node: SiteNode, actor: Actor, opts: { state?: string; pseudonym?: string; limit?: number } = {}): Promise<StoredClinical[]> {
  await node.require(actor, 'site.clinical.read', 'site-clinical');
  let q = node.db.db.selectFrom('site_clinical').selectAll();
  if (opts.state) q = q.where('state', '=', opts.state);
  if (opts.pseudonym) q = q.where('pseudonym', '=', opts.pseudonym);
  const rows = await q.orderBy('updated_at', 'desc').limit(opts.limit ?? 200).execute();
  await node.deps.audit.record({ actor, action: 'site.clinical.read', code: 'patientRecord', resourceType: 'site-clinical', outcome: 'success', detail: { count: rows.length } });
  return rows.map(view);
}
