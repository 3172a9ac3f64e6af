import { createHash } from 'node:crypto';
import { authorize, forbidden, newId, type Action, type Principal, type Resource } from '@imago/core';
import { sql, type AuditEventsTable, type DbOrTrx, type ImagoDb } from '@imago/db';
import { AUDIT_CODES, type AuditCodeName } from './codes.js';

export { AUDIT_CODES, type AuditCode, type AuditCodeName } from './codes.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Who is acting, from where. Passed into every data-layer call. */
export interface Actor {
  principal: Principal;
  ip: string | null;
}

export interface AuditInput {
  actor: Actor;
  /** The role the actor acted in, if one role decided. */
  role?: string | null;
  action: string;
  code: AuditCodeName;
  resourceType: string;
  resourceId?: string | null;
  outcome: 'success' | 'failure' | 'denied';
  /** Machine-readable detail: counts, hashes, reasons. Never PHI. */
  detail?: Record<string, unknown>;
  at?: Date;
}

export type AuditEvent = AuditEventsTable;

type Hashable = Omit<AuditEventsTable, 'hash'>;

/** Canonical serialisation of an event for hashing: fixed field order. */
export function canonical(e: Hashable): string {
  return JSON.stringify([
    e.seq, e.id, e.at, e.actor_id, e.actor_name, e.actor_role, e.action, e.code_system, e.code, e.code_display,
    e.resource_type, e.resource_id, e.outcome, e.source_ip, e.detail, e.prev_hash,
  ]);
}

export function hashEvent(e: Hashable): string {
  return createHash('sha256').update(canonical(e)).digest('hex');
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  /** The first broken link, if any. */
  broken?: { seq: number; reason: string };
  head?: string;
}

export class AuditLog {
  constructor(private readonly h: ImagoDb) {}

  /**
   * Append an event. With `trx`, the event commits or rolls back together with
   * the caller's data change. The chain head is serialised: an advisory lock on
   * Postgres; SQLite has one writer at a time.
   */
  async record(input: AuditInput, trx?: DbOrTrx): Promise<AuditEvent> {
    if (trx) return this.append(trx, input);
    return this.h.transaction((t) => this.append(t, input));
  }

  private async append(db: DbOrTrx, input: AuditInput): Promise<AuditEvent> {
    if (this.h.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(4242001)`.execute(db);
    const last = await db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    const code = AUDIT_CODES[input.code];
    const p = input.actor.principal;
    const base: Hashable = {
      seq: (last?.seq ?? 0) + 1,
      id: newId(),
      at: (input.at ?? new Date()).toISOString(),
      actor_id: `${p.kind}:${p.id}`,
      actor_name: p.name,
      actor_role: input.role ?? p.grants[0]?.role ?? null,
      action: input.action,
      code_system: code.system,
      code: code.code,
      code_display: code.display,
      resource_type: input.resourceType,
      resource_id: input.resourceId ?? null,
      outcome: input.outcome,
      source_ip: input.actor.ip,
      detail: input.detail ? JSON.stringify(input.detail) : null,
      prev_hash: last?.hash ?? GENESIS_HASH,
    };
    const row: AuditEventsTable = { ...base, hash: hashEvent(base) };
    await db.insertInto('audit_events').values(row).execute();
    return row;
  }

  /**
   * Authorise `action` for the actor on `resource`. A denial is audited as a
   * security alert and thrown as `forbidden`. Returns the deciding role.
   */
  async require(actor: Actor, action: Action, resource: Resource & { type: string; id?: string | null }): Promise<string | null> {
    const d = authorize(actor.principal, action, resource);
    if (!d.allow) {
      await this.record({
        actor,
        action,
        code: 'securityAlert',
        resourceType: resource.type,
        resourceId: resource.id ?? null,
        outcome: 'denied',
        detail: { reason: d.reason },
      });
      throw forbidden(`not allowed: ${action}`);
    }
    return d.reason.startsWith('role ') ? d.reason.split(' ')[1]! : null;
  }

  /** Walk the whole chain and report the first broken link. */
  async verify(onProgress?: (n: number) => void): Promise<VerifyResult> {
    let prev = GENESIS_HASH;
    let expectedSeq = 1;
    let checked = 0;
    const page = 2000;
    for (;;) {
      const rows = await this.h.db.selectFrom('audit_events').selectAll().where('seq', '>=', expectedSeq).orderBy('seq').limit(page).execute();
      if (!rows.length) break;
      for (const r of rows) {
        if (r.seq !== expectedSeq) return { ok: false, checked, broken: { seq: expectedSeq, reason: `event ${expectedSeq} is missing (next is ${r.seq})` } };
        if (r.prev_hash !== prev) return { ok: false, checked, broken: { seq: r.seq, reason: 'prev_hash does not match the previous event' } };
        const { hash, ...rest } = r;
        if (hashEvent(rest) !== hash) return { ok: false, checked, broken: { seq: r.seq, reason: 'content does not match its hash (event was altered)' } };
        prev = hash;
        expectedSeq++;
        checked++;
      }
      onProgress?.(checked);
    }
    return { ok: true, checked, head: prev };
  }

  async count(): Promise<number> {
    const r = await this.h.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Events in order, for export and the viewer. */
  async list(opts: { afterSeq?: number; limit?: number; action?: string; actorId?: string; outcome?: string; resourceType?: string; desc?: boolean } = {}): Promise<AuditEvent[]> {
    let q = this.h.db.selectFrom('audit_events').selectAll();
    if (opts.afterSeq !== undefined) q = q.where('seq', opts.desc ? '<' : '>', opts.afterSeq);
    if (opts.action) q = q.where('action', '=', opts.action);
    if (opts.actorId) q = q.where('actor_id', '=', opts.actorId);
    if (opts.outcome) q = q.where('outcome', '=', opts.outcome);
    if (opts.resourceType) q = q.where('resource_type', '=', opts.resourceType);
    return q.orderBy('seq', opts.desc ? 'desc' : 'asc').limit(opts.limit ?? 100).execute();
  }

  /** Write every event as a FHIR R4 AuditEvent, one JSON object per line. */
  async *exportFhir(): AsyncGenerator<string> {
    let after = 0;
    for (;;) {
      const rows = await this.list({ afterSeq: after, limit: 1000 });
      if (!rows.length) return;
      for (const r of rows) {
        yield JSON.stringify(toFhirAuditEvent(r));
        after = r.seq;
      }
    }
  }
}

const OUTCOME: Record<string, string> = { success: '0', failure: '8', denied: '4' };

/** Map one event onto FHIR R4 AuditEvent. The chain hash travels as an extension. */
export function toFhirAuditEvent(r: AuditEvent): Record<string, unknown> {
  const code = Object.values(AUDIT_CODES).find((c) => c.code === r.code);
  return {
    resourceType: 'AuditEvent',
    id: r.id,
    type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: r.code, display: r.code_display },
    subtype: [{ system: 'urn:imago:action', code: r.action }],
    action: code?.fhirAction ?? 'E',
    recorded: r.at,
    outcome: OUTCOME[r.outcome] ?? '8',
    outcomeDesc: r.outcome,
    agent: [
      {
        who: { identifier: { system: 'urn:imago:actor', value: r.actor_id }, display: r.actor_name },
        ...(r.actor_role ? { role: [{ coding: [{ system: 'urn:imago:role', code: r.actor_role }] }] } : {}),
        requestor: true,
        ...(r.source_ip ? { network: { address: r.source_ip, type: '2' } } : {}),
      },
    ],
    source: { observer: { display: 'imago' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] },
    entity: [
      {
        what: { identifier: { system: `urn:imago:${r.resource_type}`, value: r.resource_id ?? '' } },
        ...(r.detail ? { detail: [{ type: 'imago-detail', valueString: r.detail }] } : {}),
      },
    ],
    extension: [
      { url: 'urn:imago:audit:seq', valueInteger: r.seq },
      { url: 'urn:imago:audit:prev-hash', valueString: r.prev_hash },
      { url: 'urn:imago:audit:hash', valueString: r.hash },
    ],
  };
}
