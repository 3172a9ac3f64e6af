import { z } from 'zod';
import { unauthorized } from '@imago/core';
import type { App, HttpDeps } from './server.js';

const AuditEventView = z.object({
  seq: z.number(),
  id: z.string(),
  at: z.string(),
  actorId: z.string(),
  actorName: z.string(),
  actorRole: z.string().nullable(),
  action: z.string(),
  code: z.string(),
  codeDisplay: z.string(),
  resourceType: z.string(),
  resourceId: z.string().nullable(),
  outcome: z.string(),
  sourceIp: z.string().nullable(),
  detail: z.unknown().nullable(),
  hash: z.string(),
});

/**
 * The audit log viewer's API: a filtered, paged list (newest first) and the
 * chain verification. Both require `audit.read` and are themselves audited.
 */
export async function registerAuditRoutes(app: App, deps: HttpDeps): Promise<void> {
  app.get('/api/audit/events', {
    schema: {
      tags: ['audit'],
      summary: 'Audit events, newest first, filtered and paged by sequence number',
      querystring: z.object({
        limit: z.coerce.number().int().min(1).max(500).default(50),
        before: z.coerce.number().int().min(1).optional(),
        action: z.string().max(128).optional(),
        outcome: z.enum(['success', 'failure', 'denied']).optional(),
        actor: z.string().max(128).optional(),
        resourceType: z.string().max(64).optional(),
      }),
      response: { 200: z.object({ events: z.array(AuditEventView), nextBefore: z.number().nullable(), total: z.number() }) },
    },
  }, async (req) => {
    if (req.principal.kind === 'anonymous') throw unauthorized();
    const actor = req.actor();
    const role = await deps.audit.require(actor, 'audit.read', { type: 'audit' });
    const q = req.query;
    let sel = deps.db.db.selectFrom('audit_events').selectAll();
    if (q.before !== undefined) sel = sel.where('seq', '<', q.before);
    if (q.action) sel = sel.where('action', 'like', `${q.action.replace(/[%_\\]/g, '')}%`);
    if (q.outcome) sel = sel.where('outcome', '=', q.outcome);
    if (q.actor) {
      const a = q.actor;
      sel = sel.where((eb) => eb.or([eb('actor_id', '=', a), eb('actor_name', '=', a)]));
    }
    if (q.resourceType) sel = sel.where('resource_type', '=', q.resourceType);
    const rows = await sel.orderBy('seq', 'desc').limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    const total = await deps.audit.count();
    await deps.audit.record({
      actor, role, action: 'audit.read', code: 'auditLogUsed', resourceType: 'audit', outcome: 'success',
      detail: { returned: page.length, filters: { action: q.action ?? null, outcome: q.outcome ?? null, actor: q.actor ?? null, before: q.before ?? null } },
    });
    return {
      total,
      nextBefore: rows.length > q.limit ? page[page.length - 1]!.seq : null,
      events: page.map((r) => ({
        seq: r.seq, id: r.id, at: r.at, actorId: r.actor_id, actorName: r.actor_name, actorRole: r.actor_role,
        action: r.action, code: r.code, codeDisplay: r.code_display, resourceType: r.resource_type, resourceId: r.resource_id,
        outcome: r.outcome, sourceIp: r.source_ip, detail: r.detail ? safeJson(r.detail) : null, hash: r.hash,
      })),
    };
  });

  app.get('/api/audit/verify', {
    schema: {
      tags: ['audit'],
      summary: 'Walk the hash chain and report the first broken link',
      response: {
        200: z.object({
          ok: z.boolean(), checked: z.number(), head: z.string().nullable(),
          broken: z.object({ seq: z.number(), reason: z.string() }).nullable(), verifiedAt: z.string(),
        }),
      },
    },
  }, async (req) => {
    if (req.principal.kind === 'anonymous') throw unauthorized();
    const actor = req.actor();
    const role = await deps.audit.require(actor, 'audit.read', { type: 'audit' });
    const r = await deps.audit.verify();
    await deps.audit.record({ actor, role, action: 'audit.verify', code: 'auditLogUsed', resourceType: 'audit', outcome: r.ok ? 'success' : 'failure', detail: { checked: r.checked } });
    return { ok: r.ok, checked: r.checked, head: r.head ?? null, broken: r.broken ?? null, verifiedAt: new Date().toISOString() };
  });
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}
