import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { badRequest, notFound, seriesKey, studyKey, unsupportedMediaType } from '@imago/core';
import { sql } from '@imago/db';
import type { Actor } from '@imago/audit';
import type { Hub } from './hub.js';
import { tagOf, type DicomJson } from './dicom.js';
import { renderThumbnail } from '@imago/dicom';

export type QidoQuery = Record<string, string | string[] | undefined>;
export type QidoLevel = 'study' | 'series' | 'instance';

const RESERVED = new Set(['limit', 'offset', 'includefield', 'fuzzymatching']);
const MAX_LIMIT = 10000;

type Col = { col: string; kind: 'text' | 'date' | 'uid' | 'int' | 'modalities' };
/** Matching keys the hub supports, by level, mapped onto indexed columns. */
const STUDY_KEYS: Record<string, Col> = {
  '00080020': { col: 'st.study_date', kind: 'date' },
  '00080030': { col: 'st.study_time', kind: 'date' },
  '00080050': { col: 'st.accession_number', kind: 'text' },
  '00080061': { col: 'st.study_key', kind: 'modalities' },
  '00080090': { col: 'st.referring_physician', kind: 'text' },
  '00100020': { col: 'st.pseudonym', kind: 'text' },
  '00100010': { col: 'st.pseudonym', kind: 'text' },
  '0020000D': { col: 'st.study_uid', kind: 'uid' },
  '00200010': { col: 'st.study_id', kind: 'text' },
  '00081030': { col: 'st.study_description', kind: 'text' },
};
const SERIES_KEYS: Record<string, Col> = {
  '00080060': { col: 'se.modality', kind: 'text' },
  '0020000E': { col: 'se.series_uid', kind: 'uid' },
  '00200011': { col: 'se.series_number', kind: 'int' },
  '0008103E': { col: 'se.series_description', kind: 'text' },
  '00180015': { col: 'se.body_part', kind: 'text' },
  '00080070': { col: 'se.manufacturer', kind: 'text' },
  '00081090': { col: 'se.model', kind: 'text' },
  '00080021': { col: 'se.series_date', kind: 'date' },
};
const INSTANCE_KEYS: Record<string, Col> = {
  '00080018': { col: 'i.sop_uid', kind: 'uid' },
  '00080016': { col: 'i.sop_class_uid', kind: 'uid' },
  '00200013': { col: 'i.instance_number', kind: 'int' },
  '00080023': { col: 'i.content_date', kind: 'date' },
};

const INSTANCE_DEFAULT_TAGS = ['00080016', '00080018', '00080060', '00200013', '00280008', '00280010', '00280011', '00280100', '0020000D', '0020000E'];

interface Parsed {
  conds: Array<ReturnType<typeof sql>>;
  limit: number;
  offset: number;
  include: Set<string> | 'all';
}

function likePattern(v: string): string {
  return v.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

function matchCond(c: Col, raw: string): ReturnType<typeof sql> | null {
  const v = raw.trim();
  if (v === '' || v === '*') return null;
  const col = sql.ref(c.col);
  if (c.kind === 'modalities') {
    const mods = v.split(/[\\,]/).map((m) => m.trim()).filter(Boolean);
    return sql`exists (select 1 from hub_series ms where ms.study_key = ${col} and ms.modality in (${sql.join(mods)}))`;
  }
  if (c.kind === 'uid') {
    const list = v.split(/[\\,]/).map((m) => m.trim()).filter(Boolean);
    return list.length === 1 ? sql`${col} = ${list[0]}` : sql`${col} in (${sql.join(list)})`;
  }
  if (c.kind === 'int') {
    const n = Number(v);
    if (!Number.isInteger(n)) throw badRequest(`matching value for ${c.col} must be an integer`);
    return sql`${col} = ${n}`;
  }
  if (c.kind === 'date' && v.includes('-')) {
    const [from, to] = v.split('-').map((x) => x.replace(/[^0-9.]/g, ''));
    if (from && to) return sql`${col} >= ${from} and ${col} <= ${to}`;
    if (from) return sql`${col} >= ${from}`;
    if (to) return sql`${col} <= ${to}`;
    return null;
  }
  if (/[*?]/.test(v)) return sql`${col} like ${likePattern(v)} escape '\\'`;
  return sql`${col} = ${v}`;
}

function parseQuery(q: QidoQuery, maps: Array<Record<string, Col>>): Parsed {
  const conds: Array<ReturnType<typeof sql>> = [];
  let limit = 1000;
  let offset = 0;
  let include: Set<string> | 'all' = new Set();
  for (const [k, rawV] of Object.entries(q)) {
    if (rawV === undefined) continue;
    const values = Array.isArray(rawV) ? rawV : [rawV];
    if (k === 'limit') {
      limit = Number(values[0]);
      if (!Number.isInteger(limit) || limit < 0) throw badRequest('limit must be a non-negative integer');
      limit = Math.min(limit, MAX_LIMIT);
      continue;
    }
    if (k === 'offset') {
      offset = Number(values[0]);
      if (!Number.isInteger(offset) || offset < 0) throw badRequest('offset must be a non-negative integer');
      continue;
    }
    if (k === 'includefield') {
      for (const v of values.flatMap((x) => x.split(','))) {
        if (v === 'all') include = 'all';
        else if (include !== 'all') {
          const t = tagOf(v.trim());
          if (!t) throw badRequest(`includefield: unknown attribute ${v}`);
          include.add(t);
        }
      }
      continue;
    }
    if (RESERVED.has(k)) continue;
    const tag = tagOf(k);
    if (!tag) throw badRequest(`unknown attribute ${k}`);
    const col = maps.map((m) => m[tag]).find(Boolean);
    if (!col) continue; // unsupported matching key: ignored, as PS3.18 allows
    for (const v of values) {
      const c = matchCond(col, v);
      if (c) conds.push(c);
    }
  }
  return { conds, limit, offset, include };
}

const where = (conds: Array<ReturnType<typeof sql>>) => (conds.length ? sql`where ${sql.join(conds, sql` and `)}` : sql``);

function studyJson(r: { attrs: string; modalities: string; num_series: number; num_instances: number; study_uid: string }, base: string): DicomJson {
  const j = JSON.parse(r.attrs) as DicomJson;
  j['00080056'] = { vr: 'CS', Value: ['ONLINE'] };
  j['00080061'] = { vr: 'CS', ...(r.modalities ? { Value: r.modalities.split('\\') } : {}) };
  j['00201206'] = { vr: 'IS', Value: [Number(r.num_series)] };
  j['00201208'] = { vr: 'IS', Value: [Number(r.num_instances)] };
  j['00081190'] = { vr: 'UR', Value: [`${base}/studies/${r.study_uid}`] };
  return j;
}

function seriesJson(r: { sattrs: string; num_instances: number; study_uid: string; series_uid: string }, base: string): DicomJson {
  const j = JSON.parse(r.sattrs) as DicomJson;
  j['0020000D'] = { vr: 'UI', Value: [r.study_uid] };
  j['00201209'] = { vr: 'IS', Value: [Number(r.num_instances)] };
  j['00081190'] = { vr: 'UR', Value: [`${base}/studies/${r.study_uid}/series/${r.series_uid}`] };
  return j;
}

function sortJson(j: DicomJson): DicomJson {
  return Object.fromEntries(Object.keys(j).sort().map((k) => [k, j[k]!]));
}

async function addIncluded(hub: Hub, out: DicomJson[], include: Set<string> | 'all', repKeys: string[], col: 'study_key' | 'series_key'): Promise<void> {
  if (include !== 'all' && [...include].every((t) => out.every((o) => o[t]))) return;
  for (let i = 0; i < out.length; i++) {
    const rep = await hub.db.db.selectFrom('hub_instances').select('metadata').where(col, '=', repKeys[i]!).orderBy('instance_number').limit(1).executeTakeFirst();
    if (!rep) continue;
    const m = JSON.parse(rep.metadata) as DicomJson;
    for (const [t, a] of Object.entries(m)) if ((include === 'all' || include.has(t)) && !out[i]![t]) out[i]![t] = a;
    out[i] = sortJson(out[i]!);
  }
}

/** QIDO-RS. `studyUid`/`seriesUid` scope the search as in the URL. */
export async function qido(hub: Hub, actor: Actor, level: QidoLevel, q: QidoQuery, scope: { studyUid?: string; seriesUid?: string }, base: string): Promise<DicomJson[]> {
  await hub.require(actor, 'hub.dicomweb.read', 'hub.dicomweb');
  const db = hub.db.db;
  let out: DicomJson[];
  if (level === 'study') {
    const p = parseQuery(q, [STUDY_KEYS]);
    const rows = await sql<{ study_key: string; attrs: string; modalities: string; num_series: number; num_instances: number; study_uid: string }>`
      select st.study_key, st.attrs, st.modalities, st.num_series, st.num_instances, st.study_uid from hub_studies st ${where(p.conds)}
      order by st.study_date desc, st.study_key limit ${p.limit} offset ${p.offset}`.execute(db);
    out = rows.rows.map((r) => sortJson(studyJson(r, base)));
    await addIncluded(hub, out, p.include, rows.rows.map((r) => r.study_key), 'study_key');
  } else if (level === 'series') {
    const p = parseQuery(q, scope.studyUid ? [SERIES_KEYS] : [SERIES_KEYS, STUDY_KEYS]);
    if (scope.studyUid) p.conds.unshift(sql`se.study_key = ${safeStudyKey(scope.studyUid)}`);
    const rows = await sql<{ series_key: string; sattrs: string; num_instances: number; study_uid: string; series_uid: string; attrs: string; modalities: string; num_series: number; st_instances: number }>`
      select se.series_key, se.attrs as sattrs, se.num_instances, st.study_uid, se.series_uid, st.attrs, st.modalities, st.num_series, st.num_instances as st_instances
      from hub_series se join hub_studies st on st.study_key = se.study_key ${where(p.conds)}
      order by se.study_key, se.series_number, se.series_key limit ${p.limit} offset ${p.offset}`.execute(db);
    out = rows.rows.map((r) => sortJson({ ...(scope.studyUid ? {} : studyJson({ ...r, num_instances: r.st_instances }, base)), ...seriesJson(r, base) }));
    await addIncluded(hub, out, p.include, rows.rows.map((r) => r.series_key), 'series_key');
  } else {
    const p = parseQuery(q, scope.seriesUid ? [INSTANCE_KEYS] : scope.studyUid ? [INSTANCE_KEYS, SERIES_KEYS] : [INSTANCE_KEYS, SERIES_KEYS, STUDY_KEYS]);
    if (scope.studyUid && scope.seriesUid) p.conds.unshift(sql`i.series_key = ${safeSeriesKey(scope.studyUid, scope.seriesUid)}`);
    else if (scope.studyUid) p.conds.unshift(sql`i.study_key = ${safeStudyKey(scope.studyUid)}`);
    const rows = await sql<{ metadata: string; study_uid: string; series_uid: string; sop_uid: string }>`
      select i.metadata, st.study_uid, se.series_uid, i.sop_uid from hub_instances i join hub_series se on se.series_key = i.series_key join hub_studies st on st.study_key = i.study_key
      ${where(p.conds)} order by i.series_key, i.instance_number, i.instance_key limit ${p.limit} offset ${p.offset}`.execute(db);
    out = rows.rows.map((r) => {
      const m = JSON.parse(r.metadata) as DicomJson;
      const j: DicomJson = {};
      for (const [t, a] of Object.entries(m)) if (p.include === 'all' || INSTANCE_DEFAULT_TAGS.includes(t) || p.include.has(t)) j[t] = a;
      j['00080056'] = { vr: 'CS', Value: ['ONLINE'] };
      j['00081190'] = { vr: 'UR', Value: [`${base}/studies/${r.study_uid}/series/${r.series_uid}/instances/${r.sop_uid}`] };
      return sortJson(j);
    });
  }
  await hub.audit.record({ actor, action: 'hub.dicomweb.qido', code: 'query', resourceType: 'hub.dicomweb', resourceId: level, outcome: 'success', detail: { level, results: out.length, keys: Object.keys(q).filter((k) => !RESERVED.has(k)) } });
  return out;
}

function safeStudyKey(uid: string): string {
  try {
    return studyKey(uid);
  } catch {
    throw badRequest('not a DICOM UID');
  }
}
function safeSeriesKey(a: string, b: string): string {
  try {
    return seriesKey(a, b);
  } catch {
    throw badRequest('not a DICOM UID');
  }
}

interface Target { studyUid: string; seriesUid?: string | undefined; sopUid?: string | undefined }

async function instancesOf(hub: Hub, t: Target) {
  let q = hub.db.db.selectFrom('hub_instances').select(['instance_key', 'blob_key', 'size', 'pseudonym', 'transfer_syntax', 'sha256', 'study_key']);
  if (t.seriesUid) q = q.where('series_key', '=', safeSeriesKey(t.studyUid, t.seriesUid));
  else q = q.where('study_key', '=', safeStudyKey(t.studyUid));
  if (t.sopUid) q = q.where('sop_uid', '=', t.sopUid);
  const rows = await q.orderBy('series_key').orderBy('instance_number').orderBy('instance_key').execute();
  if (!rows.length) throw notFound('no such study, series or instance');
  return rows;
}

const level = (t: Target) => (t.sopUid ? 'instance' : t.seriesUid ? 'series' : 'study');

/** Check an Accept header for WADO-RS retrieve: multipart/related of application/dicom, stored transfer syntax only. */
export function checkDicomAccept(accept: string | undefined): void {
  if (!accept) return;
  const ok = accept.split(',').some((part) => {
    const p = part.trim().toLowerCase();
    if (p.startsWith('*/*') || p === 'multipart/related' || p.startsWith('multipart/*')) return true;
    if (p.startsWith('multipart/related') || p.startsWith('application/dicom')) {
      const type = /type="?([^";]+)"?/.exec(p)?.[1];
      const ts = /transfer-syntax=([^;\s]+)/.exec(p)?.[1]?.replace(/"/g, '');
      if (type && type !== 'application/dicom') return false;
      return !ts || ts === '*';
    }
    return false;
  });
  if (!ok) throw unsupportedMediaType('only multipart/related; type="application/dicom" in the stored transfer syntax (transfer-syntax=*) is offered');
}

/** WADO-RS retrieve: a multipart/related stream of the stored Part 10 bytes. */
export async function wadoRetrieve(hub: Hub, actor: Actor, t: Target): Promise<{ contentType: string; body: Readable; count: number }> {
  await hub.require(actor, 'hub.dicomweb.read', 'hub.dicomweb');
  const rows = await instancesOf(hub, t);
  const boundary = `imago-${randomBytes(12).toString('hex')}`;
  async function* parts(): AsyncGenerator<Buffer> {
    for (const r of rows) {
      yield Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${Number(r.size)}\r\n\r\n`);
      for await (const c of await hub.instanceBytes(r.blob_key)) yield c as Buffer;
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  await hub.audit.record({ actor, action: 'hub.dicomweb.wado', code: 'instancesAccessed', resourceType: 'hub.study', resourceId: rows[0]!.study_key, outcome: 'success', detail: { level: level(t), instances: rows.length, bytes: rows.reduce((a, r) => a + Number(r.size), 0) } });
  return { contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, body: Readable.from(parts()), count: rows.length };
}

/** WADO-RS metadata: DICOM JSON of every instance in scope, as one JSON array text. */
export async function wadoMetadata(hub: Hub, actor: Actor, t: Target): Promise<string> {
  await hub.require(actor, 'hub.dicomweb.read', 'hub.dicomweb');
  let q = hub.db.db.selectFrom('hub_instances').select(['metadata', 'study_key']);
  if (t.seriesUid) q = q.where('series_key', '=', safeSeriesKey(t.studyUid, t.seriesUid));
  else q = q.where('study_key', '=', safeStudyKey(t.studyUid));
  if (t.sopUid) q = q.where('sop_uid', '=', t.sopUid);
  const rows = await q.orderBy('series_key').orderBy('instance_number').orderBy('instance_key').execute();
  if (!rows.length) throw notFound('no such study, series or instance');
  await hub.audit.record({ actor, action: 'hub.dicomweb.metadata', code: 'instancesAccessed', resourceType: 'hub.study', resourceId: rows[0]!.study_key, outcome: 'success', detail: { level: level(t), instances: rows.length } });
  return `[${rows.map((r) => r.metadata).join(',')}]`;
}

/** Rendered PNG thumbnail (the first instance of a study or series). */
export async function wadoThumbnail(hub: Hub, actor: Actor, t: Target, accept: string | undefined): Promise<Buffer> {
  await hub.require(actor, 'hub.dicomweb.read', 'hub.dicomweb');
  if (accept && !accept.split(',').some((a) => /^\s*(image\/png|image\/\*|\*\/\*)/i.test(a))) throw unsupportedMediaType('thumbnails are offered as image/png only');
  const rows = await instancesOf(hub, t);
  const first = rows[0]!;
  const size = hub.config.hub.thumbnailSize;
  const png = await hub.thumbnail(first, (b) => renderThumbnail(b, size));
  await hub.audit.record({ actor, action: 'hub.dicomweb.thumbnail', code: 'instancesAccessed', resourceType: 'hub.study', resourceId: first.study_key, outcome: 'success', detail: { level: level(t), instances: 1 } });
  return png;
}
