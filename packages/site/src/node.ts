import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { badRequest, ClassifiedError, conflict, newId, newSecret, notFound, type Config, type Logger } from '@imago/core';
import type { Actor, AuditLog } from '@imago/audit';
import { nowIso, sql, type DbOrTrx, type ImagoDb, type SiteInstancesTable } from '@imago/db';
import type { Selectable } from 'kysely';
import { createDeidEngine, type DeidEngine } from '@imago/deid';
import { DeidPool } from './deid-pool.js';
import { HubClient } from './hub-client.js';
import { isNhsNumber, optoutEntryHash, optoutHashes } from './identity-keys.js';
import { pseudonymise, recordSha256 } from './clinical.js';
import { queueDepth, receivedBytes, stageTotal, timed } from './metrics.js';
import { openQueue, type JobQueue } from './queue.js';

export const JOBS = {
  optout: 'site.optout-check',
  deid: 'site.deidentify',
  upload: 'site.upload',
  clinical: 'site.clinical-upload',
  purge: 'site.purge',
} as const;

/** Instance states, in pipeline order. */
export const INSTANCE_STATES = ['received', 'checked', 'outbox', 'uploaded', 'quarantine', 'dropped-opt-out', 'duplicate', 'parked', 'rejected'] as const;

export interface SiteDeps {
  config: Config;
  logger: Logger;
  db: ImagoDb;
  audit: AuditLog;
  /** Optional: a queue shared with other parts of the process. */
  queue?: JobQueue;
}

type InstanceRow = Selectable<SiteInstancesTable>;

export interface IncomingFile {
  id: string;
  /** Final name: incoming/<id>.dcm (absolute). */
  path: string;
  /** Relative to the site root. */
  rel: string;
  /** Where the receiver writes until the file is complete and durable. */
  part: string;
}

interface PendingRow {
  id: string;
  source: string;
  callingAe: string | null;
  rel: string;
  size: number;
  at: string;
  nameDurable: boolean;
}

export interface IncomingMeta {
  source: 'dimse' | 'stow' | 'import' | 'recovered';
  callingAe?: string | null;
}

const UPLOAD_RETRY = { retryLimit: 1000 };
const FAST_COMMIT_GATHER_MS = 20;

/** Quarantine reason for a different object under a SOP Instance UID already forwarded. */
export const CONFLICT_REASON = 'conflicting duplicate SOP Instance UID';

/** Read (or create on first start) the site secret that keys pseudonyms, UIDs and the opt-out hashes. */
/** The completion marker a DIMSE receiver writes into the (otherwise zero) Part 10 preamble. */
export function completionMarker(size: number, md5: string): Buffer {
  const m = Buffer.alloc(128);
  m.write(`IMAGO-COMPLETE-1 ${size} ${md5}\n`, 'latin1');
  return m;
}

/** True when a `.r.dcm` file holds the marker of a complete write: its size and the MD5 of its bytes (preamble zeroed). */
export async function hasCompletionMarker(path: string): Promise<boolean> {
  return (await readCompletion(path)) !== null;
}

/**
 * A `.r.dcm` file's completion marker, if it is valid (size and MD5 match), with the
 * Source AE Title (0002,0016) the receiver put in the file meta information.
 */
async function readCompletion(path: string): Promise<{ sourceAe: string | null } | null> {
  const b = await readFile(path);
  if (b.length < 132) return null;
  const m = /^IMAGO-COMPLETE-1 (\d+) ([0-9a-f]{32})\n/.exec(b.toString('latin1', 0, 128));
  if (!m || Number(m[1]) !== b.length) return null;
  b.fill(0, 0, 128);
  if (createHash('md5').update(b).digest('hex') !== m[2]) return null;
  return { sourceAe: metaSourceAe(b) };
}

/** (0002,0016) from explicit-VR little-endian file meta information (as part10Header writes it), or null. */
function metaSourceAe(b: Buffer): string | null {
  let o = 132;
  while (o + 8 <= b.length && b.readUInt16LE(o) === 0x0002) {
    const el = b.readUInt16LE(o + 2);
    const vr = b.toString('latin1', o + 4, o + 6);
    const long = vr === 'OB' || vr === 'OW' || vr === 'UN' || vr === 'SQ' || vr === 'UT';
    const len = long ? b.readUInt32LE(o + 8) : b.readUInt16LE(o + 6);
    const at = o + (long ? 12 : 8);
    if (at + len > b.length) return null;
    if (el === 0x0016) return b.toString('latin1', at, at + len).replace(/[\0 ]+$/, '').trim() || null;
    o = at + len;
  }
  return null;
}

export function loadSiteSecret(config: Config): string {
  if (config.site.secret) return config.site.secret;
  const file = resolve(config.site.secretFile ?? join(config.dataDir, 'site', 'secret'));
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(resolve(file, '..'), { recursive: true });
  writeFileSync(file, newSecret(32) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
}

/**
 * The site node: durable receive, the pipeline stages as jobs, the opt-out
 * list, the pseudonym map, quarantine and status. Every method that a person
 * calls takes an Actor and authorises it here, in the data layer.
 */
export class SiteNode {
  readonly root: string;
  readonly incomingDir: string;
  readonly outboxDir: string;
  readonly tmpDir: string;
  readonly engine: DeidEngine;
  readonly secret: Buffer;
  readonly hub: HubClient | null;
  private orgIdCache: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private workersStarted = false;
  /** De-identification and header reads run here (worker threads unless site.deidWorkers is 0). */
  readonly pool: DeidPool;
  private incomingDirFd: number | null = null;
  private commitGroup: Array<{ row: PendingRow; resolve: () => void; reject: (e: unknown) => void; kept?: boolean }> = [];
  private committing: Promise<void> | null = null;
  /** Fast-path rows wait this long for company: nobody waits for their commit, so bigger groups cost nothing. */
  private flushTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  /**
   * Receive files this process handed out (pre-created spares, used or not) whose row is not yet
   * committed: reconcile() leaves them alone, so it can never adopt or delete a file a receiver holds.
   */
  private unsettled = new Set<string>();
  private lastReceiveAt = 0;
  private spares: IncomingFile[] = [];
  private refilling: Promise<void> | null = null;
  private pipelineActive = 0;

  private constructor(readonly deps: SiteDeps, readonly queue: JobQueue, secret: string) {
    const c = deps.config;
    this.root = resolve(c.dataDir, 'site');
    this.incomingDir = join(this.root, 'incoming');
    this.outboxDir = join(this.root, 'outbox');
    this.tmpDir = join(this.root, 'tmp');
    for (const d of [this.incomingDir, this.outboxDir, this.tmpDir]) mkdirSync(d, { recursive: true });
    this.secret = Buffer.from(secret, 'utf8');
    this.engine = createDeidEngine({ secret, issuerDefault: c.site.code, allow: c.site.allowModalities });
    this.pool = new DeidPool({ secret, issuerDefault: c.site.code, allow: c.site.allowModalities }, c.site.deidWorkers, this.engine);
    this.hub = c.site.hubUrl && c.site.hubToken ? new HubClient({ hubUrl: c.site.hubUrl, token: c.site.hubToken, site: c.site.code, timeoutMs: c.site.uplinkTimeoutMs }) : null;
  }

  static async open(deps: SiteDeps): Promise<SiteNode> {
    const queue = deps.queue ?? (await openQueue(deps.db, deps.config, deps.logger));
    return new SiteNode(deps, queue, loadSiteSecret(deps.config));
  }

  get config(): Config {
    return this.deps.config;
  }
  get db(): ImagoDb {
    return this.deps.db;
  }
  get log(): Logger {
    return this.deps.logger;
  }

  /** The site's organisation id (org whose code is config.site.code); created if missing. */
  async orgId(): Promise<string> {
    if (this.orgIdCache) return this.orgIdCache;
    const code = this.config.site.code;
    const row = await this.db.db.selectFrom('organisations').select('id').where('code', '=', code).executeTakeFirst();
    if (row) return (this.orgIdCache = row.id);
    const id = newId();
    await this.db.db.insertInto('organisations').values({ id, code, name: code, kind: 'hospital', created_at: nowIso() }).onConflict((oc) => oc.doNothing()).execute();
    const again = await this.db.db.selectFrom('organisations').select('id').where('code', '=', code).executeTakeFirstOrThrow();
    return (this.orgIdCache = again.id);
  }

  async require(actor: Actor, action: Parameters<AuditLog['require']>[1], type: string, id?: string | null): Promise<void> {
    await this.deps.audit.require(actor, action, { type, orgId: await this.orgId(), ...(id ? { id } : {}) });
  }

  // ------------------------------------------------------------------ receive

  /**
   * A fresh path in the incoming folder. A receiver streams into `part`
   * (`<id>.dcm.part`); only a complete, fdatasynced file is renamed to `path`.
   */
  newIncomingPath(): IncomingFile {
    const id = randomUUID();
    const path = join(this.incomingDir, `${id}.dcm`);
    return { id, rel: `incoming/${id}.dcm`, path, part: `${path}.part` };
  }

  /**
   * A pre-created receive file (`incoming/<id>.r.dcm`, empty) whose directory
   * entry is already durable: files are created in batches of 64 and the
   * directory is fsynced once per batch, so a DIMSE receiver needs a single
   * fdatasync per instance. Null when none is ready (the caller then uses
   * `.part` + rename + directory fsync).
   */
  takeSpare(): IncomingFile | null {
    const f = this.spares.pop() ?? null;
    if (this.spares.length < 32 && !this.refilling) {
      this.refilling = this.refillSpares().catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'site: cannot pre-create receive files')).finally(() => {
        this.refilling = null;
      });
    }
    return f;
  }

  /** Pre-create the first batch of receive files (the DIMSE server does this before it listens). */
  async prepareSpares(): Promise<void> {
    if (this.spares.length || this.refilling) return;
    await (this.refilling = this.refillSpares().finally(() => {
      this.refilling = null;
    }));
  }

  private async refillSpares(): Promise<void> {
    const batch: IncomingFile[] = [];
    for (let i = 0; i < 64; i++) {
      const id = randomUUID();
      const path = join(this.incomingDir, `${id}.r.dcm`);
      closeSync(openSync(path, 'wx', 0o600));
      batch.push({ id, path, rel: `incoming/${id}.r.dcm`, part: path });
      this.unsettled.add(id);
    }
    await this.syncIncomingDir();
    if (this.incomingDirFd === null) return; // stopped meanwhile
    this.spares.push(...batch);
  }

  /** A receiver gave up on a file it took with takeSpare (and deleted it). */
  releaseIncoming(id: string): void {
    this.unsettled.delete(id);
  }

  /** A receiver is busy: the pipeline yields to it (see pipelineTurn). */
  noteReceive(): void {
    this.lastReceiveAt = Date.now();
  }

  /**
   * Make a received file durable and hand it to the pipeline. When this
   * resolves (and only then may success go back to the sender, except on the
   * DIMSE fast path, see queueIncoming):
   *  - the complete Part 10 file is durable under its final name: fdatasynced
   *    and renamed from `<id>.dcm.part` to `incoming/<id>.dcm` with the
   *    incoming directory fsynced after the rename (or, for a file reconcile()
   *    adopts, already durable: `nameDurable`), so the file, its size and its
   *    name survive a power loss;
   *  - its site_instances row ('received') and its first pipeline job are
   *    committed in one database transaction, grouped with other instances
   *    that arrived while the previous group was committing (group commit).
   *    On PostgreSQL the commit is durable. On SQLite (WAL, synchronous=NORMAL)
   *    the commit survives a crash of the process but the last commits may be
   *    lost on power loss: for that case `reconcile()` adopts every complete
   *    `incoming/*.dcm` that has no row (a partial `.part` file is deleted,
   *    its sender got no success).
   * The row is inserted with ON CONFLICT DO NOTHING on its id (the file's
   * UUID) and the job only when the row is new, so committing the same file
   * twice (the fast path racing an adoption) still gives one row and one job.
   */
  async commitIncoming(file: IncomingFile, meta: IncomingMeta, opts: { fsynced?: boolean; renamed?: boolean; size?: number; nameDurable?: boolean } = {}): Promise<string> {
    this.noteReceive();
    if (!opts.renamed) {
      if (!opts.fsynced) {
        const fh = await open(file.part, 'r+');
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
      }
      await rename(file.part, file.path);
    }
    const size = opts.size ?? (await stat(file.path)).size;
    const now = nowIso();
    await new Promise<void>((resolve, reject) => {
      this.commitGroup.push({ row: { id: file.id, source: meta.source, callingAe: meta.callingAe ?? null, rel: file.rel, size, at: now, nameDurable: !!opts.nameDurable }, resolve, reject });
      this.kickCommits();
    }).finally(() => this.unsettled.delete(file.id));
    stageTotal.inc({ stage: `receive-${meta.source}`, outcome: 'ok' });
    receivedBytes.inc({ source: meta.source }, size);
    return file.id;
  }

  /**
   * DIMSE fast path: the sender may get success as soon as this returns,
   * before the row exists. Only for a pre-created `incoming/<id>.r.dcm`
   * (directory entry durable since its batch was created) that holds its
   * completion marker (size and MD5 of the bytes in the preamble) and was
   * fdatasynced together with it: such a file is exactly what `reconcile()`
   * adopts at start-up (source `recovered`), so a crash or power loss between
   * the response and the commit loses nothing, and the row's primary key (the
   * file's id) makes the adoption and a late commit one row. The row and job
   * go into the next group commit; a failed commit is retried until it
   * succeeds or the node stops (then the next start adopts the file).
   */
  queueIncoming(file: IncomingFile, meta: IncomingMeta, size: number): void {
    this.noteReceive();
    this.unsettled.add(file.id);
    const done = () => this.unsettled.delete(file.id);
    this.commitGroup.push({ row: { id: file.id, source: meta.source, callingAe: meta.callingAe ?? null, rel: file.rel, size, at: nowIso(), nameDurable: true }, resolve: done, reject: done, kept: true });
    stageTotal.inc({ stage: `receive-${meta.source}`, outcome: 'ok' });
    receivedBytes.inc({ source: meta.source }, size);
    if (!this.committing && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.kickCommits();
      }, FAST_COMMIT_GATHER_MS);
    }
  }

  private kickCommits(): void {
    if (!this.committing && this.commitGroup.length) this.committing = this.flushCommits();
  }

  /** Resolves when every row queued so far is committed (or, while stopping, given up to recovery). */
  async flushIncoming(): Promise<void> {
    for (;;) {
      if (this.flushTimer) {
        clearTimeout(this.flushTimer);
        this.flushTimer = null;
        this.kickCommits();
      }
      if (!this.committing) return;
      await this.committing;
    }
  }

  /** Group commit: one directory fsync and one transaction for every instance waiting. */
  private async flushCommits(): Promise<void> {
    let failures = 0;
    try {
      await Promise.resolve(); // `committing` is set before anything below can clear it
      while (this.commitGroup.length) {
        const hold = this.config.site.commitDelayMs;
        if (hold && !this.stopping) await new Promise((r) => setTimeout(r, hold)); // test hook (crash between response and commit)
        const group = this.commitGroup.splice(0, 500);
        try {
          if (group.some((g) => !g.row.nameDurable)) await this.syncIncomingDir();
          await this.db.transaction(async (trx) => {
            for (const { row } of group) {
              const ins = await trx.insertInto('site_instances').values({
                id: row.id, state: 'received', source: row.source, calling_ae: row.callingAe, incoming_path: row.rel, received_at: row.at, size: row.size,
                pseudonym: null, outbox_path: null, sha256: null, out_size: null, sop_uid: null, modality: null, reason: null, attempts: 0,
                deidentified_at: null, uploaded_at: null, delete_original_after: null, updated_at: row.at,
              }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
              if (Number(ins.numInsertedOrUpdatedRows ?? 0n) > 0) await this.queue.send(JOBS.optout, { id: row.id }, { singletonKey: row.id }, trx);
            }
          });
          failures = 0;
          for (const g of group) g.resolve();
        } catch (e) {
          for (const g of group) if (!g.kept) g.reject(e);
          const kept = group.filter((g) => g.kept);
          if (!kept.length) continue;
          // These senders already have success: retry (their files are adopted at the next start if we stop first).
          failures++;
          this.log.error({ err: (e as Error).message, instances: kept.length, attempt: failures }, 'site: receive commit failed; retrying');
          if (this.stopping) {
            for (const g of kept) g.reject(e);
            continue;
          }
          this.commitGroup.unshift(...kept);
          await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** failures, 5000)));
        }
      }
    } finally {
      this.committing = null;
    }
  }

  private syncIncomingDir(): Promise<void> {
    this.incomingDirFd ??= openSync(this.incomingDir, 'r');
    const fd = this.incomingDirFd;
    return new Promise((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
  }

  /** Copy a file from elsewhere (folder import) into incoming and commit it. */
  async importFile(src: string): Promise<string> {
    const f = this.newIncomingPath();
    const { copyFile } = await import('node:fs/promises');
    try {
      await copyFile(src, f.part);
      return await this.commitIncoming(f, { source: 'import' });
    } catch (e) {
      await rm(f.part, { force: true });
      throw e;
    }
  }

  /**
   * Receiving comes first. While a receiver is busy (a C-STORE or STOW part
   * in the last 250 ms) an optout/deid job waits, but never longer than
   * `site.receivePriorityMs`; once it has waited that long it runs, with at
   * most one such job at a time while receiving continues, so a sender that
   * never pauses slows the pipeline down but does not stop it.
   */
  private async pipelineTurn<T>(fn: () => Promise<T>): Promise<T> {
    const until = Date.now() + this.config.site.receivePriorityMs;
    const busy = () => Date.now() - this.lastReceiveAt < 250;
    while (busy() && (Date.now() < until || this.pipelineActive >= 1)) await new Promise((r) => setTimeout(r, 25));
    this.pipelineActive++;
    try {
      return await fn();
    } finally {
      this.pipelineActive--;
    }
  }

  // ------------------------------------------------------------------ pipeline

  private abs(rel: string): string {
    return join(this.root, rel);
  }

  private async setState(id: string, patch: Partial<SiteInstancesTable>, trx: DbOrTrx = this.db.db): Promise<void> {
    await trx.updateTable('site_instances').set({ ...patch, updated_at: nowIso() }).where('id', '=', id).execute();
  }

  async bump(name: string, by = 1, trx: DbOrTrx = this.db.db): Promise<void> {
    await trx.insertInto('site_counters').values({ name, value: by })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: sql`site_counters.value + ${by}` })).execute();
  }

  /** Stage 1: drop the instance if its patient is on the opt-out list (before any de-identification). */
  async stageOptout(id: string): Promise<void> {
    const row = await this.db.db.selectFrom('site_instances').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.state !== 'received') return;
    await this.pipelineTurn(async () => {
      const pass = await timed('optout-check', () => this.optoutCheck(id, row));
      // Not opted out: de-identify in the same job (one job and one state change fewer per instance than a
      // separate stage; a crash before the final state re-runs the check and the de-identification).
      if (pass) await timed('deidentify', () => this.deidentifyRow(id, row, false));
    });
  }

  /** The opt-out check of stage 1; false when the instance was dropped. */
  private async optoutCheck(id: string, row: InstanceRow): Promise<boolean> {
    let patientId = '';
    let issuer = '';
    let others: Array<{ id: string; issuer: string | null }> = [];
    try {
      const h = await this.pool.header(this.abs(row.incoming_path!), Number(row.size));
      patientId = h.patientID;
      issuer = h.issuerOfPatientID;
      others = h.otherPatientIDs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ClassifiedError('permanent', 'received file is missing');
      // Unreadable: let the de-identification stage quarantine it with its reason.
    }
    // A patient opted out by NHS number is dropped even when the PACS's PatientID is a local MRN
    // and the NHS number travels only in Other Patient IDs.
    let optedOut = patientId ? await this.isOptedOut(patientId, issuer) : false;
    for (const o of others) if (!optedOut) optedOut = await this.isOptedOut(o.id, o.issuer);
    if (optedOut) {
      await this.db.transaction(async (trx) => {
        await this.setState(id, { state: 'dropped-opt-out', incoming_path: null, reason: 'opt-out' }, trx);
        await this.bump('dropped-opt-out-instances', 1, trx);
      });
      await rm(this.abs(row.incoming_path!), { force: true });
      stageTotal.inc({ stage: 'optout-check', outcome: 'dropped' });
      return false;
    }
    stageTotal.inc({ stage: 'optout-check', outcome: 'ok' });
    return true;
  }

  /** Stage 2: de-identify into the outbox, or quarantine with a reason. */
  async stageDeid(id: string, released = false): Promise<void> {
    const row = await this.db.db.selectFrom('site_instances').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.state !== 'checked' || !row.incoming_path) return;
    await this.pipelineTurn(() => timed('deidentify', () => this.deidentifyRow(id, row, released)));
  }

  /** Stage 2 proper: de-identify into the outbox (or quarantine); `row` is 'received' (after the opt-out check) or 'checked' (released). */
  private async deidentifyRow(id: string, row: InstanceRow, released: boolean): Promise<void> {
    const inPath = this.abs(row.incoming_path!);
    const outRel = `outbox/${id}.dcm`;
    const outPath = this.abs(outRel);
    let res;
    let header;
    try {
      // Parsed, de-identified and (when written) fdatasynced in a worker thread.
      ({ header, result: res } = await this.pool.deidentify(inPath, outPath, released, Number(row.size)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ClassifiedError('permanent', 'received file is missing');
      const msg = (e as Error).message || 'unreadable';
      await this.setState(id, { state: 'quarantine', reason: `unreadable: ${msg}`.slice(0, 300) });
      stageTotal.inc({ stage: 'deidentify', outcome: 'quarantine' });
      return;
    }
    const pseudonym = res.pseudonym;
    // Remember the map (it never leaves the site).
    if (!res.patientIdMissing && header.patientID) {
      await this.db.db.insertInto('site_pseudonyms').values({ pseudonym, patient_id: header.patientID, issuer: header.issuerOfPatientID || this.config.site.code, created_at: nowIso() })
        .onConflict((oc) => oc.doNothing()).execute();
      await this.recordAliases(pseudonym, header.otherPatientIDs);
    }
    if (res.decision === 'quarantine' && !res.written) {
      await this.setState(id, { state: 'quarantine', reason: `${res.reason ?? 'quarantine'}${res.detail ? `: ${res.detail}` : ''}`.slice(0, 300), pseudonym, modality: res.modality ?? null });
      stageTotal.inc({ stage: 'deidentify', outcome: 'quarantine' });
      return;
    }
    const purged = await this.isPseudonymOptedOut(pseudonym);
    const keepDays = this.config.site.keepOriginalsDays;
    const deleteAfter = nowIso(new Date(Date.now() + keepDays * 86400_000));
    let state = 'outbox';
    await this.db.transaction(async (trx) => {
      if (purged) {
        state = 'dropped-opt-out';
        await this.setState(id, { state, pseudonym, reason: 'opt-out', outbox_path: null, incoming_path: null }, trx);
        await this.bump('dropped-opt-out-instances', 1, trx);
        return;
      }
      const dup = await trx.selectFrom('site_instances').select('id').where('sha256', '=', res.sha256!).where('state', 'in', ['outbox', 'uploaded', 'parked']).where('id', '!=', id).executeTakeFirst();
      // A different object under a SOP Instance UID this site already forwarded (or is forwarding): the hub
      // would rightly refuse it. A person decides (e.g. a corrected re-send, or the same image in another
      // transfer syntax), so it waits in quarantine with its reason instead of being uploaded.
      const uid = res.sopInstanceUID ?? null;
      if (!dup && uid && this.db.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(hashtext(${uid}))`.execute(trx);
      const other = !dup && uid
        ? await trx.selectFrom('site_instances').select(['id', 'sha256']).where('sop_uid', '=', uid).where('state', 'in', ['outbox', 'uploaded', 'parked']).where('id', '!=', id).executeTakeFirst()
        : undefined;
      if (other) {
        state = 'quarantine';
        await this.setState(id, {
          state, pseudonym, sop_uid: uid, modality: res.modality ?? null, outbox_path: null,
          reason: `${CONFLICT_REASON}: ${other.id} was forwarded with other content (sha256 ${other.sha256?.slice(0, 12)}…, this one ${res.sha256!.slice(0, 12)}…)`.slice(0, 300),
        }, trx);
        return;
      }
      state = dup ? 'duplicate' : 'outbox';
      await this.setState(id, {
        state, pseudonym, outbox_path: dup ? null : outRel, sha256: res.sha256!, out_size: res.bytes ?? null, sop_uid: res.sopInstanceUID ?? null, study_uid: res.studyInstanceUID ?? null,
        modality: res.modality ?? null, deidentified_at: nowIso(), reason: dup ? `same content as ${dup.id}` : null,
        delete_original_after: keepDays > 0 ? deleteAfter : null, ...(keepDays > 0 ? {} : { incoming_path: null }),
      }, trx);
      if (!dup && this.hub) await this.queue.send(JOBS.upload, { id }, { singletonKey: id, ...UPLOAD_RETRY }, trx);
    });
    if (state !== 'outbox') await rm(outPath, { force: true });
    if ((keepDays === 0 && state !== 'quarantine') || state === 'dropped-opt-out') await rm(inPath, { force: true });
    stageTotal.inc({ stage: 'deidentify', outcome: state });
  }

  /** The issuer an identifier is taken to have when none is given. */
  private issuerOf(id: string, issuer: string | null | undefined): string {
    const i = issuer?.trim();
    if (i) return i;
    return isNhsNumber(id) ? 'NHS' : this.config.site.code;
  }

  /**
   * Record the other identifiers an instance carries for its patient (Other
   * Patient IDs, e.g. the NHS number beside a local MRN) as aliases of the
   * instance's pseudonym, so that clinical data keyed by any of them links to
   * the same pseudonym. Clinical records already stored under an alias's own
   * pseudonym and not yet uploaded move to the instance's pseudonym.
   */
  private async recordAliases(pseudonym: string, others: Array<{ id: string; issuer: string | null }>): Promise<void> {
    for (const o of others) {
      const id = o.id.trim();
      if (!id) continue;
      const issuer = this.issuerOf(id, o.issuer);
      await this.db.db.insertInto('site_patient_aliases').values({ patient_id: id, issuer, pseudonym, created_at: nowIso() })
        .onConflict((oc) => oc.columns(['patient_id', 'issuer']).doNothing()).execute();
      const own = this.engine.pseudonymFor(id, issuer);
      if (own !== pseudonym) await this.rekeyClinical(own, pseudonym);
    }
  }

  private async rekeyClinical(from: string, to: string): Promise<void> {
    await this.db.transaction(async (trx) => {
      const rows = await trx.selectFrom('site_clinical').selectAll().where('pseudonym', '=', from).where('state', 'in', ['draft', 'ready']).execute();
      for (const r of rows) {
        const taken = await trx.selectFrom('site_clinical').select('id').where('pseudonym', '=', to).where('kind', '=', r.kind).executeTakeFirst();
        if (taken) continue; // the linked patient already has a record of this kind: a person decides
        const rec = pseudonymise(JSON.parse(r.record) as Record<string, unknown>, to);
        await trx.updateTable('site_clinical').set({ pseudonym: to, record: JSON.stringify(rec), sha256: recordSha256(rec), updated_at: nowIso() }).where('id', '=', r.id).execute();
      }
    });
  }

  /**
   * The pseudonym for clinical data keyed by (id, issuer): an alias recorded
   * from the images wins; with no issuer given, a unique match on the ID among
   * the identifiers seen in images; else the engine's keyed pseudonym.
   */
  async resolvePseudonym(patientId: string, issuer: string | null | undefined): Promise<string> {
    const id = patientId.trim();
    const given = issuer?.trim() || null;
    const iss = this.issuerOf(id, given);
    const alias = await this.db.db.selectFrom('site_patient_aliases').select('pseudonym').where('patient_id', '=', id).where('issuer', '=', iss).executeTakeFirst();
    if (alias) return alias.pseudonym;
    if (!given) {
      const seen = await this.db.db.selectFrom('site_pseudonyms').select('pseudonym').where('patient_id', '=', id).execute();
      const aliases = await this.db.db.selectFrom('site_patient_aliases').select('pseudonym').where('patient_id', '=', id).execute();
      const all = new Set([...seen, ...aliases].map((r) => r.pseudonym));
      if (all.size === 1) return [...all][0]!;
    }
    return this.engine.pseudonymFor(id, given ?? undefined);
  }

  /** Stage 3: send one de-identified instance to the hub, confirmed by checksum. */
  async stageUpload(id: string): Promise<void> {
    const hub = this.hub;
    if (!hub) throw new ClassifiedError('transient', 'no hub configured (site.hubUrl, site.hubToken)');
    const row = await this.db.db.selectFrom('site_instances').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.state !== 'outbox' || !row.outbox_path || !row.sha256) return;
    if (row.pseudonym && (await this.isPseudonymOptedOut(row.pseudonym))) {
      await this.db.transaction(async (trx) => {
        await this.setState(id, { state: 'dropped-opt-out', outbox_path: null, reason: 'opt-out' }, trx);
        await this.bump('dropped-opt-out-instances', 1, trx);
      });
      await rm(this.abs(row.outbox_path), { force: true });
      return;
    }
    await timed('upload', async () => {
      try {
        await hub.putInstance(row.sha256!, this.abs(row.outbox_path!), row.out_size ?? 0);
      } catch (e) {
        const cls = e instanceof ClassifiedError ? e.failureClass : 'transient';
        await this.db.db.updateTable('site_instances').set({ attempts: sql`attempts + 1`, reason: String((e as Error).message).slice(0, 300), updated_at: nowIso() }).where('id', '=', id).execute();
        if (cls === 'permanent') {
          await this.setState(id, { state: 'parked', reason: String((e as Error).message).slice(0, 300) });
          stageTotal.inc({ stage: 'upload', outcome: 'parked' });
          this.log.warn({ id, reason: (e as Error).message }, 'site: upload parked for review');
          return;
        }
        if (cls === 'ambiguous') {
          stageTotal.inc({ stage: 'upload', outcome: 'ambiguous' });
          let held = false;
          try {
            held = await hub.hasInstance(row.sha256!);
          } catch {
            held = false;
          }
          if (!held) throw new ClassifiedError('transient', `ambiguous upload not held by the hub; will resend: ${(e as Error).message}`);
        } else {
          stageTotal.inc({ stage: 'upload', outcome: 'transient' });
          throw e;
        }
      }
      await this.setState(id, { state: 'uploaded', uploaded_at: nowIso(), outbox_path: null, reason: null });
      await rm(this.abs(row.outbox_path!), { force: true });
      stageTotal.inc({ stage: 'upload', outcome: 'ok' });
    });
  }

  // ------------------------------------------------------------------ workers and recovery

  async startWorkers(): Promise<void> {
    if (this.workersStarted || !this.config.site.pipeline) return; // site.pipeline=false: receive-only benchmark runs
    this.workersStarted = true;
    await this.reconcile();
    const c = this.config.site;
    const wrap = (fn: (d: Record<string, unknown>) => Promise<void>) => async (job: { data: Record<string, unknown> }) => fn(job.data);
    await this.queue.work(JOBS.optout, wrap((d) => this.stageOptout(String(d.id))), { concurrency: c.checkConcurrency });
    await this.queue.work(JOBS.deid, wrap((d) => this.stageDeid(String(d.id), d.released === true)), { concurrency: c.deidConcurrency });
    await this.queue.work(JOBS.upload, wrap((d) => this.stageUpload(String(d.id))), { concurrency: c.uplinkConcurrency });
    await this.queue.work(JOBS.clinical, wrap(() => this.flushClinical()), { concurrency: 1 });
    await this.queue.work(JOBS.purge, wrap((d) => this.sendPurge(String(d.id))), { concurrency: 1 });
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => void fn().catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'site: periodic task failed')), ms);
      t.unref();
      this.timers.push(t);
    };
    every(c.clinicalFlushMs, () => this.kickClinical());
    every(60_000, () => this.sweepOriginals());
    every(5_000, () => this.sampleDepth());
  }

  async stop(): Promise<void> {
    // Rows of instances already answered with success: commit them now (what cannot be committed is adopted at the next start).
    this.stopping = true;
    await this.flushIncoming();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.queue.stop();
    await this.pool.close();
    if (this.incomingDirFd !== null) closeSync(this.incomingDirFd);
    this.incomingDirFd = null;
  }

  /**
   * After a restart: make sure every row has its next job (singleton keys make
   * this harmless), remove incoming files that never committed (the sender got
   * no success for them and will resend), and finish deletions a kill interrupted.
   */
  async reconcile(): Promise<{ requeued: number; orphans: number; adopted: number }> {
    let requeued = 0;
    const rows = await this.db.db.selectFrom('site_instances').select(['id', 'state']).where('state', 'in', ['received', 'checked', 'outbox']).execute();
    for (const r of rows) {
      if (r.state === 'outbox' && !this.hub) continue;
      const name = r.state === 'received' ? JOBS.optout : r.state === 'checked' ? JOBS.deid : JOBS.upload;
      const got = await this.queue.send(name, { id: r.id }, { singletonKey: r.id, ...(r.state === 'outbox' ? UPLOAD_RETRY : {}) });
      if (got) requeued++;
    }
    const known = new Set((await this.db.db.selectFrom('site_instances').select('incoming_path').where('incoming_path', 'is not', null).execute()).map((r) => r.incoming_path));
    let orphans = 0;
    const adopting: Array<Promise<string>> = [];
    for (const f of await readdir(this.incomingDir)) {
      if (known.has(`incoming/${f}`)) continue;
      const m = /^([0-9a-f-]{36})(\.r)?\.dcm$/.exec(f);
      // Handed out by this process and not committed yet (a spare, a receive in progress, a queued row): not ours to judge.
      if (m && this.unsettled.has(m[1]!)) continue;
      // A row without this path: the original's deletion was interrupted; finish it.
      const hasRow = m ? await this.db.db.selectFrom('site_instances').select('id').where('id', '=', m[1]!).executeTakeFirst() : undefined;
      const path = join(this.incomingDir, f);
      const marker = m && !hasRow && m[2] ? await readCompletion(path) : null;
      if (m && !hasRow && (!m[2] || marker)) {
        // Complete and durable (renamed only after fdatasync, or marker-valid and fdatasynced) but without a
        // row: the DIMSE fast path answered success before its row was committed and the node died (or a
        // power loss took the SQLite WAL's last commits). The sender may have had success, so keep it:
        // one row (primary key = the file's id) and its first job. A resend becomes a local 'duplicate'.
        adopting.push(this.commitIncoming({ id: m[1]!, path, rel: `incoming/${f}`, part: '' }, { source: 'recovered', callingAe: marker?.sourceAe ?? null }, { renamed: true, nameDurable: !!m[2] }));
        continue;
      }
      // A partial '.part' file or an unused or incomplete '.r.dcm' (its sender got no success and
      // resends), or an interrupted deletion.
      await unlink(path).catch(() => undefined);
      orphans++;
    }
    // One group commit for all of them.
    const adopted = (await Promise.all(adopting)).length;
    if (adopted) this.log.warn({ adopted }, 'site: adopted complete received files that had no database row');
    const outKnown = new Set((await this.db.db.selectFrom('site_instances').select('outbox_path').where('outbox_path', 'is not', null).execute()).map((r) => r.outbox_path));
    const inFlight = new Set(rows.filter((r) => r.state === 'checked').map((r) => `outbox/${r.id}.dcm`));
    for (const f of await readdir(this.outboxDir)) {
      const rel = `outbox/${f}`;
      if (!outKnown.has(rel) && !inFlight.has(rel)) await unlink(join(this.outboxDir, f)).catch(() => undefined);
    }
    for (const f of await readdir(this.tmpDir)) await rm(join(this.tmpDir, f), { force: true, recursive: true });
    await this.sweepOriginals();
    await this.kickClinical();
    const purges = await this.db.db.selectFrom('site_purges').select('id').where('state', '=', 'pending').execute();
    for (const p of purges) if (this.hub) await this.queue.send(JOBS.purge, { id: p.id }, { singletonKey: p.id, ...UPLOAD_RETRY });
    return { requeued, orphans, adopted };
  }

  /** Delete identifiable originals whose de-identified copy is safe and whose keep period is over. */
  async sweepOriginals(): Promise<number> {
    const rows = await this.db.db.selectFrom('site_instances').select(['id', 'incoming_path', 'delete_original_after'])
      .where('incoming_path', 'is not', null).where('state', 'in', ['outbox', 'uploaded', 'duplicate', 'parked', 'dropped-opt-out', 'rejected']).execute();
    let n = 0;
    const now = nowIso();
    for (const r of rows) {
      if (r.delete_original_after && r.delete_original_after > now) continue;
      await rm(this.abs(r.incoming_path!), { force: true });
      await this.setState(r.id, { incoming_path: null });
      n++;
    }
    return n;
  }

  private async sampleDepth(): Promise<void> {
    const rows = await this.db.db.selectFrom('site_instances').select(['state', sql<number>`count(*)`.as('n')]).groupBy('state').execute();
    for (const s of INSTANCE_STATES) queueDepth.set({ kind: 'instance', state: s }, Number(rows.find((r) => r.state === s)?.n ?? 0));
  }

  // ------------------------------------------------------------------ opt-out

  async isOptedOut(patientId: string, issuer: string | null | undefined): Promise<boolean> {
    const hashes = optoutHashes(this.secret, patientId, issuer, this.config.site.code);
    const r = await this.db.db.selectFrom('site_optouts').select('hash').where('hash', 'in', hashes).executeTakeFirst();
    return !!r;
  }

  async isPseudonymOptedOut(pseudonym: string): Promise<boolean> {
    return !!(await this.db.db.selectFrom('site_purges').select('id').where('pseudonym', '=', pseudonym).executeTakeFirst());
  }

  /**
   * Add patients to the opt-out list (stored as keyed hashes only). For each,
   * data not yet sent is dropped and a durable purge request goes to the hub
   * for every pseudonym the patient has had.
   */
  async addOptouts(actor: Actor, entries: Array<{ patientId: string; issuer?: string | null }>, source: string): Promise<{ added: number; already: number; purgesRequested: number }> {
    await this.require(actor, 'site.optout.manage', 'site-optout');
    let added = 0;
    let already = 0;
    const pseudonyms = new Set<string>();
    for (const e of entries) {
      const id = e.patientId.trim();
      if (!id) throw badRequest('patient identifier is empty');
      const hash = optoutEntryHash(this.secret, id, e.issuer, this.config.site.code);
      const r = await this.db.db.insertInto('site_optouts').values({ hash, source, created_at: nowIso() }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) added++;
      else already++;
      for (const p of await this.pseudonymsOf(id, e.issuer)) pseudonyms.add(p);
    }
    let purgesRequested = 0;
    for (const p of pseudonyms) if (await this.requestPurge(p, 'national data opt-out')) purgesRequested++;
    await this.deps.audit.record({ actor, action: 'site.optout.manage', code: 'patientRecord', resourceType: 'site-optout', outcome: 'success', detail: { added, already, source, purgesRequested } });
    return { added, already, purgesRequested };
  }

  /** Pseudonyms a patient may have had at this site (map entries, plus the engine's derivation). */
  private async pseudonymsOf(patientId: string, issuer: string | null | undefined): Promise<string[]> {
    const out = new Set<string>();
    const ids = [...new Set([patientId.trim(), patientId.trim().replace(/[\s-]+/g, '')])];
    const rows = await this.db.db.selectFrom('site_pseudonyms').select(['pseudonym', 'issuer']).where('patient_id', 'in', ids).execute();
    const want = optoutEntryHash(this.secret, patientId, issuer, this.config.site.code);
    for (const r of rows) if (optoutHashes(this.secret, patientId, r.issuer, this.config.site.code).includes(want)) out.add(r.pseudonym);
    for (const id of ids) out.add(this.engine.pseudonymFor(id, issuer?.trim() || undefined));
    // Only pseudonyms with data here are worth a purge request (but any in the map counts).
    const used = await this.db.db.selectFrom('site_instances').select('pseudonym').distinct().where('pseudonym', 'in', [...out]).execute();
    const usedC = await this.db.db.selectFrom('site_clinical').select('pseudonym').distinct().where('pseudonym', 'in', [...out]).execute();
    const keep = new Set([...used.map((r) => r.pseudonym!), ...usedC.map((r) => r.pseudonym), ...rows.map((r) => r.pseudonym)]);
    return [...out].filter((p) => keep.has(p));
  }

  /** Record a durable purge request (once per pseudonym) and drop unsent local data for it. */
  async requestPurge(pseudonym: string, reason: string): Promise<boolean> {
    const id = newId();
    let created = false;
    await this.db.transaction(async (trx) => {
      const existing = await trx.selectFrom('site_purges').select('id').where('pseudonym', '=', pseudonym).executeTakeFirst();
      if (existing) return;
      await trx.insertInto('site_purges').values({ id, pseudonym, reason, state: 'pending', evidence_id: null, last_error: null, created_at: nowIso(), done_at: null }).execute();
      const pend = await trx.selectFrom('site_instances').select(['id', 'outbox_path', 'incoming_path']).where('pseudonym', '=', pseudonym).where('state', 'in', ['outbox', 'quarantine', 'parked']).execute();
      for (const p of pend) {
        await trx.updateTable('site_instances').set({ state: 'dropped-opt-out', reason: 'opt-out', outbox_path: null, incoming_path: null, updated_at: nowIso() }).where('id', '=', p.id).execute();
        for (const f of [p.outbox_path, p.incoming_path]) if (f) await rm(this.abs(f), { force: true });
      }
      if (pend.length) await this.bump('dropped-opt-out-instances', pend.length, trx);
      const cl = await trx.updateTable('site_clinical').set({ state: 'dropped-opt-out', updated_at: nowIso() }).where('pseudonym', '=', pseudonym).where('state', 'in', ['draft', 'ready', 'parked']).executeTakeFirst();
      if (Number(cl.numUpdatedRows)) await this.bump('dropped-opt-out-clinical', Number(cl.numUpdatedRows), trx);
      if (this.hub) await this.queue.send(JOBS.purge, { id }, { singletonKey: id, ...UPLOAD_RETRY }, trx);
      created = true;
    });
    return created;
  }

  async sendPurge(id: string): Promise<void> {
    const hub = this.hub;
    if (!hub) throw new ClassifiedError('transient', 'no hub configured');
    const row = await this.db.db.selectFrom('site_purges').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.state !== 'pending') return;
    try {
      const res = await hub.postPurges([{ id: row.id, pseudonym: row.pseudonym, ...(row.reason ? { reason: row.reason } : {}) }]);
      const r = res.find((x) => x.id === row.id);
      if (!r || !['purged', 'already-purged'].includes(r.status)) throw new ClassifiedError('transient', 'hub did not confirm the purge');
      await this.db.db.updateTable('site_purges').set({ state: 'purged', evidence_id: r.evidenceId ?? null, done_at: nowIso(), last_error: null }).where('id', '=', id).execute();
      stageTotal.inc({ stage: 'purge', outcome: 'ok' });
    } catch (e) {
      const cls = e instanceof ClassifiedError ? e.failureClass : 'transient';
      await this.db.db.updateTable('site_purges').set({ last_error: String((e as Error).message).slice(0, 300), ...(cls === 'permanent' ? { state: 'parked' } : {}) }).where('id', '=', id).execute();
      if (cls !== 'permanent') throw new ClassifiedError('transient', (e as Error).message);
    }
  }

  async listOptouts(actor: Actor, opts: { limit?: number } = {}): Promise<{ count: number; entries: Array<{ hash: string; source: string; createdAt: string }>; droppedInstances: number; droppedClinical: number }> {
    await this.require(actor, 'site.optout.manage', 'site-optout');
    const count = Number((await this.db.db.selectFrom('site_optouts').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n);
    const rows = await this.db.db.selectFrom('site_optouts').selectAll().orderBy('created_at', 'desc').limit(opts.limit ?? 100).execute();
    const counters = await this.counters();
    return {
      count, entries: rows.map((r) => ({ hash: r.hash.slice(0, 16), source: r.source, createdAt: r.created_at })),
      droppedInstances: counters['dropped-opt-out-instances'] ?? 0, droppedClinical: counters['dropped-opt-out-clinical'] ?? 0,
    };
  }

  async counters(): Promise<Record<string, number>> {
    const rows = await this.db.db.selectFrom('site_counters').selectAll().execute();
    return Object.fromEntries(rows.map((r) => [r.name, Number(r.value)]));
  }

  // ------------------------------------------------------------------ pseudonym map (site administrator only, audited)

  async lookupPseudonym(actor: Actor, pseudonym: string): Promise<{ pseudonym: string; patientId: string; issuer: string } | null> {
    await this.require(actor, 'site.pseudonym.lookup', 'site-pseudonym', pseudonym);
    const r = await this.db.db.selectFrom('site_pseudonyms').selectAll().where('pseudonym', '=', pseudonym).executeTakeFirst();
    await this.deps.audit.record({ actor, action: 'site.pseudonym.lookup', code: 'patientRecord', resourceType: 'site-pseudonym', resourceId: pseudonym, outcome: 'success', detail: { found: !!r, direction: 'pseudonym-to-patient' } });
    return r ? { pseudonym: r.pseudonym, patientId: r.patient_id, issuer: r.issuer } : null;
  }

  async pseudonymForPatient(actor: Actor, patientId: string, issuer?: string): Promise<string> {
    await this.require(actor, 'site.pseudonym.lookup', 'site-pseudonym');
    const p = this.engine.pseudonymFor(patientId.trim(), issuer?.trim() || undefined);
    await this.deps.audit.record({ actor, action: 'site.pseudonym.lookup', code: 'patientRecord', resourceType: 'site-pseudonym', resourceId: p, outcome: 'success', detail: { direction: 'patient-to-pseudonym' } });
    return p;
  }

  // ------------------------------------------------------------------ quarantine and parked items

  async listQuarantine(actor: Actor, opts: { limit?: number } = {}): Promise<Array<{ id: string; reason: string | null; modality: string | null; receivedAt: string; source: string; callingAe: string | null; size: number }>> {
    await this.require(actor, 'site.quarantine.review', 'site-instance');
    const rows = await this.db.db.selectFrom('site_instances').selectAll().where('state', '=', 'quarantine').orderBy('received_at').limit(opts.limit ?? 200).execute();
    return rows.map((r) => ({ id: r.id, reason: r.reason, modality: r.modality, receivedAt: r.received_at, source: r.source, callingAe: r.calling_ae, size: Number(r.size) }));
  }

  /** A person decides a quarantined instance: release (de-identify anyway) or reject (delete). */
  async reviewQuarantine(actor: Actor, id: string, decision: 'release' | 'reject', note?: string): Promise<void> {
    await this.require(actor, 'site.quarantine.review', 'site-instance', id);
    const row = await this.db.db.selectFrom('site_instances').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('no such instance');
    if (row.state !== 'quarantine') throw conflict(`instance is ${row.state}, not in quarantine`);
    await this.db.transaction(async (trx) => {
      if (decision === 'release') {
        if ((row.reason ?? '').startsWith('unreadable')) throw conflict('an unreadable instance cannot be released; reject it');
        if ((row.reason ?? '').startsWith(CONFLICT_REASON)) {
          throw conflict('the hub already holds another object under this SOP Instance UID, so this one cannot be released; reject it (correct it at the source and send it with a new SOP Instance UID if it is needed)');
        }
        await this.setState(id, { state: 'checked', reason: `released${note ? `: ${note}` : ''}`.slice(0, 300) }, trx);
        await this.queue.send(JOBS.deid, { id, released: true }, { singletonKey: `${id}:release` }, trx);
      } else {
        await this.setState(id, { state: 'rejected', reason: `rejected${note ? `: ${note}` : ''}`.slice(0, 300), incoming_path: null }, trx);
      }
      await this.deps.audit.record({ actor, action: 'site.quarantine.review', code: 'instancesAccessed', resourceType: 'site-instance', resourceId: id, outcome: 'success', detail: { decision } }, trx);
    });
    if (decision === 'reject' && row.incoming_path) await rm(this.abs(row.incoming_path), { force: true });
  }

  /** Put parked items back in the queue after a person fixed the cause. */
  async retryParked(actor: Actor, ids?: string[]): Promise<number> {
    await this.require(actor, 'site.queue.manage', 'site-instance');
    let q = this.db.db.selectFrom('site_instances').select('id').where('state', '=', 'parked');
    if (ids?.length) q = q.where('id', 'in', ids);
    const rows = await q.execute();
    for (const r of rows) {
      await this.db.transaction(async (trx) => {
        await this.setState(r.id, { state: 'outbox', reason: null }, trx);
        await this.queue.send(JOBS.upload, { id: r.id }, { singletonKey: `${r.id}:retry:${Date.now()}`, ...UPLOAD_RETRY }, trx);
      });
    }
    const cl = await this.db.db.updateTable('site_clinical').set({ state: 'ready', reason: null, updated_at: nowIso() }).where('state', '=', 'parked').executeTakeFirst();
    await this.kickClinical();
    await this.deps.audit.record({ actor, action: 'site.queue.manage', code: 'applicationActivity', resourceType: 'site-instance', outcome: 'success', detail: { retried: rows.length, clinical: Number(cl.numUpdatedRows) } });
    return rows.length + Number(cl.numUpdatedRows);
  }

  // ------------------------------------------------------------------ status

  async status(actor: Actor): Promise<SiteStatus> {
    await this.require(actor, 'site.status.read', 'site-status');
    return this.statusUnchecked();
  }

  /** Status without authorisation: for the local CLI operator and tests. */
  async statusUnchecked(): Promise<SiteStatus> {
    const db = this.db.db;
    const byState = await db.selectFrom('site_instances').select(['state', sql<number>`count(*)`.as('n')]).groupBy('state').execute();
    const clin = await db.selectFrom('site_clinical').select(['state', sql<number>`count(*)`.as('n')]).groupBy('state').execute();
    const purges = await db.selectFrom('site_purges').select(['state', sql<number>`count(*)`.as('n')]).groupBy('state').execute();
    const oldest = await db.selectFrom('site_instances').select(['id', 'state', 'received_at']).where('state', 'in', ['received', 'checked', 'outbox']).orderBy('received_at').limit(1).executeTakeFirst();
    const last = await db.selectFrom('site_instances').select(sql<string | null>`max(uploaded_at)`.as('at')).executeTakeFirst();
    const lastC = await db.selectFrom('site_clinical').select(sql<string | null>`max(uploaded_at)`.as('at')).executeTakeFirst();
    const parked = await db.selectFrom('site_instances').select(['id', 'reason', 'updated_at', 'attempts']).where('state', '=', 'parked').orderBy('updated_at').limit(50).execute();
    const parkedClinical = await db.selectFrom('site_clinical').select(['id', 'reason', 'updated_at']).where('state', '=', 'parked').limit(50).execute();
    const counters = await this.counters();
    const toMap = (rows: Array<{ state: string; n: number }>) => Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    const lastUpload = [last?.at, lastC?.at].filter((x): x is string => !!x).sort().pop() ?? null;
    return {
      site: this.config.site.code,
      hub: this.hub ? this.config.site.hubUrl! : null,
      instances: toMap(byState),
      clinical: toMap(clin),
      purges: toMap(purges),
      oldestWaiting: oldest ? { id: oldest.id, state: oldest.state, since: oldest.received_at, ageSeconds: Math.round((Date.now() - Date.parse(oldest.received_at)) / 1000) } : null,
      lastSuccessfulUpload: lastUpload,
      parked: [
        ...parked.map((p) => ({ kind: 'instance' as const, id: p.id, reason: p.reason, since: p.updated_at, attempts: p.attempts })),
        ...parkedClinical.map((p) => ({ kind: 'clinical' as const, id: p.id, reason: p.reason, since: p.updated_at, attempts: 0 })),
      ],
      droppedOptOut: { instances: counters['dropped-opt-out-instances'] ?? 0, clinical: counters['dropped-opt-out-clinical'] ?? 0 },
    };
  }

  // ------------------------------------------------------------------ clinical upload (records are stored by clinical.ts)

  async kickClinical(): Promise<void> {
    if (!this.hub) return;
    const any = await this.db.db.selectFrom('site_clinical').select('id').where('state', '=', 'ready').limit(1).executeTakeFirst();
    if (any) await this.queue.send(JOBS.clinical, {}, { singletonKey: 'flush', ...UPLOAD_RETRY });
  }

  /** Send ready clinical records in batches; each is confirmed by checksum. */
  async flushClinical(): Promise<void> {
    const hub = this.hub;
    if (!hub) return;
    for (;;) {
      const rows = await this.db.db.selectFrom('site_clinical').selectAll().where('state', '=', 'ready').orderBy('updated_at').limit(200).execute();
      if (!rows.length) return;
      const send: typeof rows = [];
      for (const r of rows) {
        if (await this.isPseudonymOptedOut(r.pseudonym)) {
          await this.db.db.updateTable('site_clinical').set({ state: 'dropped-opt-out', updated_at: nowIso() }).where('id', '=', r.id).execute();
          await this.bump('dropped-opt-out-clinical');
          continue;
        }
        send.push(r);
      }
      if (!send.length) continue;
      let results;
      try {
        results = await timed('clinical-upload', () => hub.postClinical(send.map((r) => ({
          id: r.id, sha256: r.sha256, pseudonym: r.pseudonym, kind: r.kind, templateVersion: r.template_version, receivedAt: r.updated_at, record: JSON.parse(r.record) as unknown,
        }))));
      } catch (e) {
        const cls = e instanceof ClassifiedError ? e.failureClass : 'transient';
        if (cls === 'permanent') {
          for (const r of send) await this.db.db.updateTable('site_clinical').set({ state: 'parked', reason: String((e as Error).message).slice(0, 300), updated_at: nowIso() }).where('id', '=', r.id).where('sha256', '=', r.sha256).execute();
          continue;
        }
        // Ambiguous or transient: the hub stores by checksum, so resending is harmless.
        throw new ClassifiedError('transient', (e as Error).message);
      }
      for (const r of send) {
        const res = results.find((x) => x.id === r.id);
        if (!res) continue;
        if ((res.status === 'stored' || res.status === 'already-stored') && res.sha256 === r.sha256) {
          await this.db.db.updateTable('site_clinical').set({ state: 'uploaded', uploaded_at: nowIso(), reason: null }).where('id', '=', r.id).where('sha256', '=', r.sha256).execute();
          stageTotal.inc({ stage: 'clinical-upload', outcome: 'ok' });
        } else {
          await this.db.db.updateTable('site_clinical').set({ state: 'parked', reason: (res.reason ?? `hub answered ${res.status}`).slice(0, 300), updated_at: nowIso() }).where('id', '=', r.id).where('sha256', '=', r.sha256).execute();
          stageTotal.inc({ stage: 'clinical-upload', outcome: 'parked' });
        }
      }
      if (results.length === 0) throw new ClassifiedError('transient', 'hub returned no results');
    }
  }

  /** Which job the site needs run: exposed for tests. */
  jobNames(): typeof JOBS {
    return JOBS;
  }

  tmpPath(suffix = ''): string {
    return join(this.tmpDir, `${randomUUID()}${suffix}`);
  }
}

export interface SiteStatus {
  site: string;
  hub: string | null;
  instances: Record<string, number>;
  clinical: Record<string, number>;
  purges: Record<string, number>;
  oldestWaiting: { id: string; state: string; since: string; ageSeconds: number } | null;
  lastSuccessfulUpload: string | null;
  parked: Array<{ kind: 'instance' | 'clinical'; id: string; reason: string | null; since: string; attempts: number }>;
  droppedOptOut: { instances: number; clinical: number };
}
