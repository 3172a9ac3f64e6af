import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  badRequest, conflict, forbidden, instanceKey as mkInstanceKey, isValidUid, newId, notFound, payloadTooLarge, seriesKey as mkSeriesKey,
  studyKey as mkStudyKey, unauthorized, unprocessable, type Action, type Config, type Logger, type Principal,
} from '@imago/core';
import type { Actor, AuditLog } from '@imago/audit';
import type { DbOrTrx, HubSitesTable, ImagoDb, Transaction, Database } from '@imago/db';
import type { Identity } from '@imago/identity';
import type { BlobStore } from '@imago/storage';
import { HeaderIncomplete, parseInstanceHeader, pick, SERIES_TAGS, STUDY_TAGS, str, num, type InstanceHeader } from './dicom.js';
import {
  ageBand, canonicalJson, ethnicityGroup, groupFor, hmacHex, isPseudonym, normSex, ruleLabel, sha256, SHA256_RE,
  type Group, type SplitMode, type SplitRule,
} from './util.js';

export interface HubDeps {
  db: ImagoDb;
  audit: AuditLog;
  identity: Identity;
  blobs: BlobStore;
  config: Config;
  /** Keyed-hash secret (split and purge evidence). */
  secret: string;
  logger?: Logger;
}

export interface SiteInput {
  code: string;
  name: string;
  region: string;
  sharesData?: boolean;
  splitMode?: SplitMode;
  trainingPercent?: number;
}

export interface SiteView {
  code: string;
  name: string;
  region: string;
  sharesData: boolean;
  splitMode: SplitMode;
  trainingPercent: number;
  rule: string;
  createdAt: string;
  updatedAt: string;
}

export type PutStatus = 'stored' | 'already-stored';

export interface ClinicalItem {
  id: string;
  sha256: string;
  pseudonym: string;
  kind: 'data' | 'status';
  templateVersion: string;
  receivedAt: string;
  record: Record<string, unknown>;
}

export interface ClinicalResult {
  id: string;
  sha256: string;
  status: 'stored' | 'already-stored' | 'rejected';
  reason?: string;
}

export interface PurgeResult {
  status: 'purged' | 'already-purged';
  evidenceId: string;
  counts: Record<string, number>;
}

export const SITE_CODE_RE = /^[A-Z0-9_-]{2,32}$/;

function siteView(r: HubSitesTable): SiteView {
  const rule: SplitRule = { mode: r.split_mode as SplitMode, trainingPercent: r.training_percent, sharesData: !!r.shares_data };
  return {
    code: r.code, name: r.name, region: r.region, sharesData: !!r.shares_data, splitMode: rule.mode, trainingPercent: r.training_percent,
    rule: ruleLabel(rule), createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export function ruleOf(r: HubSitesTable): SplitRule {
  return { mode: r.split_mode as SplitMode, trainingPercent: r.training_percent, sharesData: !!r.shares_data };
}

/** Passes bytes through, keeps the first `keep` bytes, and refuses more than `max`. */
class CaptureLimit extends Transform {
  readonly chunks: Buffer[] = [];
  kept = 0;
  total = 0;
  constructor(private readonly keep: number, private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.total += chunk.length;
    if (this.total > this.max) return cb(payloadTooLarge(`instance larger than the limit of ${this.max} bytes`));
    if (this.kept < this.keep) {
      const part = chunk.subarray(0, this.keep - this.kept);
      this.chunks.push(Buffer.from(part));
      this.kept += part.length;
    }
    cb(null, chunk);
  }
}

async function streamToBuffer(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const chunk = <T>(a: T[], n: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < a.length; i += n) out.push(a.slice(i, i + n));
  return out;
};

export function instanceBlobKey(site: string, sha: string): string {
  return `hub/instances/${site}/${sha.slice(0, 2)}/${sha}.dcm`;
}

/**
 * The hub warehouse data layer. Every public method takes the acting
 * principal and authorises through the audit log before it reads or writes.
 */
export class Hub {
  readonly db: ImagoDb;
  readonly audit: AuditLog;
  readonly identity: Identity;
  readonly blobs: BlobStore;
  readonly config: Config;
  private readonly secret: string;
  private readonly log: Logger | undefined;

  constructor(d: HubDeps) {
    this.db = d.db;
    this.audit = d.audit;
    this.identity = d.identity;
    this.blobs = d.blobs;
    this.config = d.config;
    this.secret = d.secret;
    this.log = d.logger;
  }

  // ---- authorisation helpers ------------------------------------------------
  private authn(actor: Actor): void {
    if (actor.principal.kind === 'anonymous') throw unauthorized();
  }

  async require(actor: Actor, action: Action, type: string, id?: string | null): Promise<void> {
    this.authn(actor);
    await this.audit.require(actor, action, { type, id: id ?? null });
  }

  /** Authorise a site-scoped action: the principal must hold the role in the site's own organisation. */
  async requireSite(actor: Actor, action: Action, site: string): Promise<HubSitesTable> {
    this.authn(actor);
    const row = SITE_CODE_RE.test(site) ? await this.db.db.selectFrom('hub_sites').selectAll().where('code', '=', site).executeTakeFirst() : undefined;
    await this.audit.require(actor, action, { type: 'hub.site', id: site, orgId: row?.org_id ?? null });
    if (!row) throw notFound(`site ${site} is not registered`);
    return row;
  }

  /** The site a site_uplink token belongs to. */
  async siteOfPrincipal(actor: Actor): Promise<HubSitesTable> {
    this.authn(actor);
    const orgIds = actor.principal.grants.filter((g) => g.role === 'site_uplink' && g.orgId).map((g) => g.orgId!);
    const row = orgIds.length ? await this.db.db.selectFrom('hub_sites').selectAll().where('org_id', 'in', orgIds).executeTakeFirst() : undefined;
    await this.audit.require(actor, 'hub.submit', { type: 'hub.site', id: row?.code ?? null, orgId: row?.org_id ?? null });
    return row!;
  }

  // ---- sites ----------------------------------------------------------------
  async registerSite(actor: Actor, input: SiteInput): Promise<{ site: SiteView; token: string; tokenId: string }> {
    await this.require(actor, 'hub.site.manage', 'hub.site', input.code);
    if (!SITE_CODE_RE.test(input.code)) throw badRequest('site code must be 2-32 characters of A-Z, 0-9, _ and -');
    const mode = input.splitMode ?? 'percent';
    const pct = input.trainingPercent ?? (mode === 'training' ? 100 : mode === 'validation' ? 0 : this.config.hub.defaultTrainingPercent);
    if (!Number.isInteger(pct) || pct < 0 || pct > 100) throw badRequest('trainingPercent must be an integer 0-100');
    const now = new Date().toISOString();
    return this.db.transaction(async (trx) => {
      if (await trx.selectFrom('hub_sites').select('code').where('code', '=', input.code).executeTakeFirst()) throw conflict(`site ${input.code} is already registered`);
      const orgId = await this.identity.ensureOrganisation(input.code, input.name, 'hospital', trx);
      const row: HubSitesTable = {
        code: input.code, name: input.name, region: input.region, org_id: orgId, shares_data: input.sharesData ? 1 : 0,
        split_mode: mode, training_percent: pct, created_at: now, updated_at: now,
      };
      await trx.insertInto('hub_sites').values(row).execute();
      const t = await this.identity.createToken('system', { name: `hub uplink ${input.code}`, role: 'site_uplink', org: input.code }, trx);
      await this.audit.record({ actor, action: 'hub.site.register', code: 'applicationActivity', resourceType: 'hub.site', resourceId: input.code, outcome: 'success', detail: { rule: ruleLabel(ruleOf(row)), tokenId: t.view.id } }, trx);
      return { site: siteView(row), token: t.token, tokenId: t.view.id };
    });
  }

  async listSites(actor: Actor): Promise<SiteView[]> {
    await this.require(actor, 'hub.site.manage', 'hub.site');
    return (await this.db.db.selectFrom('hub_sites').selectAll().orderBy('code').execute()).map(siteView);
  }

  async getSite(actor: Actor, code: string): Promise<SiteView> {
    await this.require(actor, 'hub.site.manage', 'hub.site', code);
    const r = await this.db.db.selectFrom('hub_sites').selectAll().where('code', '=', code).executeTakeFirst();
    if (!r) throw notFound(`site ${code} is not registered`);
    return siteView(r);
  }

  /** Change a site's split rule or sharing flag. Patients already assigned keep their group. */
  async updateSite(actor: Actor, code: string, patch: { name?: string; region?: string; sharesData?: boolean; splitMode?: SplitMode; trainingPercent?: number }): Promise<SiteView> {
    await this.require(actor, 'hub.site.manage', 'hub.site', code);
    return this.db.transaction(async (trx) => {
      const r = await trx.selectFrom('hub_sites').selectAll().where('code', '=', code).executeTakeFirst();
      if (!r) throw notFound(`site ${code} is not registered`);
      const mode = patch.splitMode ?? (r.split_mode as SplitMode);
      let pct = patch.trainingPercent ?? r.training_percent;
      if (patch.splitMode && patch.trainingPercent === undefined) pct = mode === 'training' ? 100 : mode === 'validation' ? 0 : r.training_percent;
      if (!Number.isInteger(pct) || pct < 0 || pct > 100) throw badRequest('trainingPercent must be an integer 0-100');
      const next: HubSitesTable = {
        ...r, name: patch.name ?? r.name, region: patch.region ?? r.region, shares_data: patch.sharesData === undefined ? r.shares_data : patch.sharesData ? 1 : 0,
        split_mode: mode, training_percent: pct, updated_at: new Date().toISOString(),
      };
      await trx.updateTable('hub_sites').set(next).where('code', '=', code).execute();
      await this.audit.record({ actor, action: 'hub.site.update', code: 'applicationActivity', resourceType: 'hub.site', resourceId: code, outcome: 'success', detail: { from: ruleLabel(ruleOf(r)), to: ruleLabel(ruleOf(next)) } }, trx);
      return siteView(next);
    });
  }

  /** Issue a new uplink token for a site; with `revokeOthers`, the site's earlier tokens stop working. */
  async issueSiteToken(actor: Actor, code: string, opts: { revokeOthers?: boolean } = {}): Promise<{ token: string; tokenId: string; revoked: number }> {
    await this.require(actor, 'hub.site.manage', 'hub.site', code);
    const r = await this.db.db.selectFrom('hub_sites').selectAll().where('code', '=', code).executeTakeFirst();
    if (!r) throw notFound(`site ${code} is not registered`);
    return this.db.transaction(async (trx) => {
      let revoked = 0;
      if (opts.revokeOthers) {
        const old = await trx.selectFrom('api_tokens').select('id').where('org_id', '=', r.org_id).where('role', '=', 'site_uplink').where('revoked_at', 'is', null).execute();
        for (const o of old) {
          await this.identity.revokeToken('system', o.id, trx);
          revoked++;
        }
      }
      const t = await this.identity.createToken('system', { name: `hub uplink ${code}`, role: 'site_uplink', org: code }, trx);
      await this.audit.record({ actor, action: 'hub.site.token', code: 'securityAlert', resourceType: 'hub.site', resourceId: code, outcome: 'success', detail: { tokenId: t.view.id, revoked } }, trx);
      return { token: t.token, tokenId: t.view.id, revoked };
    });
  }

  /** Revoke every active uplink token of a site without issuing a new one; the site can no longer send until a token is issued. */
  async revokeSiteTokens(actor: Actor, code: string): Promise<{ revoked: number; tokenIds: string[] }> {
    await this.require(actor, 'hub.site.manage', 'hub.site', code);
    const r = await this.db.db.selectFrom('hub_sites').selectAll().where('code', '=', code).executeTakeFirst();
    if (!r) throw notFound(`site ${code} is not registered`);
    return this.db.transaction(async (trx) => {
      const old = await trx.selectFrom('api_tokens').select('id').where('org_id', '=', r.org_id).where('role', '=', 'site_uplink').where('revoked_at', 'is', null).execute();
      for (const o of old) await this.identity.revokeToken('system', o.id, trx);
      const tokenIds = old.map((o) => o.id);
      await this.audit.record({ actor, action: 'hub.site.token.revoke', code: 'securityAlert', resourceType: 'hub.site', resourceId: code, outcome: 'success', detail: { revoked: tokenIds.length, tokenIds } }, trx);
      return { revoked: tokenIds.length, tokenIds };
    });
  }

  // ---- split ------------------------------------------------------------------
  /**
   * Decide a patient's group if not yet decided (sticky), and report a
   * contradiction when the data now arriving would put the patient elsewhere.
   */
  private async assignInTrx(trx: DbOrTrx, site: HubSitesTable, pseudonym: string, attrs: { sex?: string | null; ageBand?: string | null; ethnicity?: string | null } = {}): Promise<Group> {
    const rule = ruleOf(site);
    const claimed = groupFor(this.secret, pseudonym, rule);
    const now = new Date().toISOString();
    let p = await trx.selectFrom('hub_patients').selectAll().where('pseudonym', '=', pseudonym).executeTakeFirst();
    if (!p) {
      await trx.insertInto('hub_patients').values({
        pseudonym, site: site.code, grp: claimed, assigned_at: now, assigned_rule: ruleLabel(rule),
        sex: attrs.sex ?? null, age_band: attrs.ageBand ?? null, ethnicity: attrs.ethnicity ?? null, updated_at: now,
      }).onConflict((oc) => oc.column('pseudonym').doNothing()).execute();
      p = await trx.selectFrom('hub_patients').selectAll().where('pseudonym', '=', pseudonym).executeTakeFirstOrThrow();
      if (p.site === site.code) return p.grp as Group;
    }
    const upd: Record<string, string> = {};
    if (attrs.sex && attrs.sex !== p.sex) upd.sex = attrs.sex;
    if (attrs.ageBand && attrs.ageBand !== p.age_band) upd.age_band = attrs.ageBand;
    if (attrs.ethnicity && attrs.ethnicity !== p.ethnicity) upd.ethnicity = attrs.ethnicity;
    if (Object.keys(upd).length) await trx.updateTable('hub_patients').set({ ...upd, updated_at: now }).where('pseudonym', '=', pseudonym).execute();
    let reason: string | null = null;
    if (p.grp === 'validation' && rule.sharesData) reason = 'data from a site that shares with other parties reached a validation patient';
    else if (p.site !== site.code && p.grp !== claimed) reason = `site ${site.code}'s rule puts the patient in ${claimed}, but ${p.site} assigned ${p.grp}`;
    if (reason) {
      await trx.insertInto('hub_split_conflicts').values({ id: newId(), pseudonym, site: site.code, assigned_grp: p.grp, claimed_grp: claimed, reason, detected_at: now })
        .onConflict((oc) => oc.columns(['pseudonym', 'site', 'claimed_grp']).doNothing()).execute();
    }
    return p.grp as Group;
  }

  /**
   * Assign groups to many pseudonyms of a site (operator tool, and what the
   * split tests drive). Already-assigned patients never change.
   */
  async assignPatients(actor: Actor, siteCode: string, pseudonyms: string[]): Promise<{ assigned: number; unchanged: number; conflicts: number }> {
    await this.require(actor, 'hub.site.manage', 'hub.site', siteCode);
    const site = await this.db.db.selectFrom('hub_sites').selectAll().where('code', '=', siteCode).executeTakeFirst();
    if (!site) throw notFound(`site ${siteCode} is not registered`);
    for (const p of pseudonyms) if (!isPseudonym(p)) throw badRequest('not a pseudonym');
    let assigned = 0;
    let unchanged = 0;
    const before = await this.countConflicts();
    const rule = ruleOf(site);
    for (const part of chunk([...new Set(pseudonyms)], 500)) {
      await this.db.transaction(async (trx) => {
        const existing = await trx.selectFrom('hub_patients').select('pseudonym').where('pseudonym', 'in', part).execute();
        const have = new Set(existing.map((e) => e.pseudonym));
        const now = new Date().toISOString();
        const fresh = part.filter((p) => !have.has(p));
        if (fresh.length) {
          const r = await trx.insertInto('hub_patients').values(fresh.map((p) => ({
            pseudonym: p, site: site.code, grp: groupFor(this.secret, p, rule), assigned_at: now, assigned_rule: ruleLabel(rule), sex: null, age_band: null, ethnicity: null, updated_at: now,
          }))).onConflict((oc) => oc.column('pseudonym').doNothing()).executeTakeFirst();
          assigned += Number(r.numInsertedOrUpdatedRows ?? 0);
        }
        for (const p of part.filter((x) => have.has(x))) {
          await this.assignInTrx(trx, site, p);
          unchanged++;
        }
      });
    }
    const conflicts = (await this.countConflicts()) - before;
    await this.audit.record({ actor, action: 'hub.split.assign', code: 'applicationActivity', resourceType: 'hub.site', resourceId: siteCode, outcome: 'success', detail: { assigned, unchanged, conflicts } });
    return { assigned, unchanged, conflicts };
  }

  private async countConflicts(): Promise<number> {
    const r = await this.db.db.selectFrom('hub_split_conflicts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Patients found in both groups: shown to operators, never resolved silently. */
  async splitConflicts(actor: Actor): Promise<Array<{ id: string; pseudonym: string; site: string; assignedGroup: string; claimedGroup: string; reason: string; detectedAt: string }>> {
    await this.require(actor, 'hub.stats.read', 'hub.split');
    const rows = await this.db.db.selectFrom('hub_split_conflicts').selectAll().orderBy('detected_at').execute();
    return rows.map((r) => ({ id: r.id, pseudonym: r.pseudonym, site: r.site, assignedGroup: r.assigned_grp, claimedGroup: r.claimed_grp, reason: r.reason, detectedAt: r.detected_at }));
  }

  async patientGroups(actor: Actor, site?: string): Promise<Map<string, Group>> {
    await this.require(actor, 'hub.stats.read', 'hub.split');
    let q = this.db.db.selectFrom('hub_patients').select(['pseudonym', 'grp']);
    if (site) q = q.where('site', '=', site);
    return new Map((await q.execute()).map((r) => [r.pseudonym, r.grp as Group]));
  }

  // ---- site API: instances ------------------------------------------------------
  async ping(actor: Actor): Promise<{ site: string; ok: true }> {
    const s = await this.siteOfPrincipal(actor);
    return { site: s.code, ok: true };
  }

  private purgeHmac(pseudonym: string): string {
    return hmacHex(this.secret, 'imago/purge/v1', pseudonym);
  }

  private async isPurged(pseudonym: string, db: DbOrTrx = this.db.db): Promise<boolean> {
    return !!(await db.selectFrom('hub_purges').select('id').where('pseudonym_hmac', '=', this.purgeHmac(pseudonym)).executeTakeFirst());
  }

  async findInstance(actor: Actor, site: string, sha: string): Promise<{ sha256: string; instanceKey: string }> {
    await this.requireSite(actor, 'hub.submit', site);
    const r = SHA256_RE.test(sha) ? await this.db.db.selectFrom('hub_instances').select(['sha256', 'instance_key']).where('site', '=', site).where('sha256', '=', sha).executeTakeFirst() : undefined;
    if (!r) throw notFound('instance not held from this site');
    return { sha256: r.sha256, instanceKey: r.instance_key };
  }

  async checkInstances(actor: Actor, site: string, shas: string[]): Promise<string[]> {
    await this.requireSite(actor, 'hub.submit', site);
    const want = [...new Set(shas.map((s) => s.toLowerCase()).filter((s) => SHA256_RE.test(s)))];
    const present: string[] = [];
    for (const part of chunk(want, 500)) {
      const rows = await this.db.db.selectFrom('hub_instances').select('sha256').where('site', '=', site).where('sha256', 'in', part).execute();
      present.push(...rows.map((r) => r.sha256));
    }
    return present;
  }

  /** Verify de-identification; returns a reason for refusal, or null. */
  static deidProblem(h: InstanceHeader): string | null {
    if ((h.patientIdentityRemoved ?? '').toUpperCase() !== 'YES') return 'PatientIdentityRemoved (0012,0062) is not YES';
    if (!h.deidentificationMethod && !h.hasDeidMethodCodes) return 'DeidentificationMethod (0012,0063) or its code sequence (0012,0064) is missing';
    if (!isPseudonym(h.patientId)) return 'PatientID (0010,0020) is not a pseudonym of the form IMG-XXXX-XXXX-XXXX-XXXX';
    if (h.patientBirthDate) return 'PatientBirthDate (0010,0030) has a value';
    for (const u of [h.studyUid, h.seriesUid, h.sopUid]) if (!isValidUid(u)) return 'a UID is not a valid DICOM UID';
    return null;
  }

  /**
   * Store one instance a site sends: stream into the blob store hashing as it
   * goes (mismatch → nothing kept), verify de-identification, then index in a
   * transaction. Blob first, then index; an index failure removes the blob.
   */
  async putInstance(actor: Actor, site: string, sha: string, body: Readable | Buffer): Promise<{ sha256: string; instanceKey: string; status: PutStatus }> {
    const drain = () => {
      if (!Buffer.isBuffer(body)) body.resume();
    };
    let siteRow: HubSitesTable;
    try {
      siteRow = await this.requireSite(actor, 'hub.submit', site);
    } catch (e) {
      drain();
      throw e;
    }
    sha = sha.toLowerCase();
    if (!SHA256_RE.test(sha)) {
      drain();
      throw badRequest('sha256 must be 64 hex digits');
    }
    const held = await this.db.db.selectFrom('hub_instances').select(['instance_key']).where('site', '=', site).where('sha256', '=', sha).executeTakeFirst();
    if (held) {
      drain();
      return { sha256: sha, instanceKey: held.instance_key, status: 'already-stored' };
    }
    const key = instanceBlobKey(site, sha);
    const cap = new CaptureLimit(this.config.hub.headerPrefixBytes, this.config.hub.maxInstanceBytes);
    const src = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    src.on('error', (e) => cap.destroy(e));
    let put: Awaited<ReturnType<BlobStore['put']>>;
    try {
      put = await this.blobs.put(key, src.pipe(cap), { expectedSha256: sha, contentType: 'application/dicom' });
    } catch (e) {
      src.unpipe(cap);
      throw e;
    }
    const removeBlob = async () => {
      const still = await this.db.db.selectFrom('hub_instances').select('instance_key').where('blob_key', '=', key).executeTakeFirst();
      if (!still) await this.blobs.delete(key).catch(() => undefined);
    };
    let h: InstanceHeader;
    try {
      const prefix = Buffer.concat(cap.chunks);
      try {
        h = parseInstanceHeader(prefix, cap.total <= prefix.length);
      } catch (e) {
        if (!(e instanceof HeaderIncomplete)) throw e;
        h = parseInstanceHeader(await streamToBuffer(await this.blobs.get(key)), true);
      }
      const problem = Hub.deidProblem(h);
      if (problem) throw unprocessable(`refused: not de-identified: ${problem}`, { detail: { reason: 'not-deidentified', problem } });
      if (await this.isPurged(h.patientId!)) throw unprocessable('refused: this patient has been purged (opt-out)', { detail: { reason: 'purged' } });
    } catch (e) {
      await removeBlob();
      await this.audit.record({ actor, action: 'hub.instance.store', code: 'instancesTransferred', resourceType: 'hub.site', resourceId: site, outcome: 'failure', detail: { reason: (e as Error).message.slice(0, 200) } }).catch(() => undefined);
      throw e;
    }
    const ikey = mkInstanceKey(h.studyUid, h.seriesUid, h.sopUid);
    try {
      const status = await this.db.transaction((trx) => this.indexInstance(trx, actor, siteRow, h, { sha, key, size: put.size, ikey }));
      return { sha256: sha, instanceKey: ikey, status };
    } catch (e) {
      const again = await this.db.db.selectFrom('hub_instances').select('instance_key').where('site', '=', site).where('sha256', '=', sha).executeTakeFirst().catch(() => undefined);
      if (again) return { sha256: sha, instanceKey: again.instance_key, status: 'already-stored' };
      await removeBlob();
      throw e;
    }
  }

  private async indexInstance(trx: Transaction<Database>, actor: Actor, site: HubSitesTable, h: InstanceHeader, b: { sha: string; key: string; size: number; ikey: string }): Promise<PutStatus> {
    const j = h.json;
    const pseudonym = h.patientId!;
    const now = new Date().toISOString();
    const existing = await trx.selectFrom('hub_instances').select(['sha256', 'site']).where('instance_key', '=', b.ikey).executeTakeFirst();
    if (existing) {
      if (existing.sha256 === b.sha && existing.site === site.code) return 'already-stored';
      throw conflict('an instance with these UIDs is already stored with different content', { detail: { reason: 'uid-conflict' } });
    }
    const skey = mkStudyKey(h.studyUid);
    const sekey = mkSeriesKey(h.studyUid, h.seriesUid);
    const modality = str(j, '00080060');
    const forUpdate = this.db.dialect === 'postgres';
    const selStudy = () => {
      const q = trx.selectFrom('hub_studies').select(['study_key', 'pseudonym', 'site', 'modalities']).where('study_key', '=', skey);
      return forUpdate ? q.forUpdate().executeTakeFirst() : q.executeTakeFirst();
    };
    let study = await selStudy();
    if (!study) {
      await trx.insertInto('hub_studies').values({
        study_key: skey, study_uid: h.studyUid, pseudonym, site: site.code, study_date: str(j, '00080020'), study_time: str(j, '00080030'),
        accession_number: str(j, '00080050'), study_id: str(j, '00200010'), study_description: str(j, '00081030'), referring_physician: str(j, '00080090'),
        patient_sex: str(j, '00100040'), patient_age: str(j, '00101010'), modalities: '', num_series: 0, num_instances: 0,
        attrs: JSON.stringify(pick(j, STUDY_TAGS)), created_at: now, updated_at: now,
      }).onConflict((oc) => oc.column('study_key').doNothing()).execute();
      study = await selStudy();
      if (!study) throw conflict('study UID clash');
    }
    if (study.pseudonym !== pseudonym || study.site !== site.code) throw conflict('this study is already held for another patient or site', { detail: { reason: 'study-conflict' } });
    const series = await trx.selectFrom('hub_series').select(['series_key']).where('series_key', '=', sekey).executeTakeFirst();
    let mods = study.modalities;
    if (!series) {
      await trx.insertInto('hub_series').values({
        series_key: sekey, study_key: skey, series_uid: h.seriesUid, modality, body_part: str(j, '00180015'), series_number: num(j, '00200011'),
        series_description: str(j, '0008103E'), series_date: str(j, '00080021'), manufacturer: str(j, '00080070'), model: str(j, '00081090'),
        num_instances: 0, attrs: JSON.stringify(pick(j, SERIES_TAGS)), created_at: now,
      }).execute();
      const list = mods ? mods.split('\\') : [];
      if (modality && !list.includes(modality)) mods = [...list, modality].sort().join('\\');
    }
    await trx.insertInto('hub_instances').values({
      instance_key: b.ikey, series_key: sekey, study_key: skey, sop_uid: h.sopUid, sop_class_uid: h.sopClassUid, instance_number: num(j, '00200013'),
      sha256: b.sha, blob_key: b.key, size: b.size, site: site.code, pseudonym, transfer_syntax: h.transferSyntax, modality,
      body_part: str(j, '00180015'), study_date: str(j, '00080020'), content_date: str(j, '00080023'), manufacturer: str(j, '00080070'),
      model: str(j, '00081090'), patient_sex: str(j, '00100040'), patient_age: str(j, '00101010'), rows: num(j, '00280010'), columns: num(j, '00280011'),
      number_of_frames: num(j, '00280008'), metadata: JSON.stringify(j), received_at: now,
    }).execute();
    await trx.updateTable('hub_series').set((eb) => ({ num_instances: eb('num_instances', '+', 1) })).where('series_key', '=', sekey).execute();
    await trx.updateTable('hub_studies').set((eb) => ({ num_instances: eb('num_instances', '+', 1), num_series: series ? eb.ref('num_series') : eb('num_series', '+', 1), modalities: mods, updated_at: now })).where('study_key', '=', skey).execute();
    await this.assignInTrx(trx, site, pseudonym, { sex: normSex(str(j, '00100040')), ageBand: ageBand(str(j, '00101010')) });
    await this.audit.record({ actor, action: 'hub.instance.store', code: 'instancesTransferred', resourceType: 'hub.instance', resourceId: b.ikey, outcome: 'success', detail: { site: site.code, size: b.size } }, trx);
    return 'stored';
  }

  // ---- site API: clinical ---------------------------------------------------------
  async submitClinical(actor: Actor, site: string, items: ClinicalItem[]): Promise<ClinicalResult[]> {
    const siteRow = await this.requireSite(actor, 'hub.submit', site);
    const out: ClinicalResult[] = [];
    for (const it of items) {
      const base = { id: it.id, sha256: it.sha256 };
      const actual = sha256(canonicalJson(it.record));
      if (actual !== it.sha256.toLowerCase()) { out.push({ ...base, status: 'rejected', reason: 'sha256 does not match the canonical JSON of record' }); continue; }
      if (!isPseudonym(it.pseudonym)) { out.push({ ...base, status: 'rejected', reason: 'pseudonym is not of the form IMG-XXXX-XXXX-XXXX-XXXX' }); continue; }
      if (it.kind !== 'data' && it.kind !== 'status') { out.push({ ...base, status: 'rejected', reason: 'kind must be data or status' }); continue; }
      if (Number.isNaN(Date.parse(it.receivedAt))) { out.push({ ...base, status: 'rejected', reason: 'receivedAt is not a date' }); continue; }
      if (await this.isPurged(it.pseudonym)) { out.push({ ...base, status: 'rejected', reason: 'patient purged (opt-out)' }); continue; }
      const status = await this.db.transaction(async (trx) => {
        const r = await trx.insertInto('hub_clinical_records').values({
          id: newId(), site, source_id: it.id, sha256: actual, pseudonym: it.pseudonym, kind: it.kind, template_version: it.templateVersion,
          received_at: new Date(it.receivedAt).toISOString(), stored_at: new Date().toISOString(), record: canonicalJson(it.record), source: `site:${site}`,
        }).onConflict((oc) => oc.columns(['site', 'source_id', 'sha256']).doNothing()).executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return 'already-stored' as const;
        const rec = it.record;
        await this.assignInTrx(trx, siteRow, it.pseudonym, { sex: normSex(rec.sex), ageBand: ageBand(typeof rec.age === 'number' ? rec.age : null), ethnicity: ethnicityGroup(rec.ethnicity) });
        return 'stored' as const;
      });
      out.push({ ...base, status });
    }
    const count = (s: string) => out.filter((o) => o.status === s).length;
    await this.audit.record({ actor, action: 'hub.clinical.submit', code: 'import', resourceType: 'hub.site', resourceId: site, outcome: 'success', detail: { stored: count('stored'), alreadyStored: count('already-stored'), rejected: count('rejected') } });
    return out;
  }

  /**
   * The linked clinical view of one patient: the newest `data` record wins over
   * any `status` record (else the newest `status`), linked sources are merged in
   * with their provenance, and the whole history is returned.
   */
  async clinicalFor(actor: Actor, pseudonym: string): Promise<{
    pseudonym: string; current: { id: string; kind: string; receivedAt: string; source: string; templateVersion: string } | null;
    fields: Record<string, unknown>; provenance: Record<string, string>; history: Array<{ id: string; kind: string; receivedAt: string; source: string; sha256: string }>;
  }> {
    await this.require(actor, 'hub.stats.read', 'hub.patient');
    return this.clinicalView(this.db.db, pseudonym);
  }

  private async clinicalView(db: DbOrTrx, pseudonym: string) {
    const recs = await db.selectFrom('hub_clinical_records').selectAll().where('pseudonym', '=', pseudonym).orderBy('received_at').orderBy('stored_at').execute();
    const newest = (k: string) => [...recs].reverse().find((r) => r.kind === k);
    const cur = newest('data') ?? newest('status') ?? null;
    const fields: Record<string, unknown> = cur ? (JSON.parse(cur.record) as Record<string, unknown>) : {};
    const provenance: Record<string, string> = {};
    for (const k of Object.keys(fields)) provenance[k] = cur!.source;
    const linked = await db.selectFrom('hub_linked_data').selectAll().where('pseudonym', '=', pseudonym).orderBy('imported_at').execute();
    for (const l of linked) {
      // Site data stays authoritative for fields it holds; linked sources fill gaps and their newest import wins among themselves.
      if (fields[l.field] !== undefined && fields[l.field] !== null && !provenance[l.field]?.startsWith('link:')) continue;
      fields[l.field] = JSON.parse(l.value) as unknown;
      provenance[l.field] = `link:${l.source}`;
    }
    return {
      pseudonym,
      current: cur ? { id: cur.source_id, kind: cur.kind, receivedAt: cur.received_at, source: cur.source, templateVersion: cur.template_version } : null,
      fields, provenance,
      history: recs.map((r) => ({ id: r.source_id, kind: r.kind, receivedAt: r.received_at, source: r.source, sha256: r.sha256 })),
    };
  }

  /**
   * Import an external source keyed by pseudonym (CSV with a `pseudonym`
   * column, a JSON array, or NDJSON). Each field is kept with its provenance;
   * a value equal to the newest one already held from that source is skipped.
   */
  async importLinked(actor: Actor, input: { source: string; fileName: string; content: string }): Promise<{ rows: number; fields: number; skipped: number; unmatched: number; rejected: Array<{ row: number; reason: string }> }> {
    await this.require(actor, 'hub.link.import', 'hub.link', input.source);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(input.source)) throw badRequest('source must be 1-64 characters of letters, digits, . _ -');
    const rows = parseLinkFile(input.fileName, input.content);
    const fileSha = sha256(input.content);
    const now = new Date().toISOString();
    let fields = 0;
    let skipped = 0;
    let unmatched = 0;
    const rejected: Array<{ row: number; reason: string }> = [];
    await this.db.transaction(async (trx) => {
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        const p = r.pseudonym;
        if (!isPseudonym(p)) { rejected.push({ row: i + 1, reason: 'pseudonym missing or not of the pseudonym form' }); continue; }
        if (await this.isPurged(p, trx)) { rejected.push({ row: i + 1, reason: 'patient purged (opt-out)' }); continue; }
        if (!(await trx.selectFrom('hub_patients').select('pseudonym').where('pseudonym', '=', p).executeTakeFirst())) unmatched++;
        for (const [field, value] of Object.entries(r)) {
          if (field === 'pseudonym' || value === undefined || value === '') continue;
          const v = JSON.stringify(value);
          const last = await trx.selectFrom('hub_linked_data').select('value').where('pseudonym', '=', p).where('source', '=', input.source).where('field', '=', field).orderBy('imported_at', 'desc').limit(1).executeTakeFirst();
          if (last?.value === v) { skipped++; continue; }
          await trx.insertInto('hub_linked_data').values({
            id: newId(), pseudonym: p, source: input.source, field, value: v, imported_at: now,
            provenance: JSON.stringify({ source: input.source, file: input.fileName, fileSha256: fileSha, row: i + 1, importedBy: actor.principal.name, importedAt: now }),
          }).execute();
          fields++;
          if (field === 'ethnicity') {
            const g = ethnicityGroup(value);
            if (g) await trx.updateTable('hub_patients').set({ ethnicity: g, updated_at: now }).where('pseudonym', '=', p).where('ethnicity', 'is', null).execute();
          }
        }
      }
      await this.audit.record({ actor, action: 'hub.link.import', code: 'import', resourceType: 'hub.link', resourceId: input.source, outcome: 'success', detail: { file: input.fileName, fileSha256: fileSha, rows: rows.length, fields, skipped, unmatched, rejected: rejected.length } }, trx);
    });
    return { rows: rows.length, fields, skipped, unmatched, rejected };
  }

  // ---- purge -----------------------------------------------------------------------
  async sitePurges(actor: Actor, site: string, requests: Array<{ id: string; pseudonym: string; reason?: string | undefined }>): Promise<Array<{ id: string; status: 'purged' | 'already-purged'; evidenceId: string }>> {
    await this.requireSite(actor, 'hub.purge.request.site', site);
    for (const r of requests) if (!isPseudonym(r.pseudonym)) throw badRequest(`purge ${r.id}: pseudonym is not of the pseudonym form`);
    const out: Array<{ id: string; status: 'purged' | 'already-purged'; evidenceId: string }> = [];
    for (const r of requests) {
      const owner = await this.db.db.selectFrom('hub_patients').select('site').where('pseudonym', '=', r.pseudonym).executeTakeFirst();
      const fromSite = await this.db.db.selectFrom('hub_instances').select('site').where('pseudonym', '=', r.pseudonym).where('site', '=', site).limit(1).executeTakeFirst();
      if (owner && owner.site !== site && !fromSite) {
        await this.audit.record({ actor, action: 'hub.purge.request.site', code: 'securityAlert', resourceType: 'hub.site', resourceId: site, outcome: 'denied', detail: { reason: 'pseudonym belongs to another site' } });
        throw forbidden('a site may purge only its own patients');
      }
      const res = await this.purgeNow(actor, r.pseudonym, { site, requestedBy: `site:${site}`, requestId: r.id, reason: r.reason ?? null });
      out.push({ id: r.id, status: res.status, evidenceId: res.evidenceId });
    }
    return out;
  }

  /** Operator purge of a pseudonym. */
  async purge(actor: Actor, pseudonym: string, opts: { reason?: string } = {}): Promise<PurgeResult> {
    await this.require(actor, 'hub.purge.request', 'hub.patient');
    if (!isPseudonym(pseudonym)) throw badRequest('not a pseudonym');
    return this.purgeNow(actor, pseudonym, { site: null, requestedBy: `operator:${actor.principal.name}`, requestId: null, reason: opts.reason ?? null });
  }

  /**
   * Remove everything held for a patient: blobs first (instances, thumbnails),
   * then every row (index, patient, clinical, linked, release items), in one
   * transaction that also writes the evidence. Release items become
   * "withheld" entries that keep only their leaf hash, so a release's content
   * hash stays verifiable while the patient is gone from what it serves.
   */
  private async purgeNow(actor: Actor, pseudonym: string, o: { site: string | null; requestedBy: string; requestId: string | null; reason: string | null }): Promise<PurgeResult> {
    const hm = this.purgeHmac(pseudonym);
    const db = this.db.db;
    const instances = await db.selectFrom('hub_instances').select(['sha256', 'blob_key', 'instance_key']).where('pseudonym', '=', pseudonym).execute();
    const thumbs = await db.selectFrom('hub_thumbnails').select(['blob_key']).where('pseudonym', '=', pseudonym).execute();
    const [clin, linked, patient, items] = await Promise.all([
      db.selectFrom('hub_clinical_records').select('id').where('pseudonym', '=', pseudonym).execute(),
      db.selectFrom('hub_linked_data').select('id').where('pseudonym', '=', pseudonym).execute(),
      db.selectFrom('hub_patients').select('pseudonym').where('pseudonym', '=', pseudonym).executeTakeFirst(),
      db.selectFrom('hub_release_items').select(['release_id']).where('pseudonym', '=', pseudonym).execute(),
    ]);
    const prior = await db.selectFrom('hub_purges').select(['id', 'audit_event_id']).where('pseudonym_hmac', '=', hm).orderBy('purged_at', 'desc').executeTakeFirst();
    if (prior && !instances.length && !thumbs.length && !clin.length && !linked.length && !patient && !items.length) {
      return { status: 'already-purged', evidenceId: prior.id, counts: {} };
    }
    let blobsDeleted = 0;
    for (const b of [...instances.map((i) => i.blob_key), ...thumbs.map((t) => t.blob_key)]) if (await this.blobs.delete(b)) blobsDeleted++;
    const purgeId = newId();
    const studyKeys = [...new Set((await db.selectFrom('hub_studies').select('study_key').where('pseudonym', '=', pseudonym).execute()).map((s) => s.study_key))];
    const counts: Record<string, number> = {};
    const digest = sha256([...instances.map((i) => i.sha256)].sort().join('\n'));
    await this.db.transaction(async (trx) => {
      const n = (r: { numDeletedRows: bigint } | undefined) => Number(r?.numDeletedRows ?? 0);
      const withheld = await trx.selectFrom('hub_release_items').select(['release_id', 'grp', 'kind', 'leaf_hash']).where('pseudonym', '=', pseudonym).execute();
      for (const part of chunk(withheld, 500)) await trx.insertInto('hub_release_withheld').values(part.map((w) => ({ ...w, purge_id: purgeId }))).execute();
      counts.releaseItems = n(await trx.deleteFrom('hub_release_items').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.releasesAffected = new Set(withheld.map((w) => w.release_id)).size;
      counts.instances = n(await trx.deleteFrom('hub_instances').where('pseudonym', '=', pseudonym).executeTakeFirst());
      let series = 0;
      for (const part of chunk(studyKeys, 500)) series += n(await trx.deleteFrom('hub_series').where('study_key', 'in', part).executeTakeFirst());
      counts.series = series;
      counts.studies = n(await trx.deleteFrom('hub_studies').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.thumbnails = n(await trx.deleteFrom('hub_thumbnails').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.clinicalRecords = n(await trx.deleteFrom('hub_clinical_records').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.linkedData = n(await trx.deleteFrom('hub_linked_data').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.splitConflicts = n(await trx.deleteFrom('hub_split_conflicts').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.patients = n(await trx.deleteFrom('hub_patients').where('pseudonym', '=', pseudonym).executeTakeFirst());
      counts.blobs = blobsDeleted;
      const ev = await this.audit.record({
        actor, action: 'hub.purge', code: 'studyDeleted', resourceType: 'hub.purge', resourceId: purgeId, outcome: 'success',
        detail: { purgeId, requestedBy: o.requestedBy, site: o.site, requestId: o.requestId, counts, instancesSha256Digest: digest, pseudonymHmac: hm },
      }, trx);
      await trx.insertInto('hub_purges').values({
        id: purgeId, pseudonym_hmac: hm, site: o.site, requested_by: o.requestedBy, request_id: o.requestId, reason: o.reason,
        counts: JSON.stringify(counts), instances_digest: digest, audit_event_id: ev.id, purged_at: new Date().toISOString(),
      }).execute();
    });
    return { status: 'purged', evidenceId: purgeId, counts };
  }

  async listPurges(actor: Actor): Promise<Array<{ id: string; site: string | null; requestedBy: string; requestId: string | null; counts: Record<string, number>; instancesDigest: string; auditEventId: string; purgedAt: string }>> {
    await this.require(actor, 'hub.purge.request', 'hub.purge');
    const rows = await this.db.db.selectFrom('hub_purges').selectAll().orderBy('purged_at', 'desc').limit(1000).execute();
    return rows.map((r) => ({ id: r.id, site: r.site, requestedBy: r.requested_by, requestId: r.request_id, counts: JSON.parse(r.counts) as Record<string, number>, instancesDigest: r.instances_digest, auditEventId: r.audit_event_id, purgedAt: r.purged_at }));
  }

  // ---- blobs and thumbnails for DICOMweb ----------------------------------------------
  async instanceBytes(blobKey: string): Promise<Readable> {
    return this.blobs.get(blobKey);
  }

  /** Rendered PNG thumbnail of an instance, cached in the blob store (and purged with the patient). */
  async thumbnail(instance: { instance_key: string; blob_key: string; pseudonym: string }, render: (b: Buffer) => Buffer): Promise<Buffer> {
    const key = `hub/thumbs/${instance.instance_key.slice(0, 2)}/${instance.instance_key}-${this.config.hub.thumbnailSize}.png`;
    const cached = await this.db.db.selectFrom('hub_thumbnails').select('blob_key').where('instance_key', '=', instance.instance_key).executeTakeFirst();
    if (cached?.blob_key === key && (await this.blobs.exists(key))) return streamToBuffer(await this.blobs.get(key));
    const png = render(await streamToBuffer(await this.blobs.get(instance.blob_key)));
    await this.blobs.put(key, png, { contentType: 'image/png' });
    await this.db.db.insertInto('hub_thumbnails').values({ instance_key: instance.instance_key, pseudonym: instance.pseudonym, blob_key: key, created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('instance_key').doUpdateSet({ blob_key: key })).execute();
    return png;
  }

  principalLabel(p: Principal): string {
    return `${p.kind}:${p.name}`;
  }
}

/** Parse a linkage file: CSV (header row with `pseudonym`), JSON array, or NDJSON. */
export function parseLinkFile(fileName: string, content: string): Array<Record<string, unknown> & { pseudonym?: unknown }> {
  const t = content.trim();
  if (!t) return [];
  if (fileName.endsWith('.json') || t.startsWith('[')) {
    const v = JSON.parse(t) as unknown;
    if (!Array.isArray(v)) throw badRequest('a JSON link file must hold an array of objects');
    return v as Array<Record<string, unknown>>;
  }
  if (fileName.endsWith('.ndjson') || fileName.endsWith('.jsonl') || t.startsWith('{')) {
    return t.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  const lines = parseCsv(t);
  const header = lines.shift()?.map((h) => h.trim()) ?? [];
  if (!header.includes('pseudonym')) throw badRequest('a CSV link file needs a `pseudonym` column');
  return lines.filter((l) => l.some((c) => c !== '')).map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ''])));
}

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += c;
  }
  row.push(cell);
  rows.push(row);
  return rows;
}
