import { conflict, newId, notFound } from '@imago/core';
import type { Actor } from '@imago/audit';
import type { HubReleasesTable } from '@imago/db';
import type { Hub } from './hub.js';
import { canonicalJson, sha256, type Group } from './util.js';

export interface ReleaseCounts {
  groups: Record<Group, { patients: number; studies: number; instances: number; clinicalRecords: number; bytes: number }>;
  bySiteModalityGroup: Array<{ site: string; modality: string; group: Group; instances: number }>;
  excludedForSplitConflict: number;
}

export interface ReleaseView {
  id: string;
  version: number;
  identifier: string;
  title: string;
  description: string;
  contentHash: string;
  trainingHash: string;
  validationHash: string;
  counts: ReleaseCounts;
  createdAt: string;
  createdBy: string;
  /** Items withheld since the release was cut, because their patients were purged. */
  withheld: { applied: boolean; items: number; byGroup: Record<string, number> };
}

interface ItemRow {
  kind: 'instance' | 'clinical';
  grp: Group;
  site: string;
  modality: string | null;
  pseudonym: string;
  ref: string;
  sha256: string;
  size: number;
}

export function leafHash(i: Pick<ItemRow, 'kind' | 'grp' | 'site' | 'ref' | 'sha256' | 'size'>): string {
  return sha256(`${i.kind}|${i.grp}|${i.site}|${i.ref}|${i.sha256}|${i.size}`);
}

/** The hash of one group: sha256 over its sorted leaf hashes. */
export function groupHash(leaves: string[]): string {
  return sha256([...leaves].sort().join('\n'));
}

export function releaseIdentifier(version: number, contentHash: string): string {
  return `imago:release:v${version}:sha256-${contentHash.slice(0, 16)}`;
}

async function withheldOf(hub: Hub, id: string) {
  const rows = await hub.db.db.selectFrom('hub_release_withheld').select(['grp']).where('release_id', '=', id).execute();
  const byGroup: Record<string, number> = {};
  for (const r of rows) byGroup[r.grp] = (byGroup[r.grp] ?? 0) + 1;
  return { applied: rows.length > 0, items: rows.length, byGroup };
}

async function view(hub: Hub, r: HubReleasesTable): Promise<ReleaseView> {
  return {
    id: r.id, version: r.version, identifier: r.identifier, title: r.title, description: r.description, contentHash: r.content_hash,
    trainingHash: r.training_hash, validationHash: r.validation_hash, counts: JSON.parse(r.counts) as ReleaseCounts, createdAt: r.created_at, createdBy: r.created_by,
    withheld: await withheldOf(hub, r.id),
  };
}

async function findRelease(hub: Hub, idOrVersion: string): Promise<HubReleasesTable> {
  const q = hub.db.db.selectFrom('hub_releases').selectAll();
  const v = /^v?(\d+)$/.exec(idOrVersion);
  const r = v ? await q.where('version', '=', Number(v[1])).executeTakeFirst() : await q.where((eb) => eb.or([eb('id', '=', idOrVersion), eb('identifier', '=', idOrVersion)])).executeTakeFirst();
  if (!r) throw notFound(`release ${idOrVersion} not found`);
  return r;
}

/**
 * Freeze an immutable, versioned snapshot: every instance and clinical record
 * of assigned patients, training and validation hashed separately. Patients in
 * an unresolved split conflict are left out and counted in the datasheet.
 */
export async function createRelease(hub: Hub, actor: Actor, input: { title?: string; description?: string } = {}): Promise<ReleaseView> {
  await hub.require(actor, 'hub.release.manage', 'hub.release');
  const db = hub.db.db;
  return hub.db.transaction(async (trx) => {
    const conflicted = new Set((await trx.selectFrom('hub_split_conflicts').select('pseudonym').execute()).map((r) => r.pseudonym));
    const inst = await trx.selectFrom('hub_instances').innerJoin('hub_patients', 'hub_patients.pseudonym', 'hub_instances.pseudonym')
      .select(['hub_instances.instance_key as ref', 'hub_instances.sha256', 'hub_instances.size', 'hub_instances.site', 'hub_instances.modality', 'hub_instances.pseudonym', 'hub_instances.study_key', 'hub_patients.grp'])
      .orderBy('hub_instances.instance_key').execute();
    const clin = await trx.selectFrom('hub_clinical_records').innerJoin('hub_patients', 'hub_patients.pseudonym', 'hub_clinical_records.pseudonym')
      .select(['hub_clinical_records.id as ref', 'hub_clinical_records.sha256', 'hub_clinical_records.record', 'hub_clinical_records.site', 'hub_clinical_records.pseudonym', 'hub_patients.grp'])
      .orderBy('hub_clinical_records.id').execute();
    const items: ItemRow[] = [];
    const excluded = new Set<string>();
    for (const i of inst) {
      if (conflicted.has(i.pseudonym)) { excluded.add(i.pseudonym); continue; }
      items.push({ kind: 'instance', grp: i.grp as Group, site: i.site, modality: i.modality, pseudonym: i.pseudonym, ref: i.ref, sha256: i.sha256, size: Number(i.size) });
    }
    for (const c of clin) {
      if (conflicted.has(c.pseudonym)) { excluded.add(c.pseudonym); continue; }
      items.push({ kind: 'clinical', grp: c.grp as Group, site: c.site, modality: null, pseudonym: c.pseudonym, ref: c.ref, sha256: c.sha256, size: Buffer.byteLength(c.record) });
    }
    const studyOf = new Map(inst.map((i) => [i.ref, i.study_key]));
    const leaves: Record<Group, string[]> = { training: [], validation: [] };
    const groups: ReleaseCounts['groups'] = {
      training: { patients: 0, studies: 0, instances: 0, clinicalRecords: 0, bytes: 0 },
      validation: { patients: 0, studies: 0, instances: 0, clinicalRecords: 0, bytes: 0 },
    };
    const pats: Record<Group, Set<string>> = { training: new Set(), validation: new Set() };
    const studies: Record<Group, Set<string>> = { training: new Set(), validation: new Set() };
    const sm = new Map<string, number>();
    const withLeaf = items.map((i) => ({ ...i, leaf_hash: leafHash(i) }));
    for (const i of withLeaf) {
      leaves[i.grp].push(i.leaf_hash);
      pats[i.grp].add(i.pseudonym);
      const g = groups[i.grp];
      g.bytes += i.size;
      if (i.kind === 'instance') {
        g.instances++;
        studies[i.grp].add(studyOf.get(i.ref)!);
        const k = `${i.site}|${i.modality ?? ''}|${i.grp}`;
        sm.set(k, (sm.get(k) ?? 0) + 1);
      } else g.clinicalRecords++;
    }
    for (const g of ['training', 'validation'] as const) {
      groups[g].patients = pats[g].size;
      groups[g].studies = studies[g].size;
    }
    const trainingHash = groupHash(leaves.training);
    const validationHash = groupHash(leaves.validation);
    const contentHash = sha256(`training:${trainingHash}\nvalidation:${validationHash}`);
    const last = await trx.selectFrom('hub_releases').select('version').orderBy('version', 'desc').limit(1).executeTakeFirst();
    const version = (last?.version ?? 0) + 1;
    const identifier = releaseIdentifier(version, contentHash);
    const counts: ReleaseCounts = {
      groups,
      bySiteModalityGroup: [...sm.entries()].map(([k, n]) => {
        const [site, modality, group] = k.split('|') as [string, string, Group];
        return { site, modality, group, instances: n };
      }).sort((a, b) => canonicalJson(a).localeCompare(canonicalJson(b))),
      excludedForSplitConflict: excluded.size,
    };
    const sites = await trx.selectFrom('hub_sites').selectAll().orderBy('code').execute();
    const id = newId();
    const createdAt = new Date().toISOString();
    const title = input.title ?? `Imago national imaging dataset, release ${version}`;
    const description = input.description ?? 'De-identified imaging and clinical data contributed by sites, split per patient into training and validation.';
    const ds = datasheet({ identifier, version, title, description, createdAt, contentHash, trainingHash, validationHash, counts, sites, publisher: hub.config.hub.publisher });
    const row: HubReleasesTable = {
      id, version, identifier, title, description, content_hash: contentHash, training_hash: trainingHash, validation_hash: validationHash,
      counts: JSON.stringify(counts), datasheet_json: JSON.stringify(ds.json), datasheet_md: ds.md, created_by: actor.principal.name, created_at: createdAt,
    };
    if (await trx.selectFrom('hub_releases').select('id').where('identifier', '=', identifier).executeTakeFirst()) throw conflict('release identifier clash');
    await trx.insertInto('hub_releases').values(row).execute();
    for (let k = 0; k < withLeaf.length; k += 500) {
      await trx.insertInto('hub_release_items').values(withLeaf.slice(k, k + 500).map((i) => ({
        release_id: id, kind: i.kind, grp: i.grp, site: i.site, modality: i.modality, pseudonym: i.pseudonym, ref: i.ref, sha256: i.sha256, size: i.size, leaf_hash: i.leaf_hash,
      }))).execute();
    }
    await hub.audit.record({ actor, action: 'hub.release.create', code: 'export', resourceType: 'hub.release', resourceId: identifier, outcome: 'success', detail: { version, contentHash, training: groups.training, validation: groups.validation, excludedForSplitConflict: excluded.size } }, trx);
    void db;
    return { ...(await viewNoWithheld(row)) };
  });
}

async function viewNoWithheld(r: HubReleasesTable): Promise<ReleaseView> {
  return {
    id: r.id, version: r.version, identifier: r.identifier, title: r.title, description: r.description, contentHash: r.content_hash,
    trainingHash: r.training_hash, validationHash: r.validation_hash, counts: JSON.parse(r.counts) as ReleaseCounts, createdAt: r.created_at, createdBy: r.created_by,
    withheld: { applied: false, items: 0, byGroup: {} },
  };
}

export async function listReleases(hub: Hub, actor: Actor): Promise<ReleaseView[]> {
  await hub.require(actor, 'hub.release.read', 'hub.release');
  const rows = await hub.db.db.selectFrom('hub_releases').selectAll().orderBy('version', 'desc').execute();
  return Promise.all(rows.map((r) => view(hub, r)));
}

export async function getRelease(hub: Hub, actor: Actor, idOrVersion: string): Promise<ReleaseView & { datasheet: unknown; datasheetMarkdown: string }> {
  await hub.require(actor, 'hub.release.read', 'hub.release', idOrVersion);
  const r = await findRelease(hub, idOrVersion);
  return { ...(await view(hub, r)), datasheet: JSON.parse(r.datasheet_json) as unknown, datasheetMarkdown: r.datasheet_md };
}

/**
 * A release's manifest for one group, as served now: items of purged
 * patients are withheld, and the manifest says so.
 */
export async function releaseManifest(hub: Hub, actor: Actor, idOrVersion: string, grp: Group): Promise<{
  identifier: string; version: number; group: Group; groupHash: string; contentHash: string;
  withheld: { applied: boolean; items: number; note?: string };
  items: Array<{ kind: string; ref: string; sha256: string; size: number; site: string; modality: string | null; pseudonym: string }>;
}> {
  await hub.require(actor, 'hub.release.read', 'hub.release', idOrVersion);
  const r = await findRelease(hub, idOrVersion);
  const rows = await hub.db.db.selectFrom('hub_release_items').select(['kind', 'ref', 'sha256', 'size', 'site', 'modality', 'pseudonym']).where('release_id', '=', r.id).where('grp', '=', grp).orderBy('kind').orderBy('ref').execute();
  const w = await hub.db.db.selectFrom('hub_release_withheld').select((eb) => eb.fn.countAll<number>().as('n')).where('release_id', '=', r.id).where('grp', '=', grp).executeTakeFirstOrThrow();
  const withheld = Number(w.n);
  await hub.audit.record({ actor, action: 'hub.release.manifest', code: 'export', resourceType: 'hub.release', resourceId: r.identifier, outcome: 'success', detail: { group: grp, items: rows.length, withheld } });
  return {
    identifier: r.identifier, version: r.version, group: grp, groupHash: grp === 'training' ? r.training_hash : r.validation_hash, contentHash: r.content_hash,
    withheld: withheld ? { applied: true, items: withheld, note: 'items of patients purged (opt-out) after this release was cut are withheld; the group hash still covers them' } : { applied: false, items: 0 },
    items: rows.map((x) => ({ ...x, size: Number(x.size) })),
  };
}

export interface VerifyReport {
  identifier: string;
  ok: boolean;
  checked: number;
  missing: number;
  mismatched: number;
  withheld: number;
  hashes: { training: boolean; validation: boolean; content: boolean };
  problems: Array<{ kind: string; ref: string; problem: string }>;
}

/** Check a release against the blobs and records: every sha256, and the frozen hashes (withheld leaves included). */
export async function verifyRelease(hub: Hub, actor: Actor, idOrVersion: string, onProgress?: (done: number, total: number) => void): Promise<VerifyReport> {
  await hub.require(actor, 'hub.release.manage', 'hub.release', idOrVersion);
  const r = await findRelease(hub, idOrVersion);
  const db = hub.db.db;
  const items = await db.selectFrom('hub_release_items').selectAll().where('release_id', '=', r.id).execute();
  const withheld = await db.selectFrom('hub_release_withheld').select(['grp', 'leaf_hash']).where('release_id', '=', r.id).execute();
  const problems: VerifyReport['problems'] = [];
  let missing = 0;
  let mismatched = 0;
  let done = 0;
  const leaves: Record<string, string[]> = { training: [], validation: [] };
  for (const w of withheld) leaves[w.grp]!.push(w.leaf_hash);
  for (const it of items) {
    const lh = leafHash({ kind: it.kind as ItemRow['kind'], grp: it.grp as Group, site: it.site, ref: it.ref, sha256: it.sha256, size: Number(it.size) });
    if (lh !== it.leaf_hash) { mismatched++; problems.push({ kind: it.kind, ref: it.ref, problem: 'item row altered' }); }
    leaves[it.grp]!.push(it.leaf_hash);
    if (it.kind === 'instance') {
      const inst = await db.selectFrom('hub_instances').select(['blob_key']).where('instance_key', '=', it.ref).executeTakeFirst();
      if (!inst) { missing++; problems.push({ kind: it.kind, ref: it.ref, problem: 'instance no longer indexed' }); }
      else {
        try {
          const h = (await import('node:crypto')).createHash('sha256');
          for await (const c of await hub.blobs.get(inst.blob_key)) h.update(c as Buffer);
          if (h.digest('hex') !== it.sha256) { mismatched++; problems.push({ kind: it.kind, ref: it.ref, problem: 'blob sha256 differs from the manifest' }); }
        } catch {
          missing++;
          problems.push({ kind: it.kind, ref: it.ref, problem: 'blob missing' });
        }
      }
    } else {
      const c = await db.selectFrom('hub_clinical_records').select(['record']).where('id', '=', it.ref).executeTakeFirst();
      if (!c) { missing++; problems.push({ kind: it.kind, ref: it.ref, problem: 'clinical record missing' }); }
      else if (sha256(c.record) !== it.sha256) { mismatched++; problems.push({ kind: it.kind, ref: it.ref, problem: 'clinical record sha256 differs' }); }
    }
    done++;
    if (onProgress && done % 200 === 0) onProgress(done, items.length);
  }
  onProgress?.(items.length, items.length);
  const th = groupHash(leaves.training!);
  const vh = groupHash(leaves.validation!);
  const hashes = { training: th === r.training_hash, validation: vh === r.validation_hash, content: sha256(`training:${th}\nvalidation:${vh}`) === r.content_hash };
  const ok = !missing && !mismatched && hashes.training && hashes.validation && hashes.content;
  await hub.audit.record({ actor, action: 'hub.release.verify', code: 'applicationActivity', resourceType: 'hub.release', resourceId: r.identifier, outcome: ok ? 'success' : 'failure', detail: { checked: items.length, missing, mismatched, withheld: withheld.length, hashes } });
  return { identifier: r.identifier, ok, checked: items.length, missing, mismatched, withheld: withheld.length, hashes, problems: problems.slice(0, 100) };
}

function datasheet(a: {
  identifier: string; version: number; title: string; description: string; createdAt: string; contentHash: string; trainingHash: string; validationHash: string;
  counts: ReleaseCounts; sites: Array<{ code: string; name: string; region: string; shares_data: number; split_mode: string; training_percent: number }>; publisher: string;
}): { json: Record<string, unknown>; md: string } {
  const json = {
    identifier: a.identifier, version: a.version, title: a.title, description: a.description, created: a.createdAt, publisher: a.publisher,
    hashes: { content: a.contentHash, training: a.trainingHash, validation: a.validationHash },
    composition: a.counts,
    sites: a.sites.map((s) => ({ code: s.code, name: s.name, region: s.region, sharesData: !!s.shares_data, split: s.split_mode === 'percent' ? `${s.training_percent}% training` : `all ${s.split_mode}` })),
    collection: 'Sites send DICOM instances de-identified at the site by the PS3.15 Annex E Basic Application Level Confidentiality Profile (retain longitudinal temporal information with modified dates, retain patient characteristics, clean descriptors), with PatientID replaced by a keyed pseudonym, and clinical records following the NCCID template.',
    split: 'Patient-level, sticky, by a keyed hash of the pseudonym against each site’s rule. Data a site shares with other parties never enters validation. Patients found in both groups are excluded and listed for operators.',
    withholding: 'Patients purged after this release (opt-out) are withheld whenever the release is served; the manifest says how many items were withheld.',
    access: { training: 'Approved projects inside the trusted research environment.', validation: 'Sequestered: used only by the independent validation service.' },
    citation: `${a.publisher}. ${a.title}. Version ${a.version}. ${a.identifier}.`,
  };
  const g = a.counts.groups;
  const md = [
    `# ${a.title}`,
    '',
    `- Identifier: \`${a.identifier}\``,
    `- Version: ${a.version}`,
    `- Created: ${a.createdAt}`,
    `- Content hash: \`sha256:${a.contentHash}\``,
    '',
    a.description,
    '',
    '## Composition',
    '',
    '| group | patients | studies | instances | clinical records | bytes |',
    '|---|---:|---:|---:|---:|---:|',
    ...(['training', 'validation'] as const).map((k) => `| ${k} | ${g[k].patients} | ${g[k].studies} | ${g[k].instances} | ${g[k].clinicalRecords} | ${g[k].bytes} |`),
    '',
    '| site | modality | group | instances |',
    '|---|---|---|---:|',
    ...a.counts.bySiteModalityGroup.map((r) => `| ${r.site} | ${r.modality || '-'} | ${r.group} | ${r.instances} |`),
    '',
    `Patients excluded because of an unresolved split conflict: ${a.counts.excludedForSplitConflict}.`,
    '',
    '## Sites',
    '',
    ...json.sites.map((s) => `- ${s.code} (${s.name}, ${s.region}): ${s.split}${s.sharesData ? '; shares data with other parties, never in validation' : ''}`),
    '',
    '## Collection and de-identification',
    '',
    json.collection,
    '',
    '## Training/validation split',
    '',
    json.split,
    '',
    '## Withholding',
    '',
    json.withholding,
    '',
    '## Access',
    '',
    `- Training: ${json.access.training}`,
    `- Validation: ${json.access.validation}`,
    '',
    '## Citation',
    '',
    json.citation,
    '',
  ].join('\n');
  return { json, md };
}

/** A DCAT (v3) catalogue entry for a release, as JSON-LD, for discovery portals. */
export async function releaseCatalogue(hub: Hub, actor: Actor, idOrVersion: string, baseUrl: string): Promise<Record<string, unknown>> {
  await hub.require(actor, 'hub.release.read', 'hub.release', idOrVersion);
  const r = await findRelease(hub, idOrVersion);
  const counts = JSON.parse(r.counts) as ReleaseCounts;
  const w = await withheldOf(hub, r.id);
  const api = `${baseUrl.replace(/\/$/, '')}/api/hub/v1/releases/${encodeURIComponent(r.identifier)}`;
  const modalities = [...new Set(counts.bySiteModalityGroup.map((x) => x.modality).filter(Boolean))].sort();
  const dist = (g: Group, hash: string) => ({
    '@type': 'dcat:Distribution',
    'dct:title': `${g} manifest`,
    'dcat:accessURL': { '@id': `${api}/manifest?group=${g}` },
    'dcat:mediaType': { '@id': 'https://www.iana.org/assignments/media-types/application/json' },
    'dct:accessRights': g === 'training' ? 'Restricted: approved projects in the trusted research environment' : 'Non-public: sequestered for independent validation',
    'spdx:checksum': { '@type': 'spdx:Checksum', 'spdx:algorithm': { '@id': 'spdx:checksumAlgorithm_sha256' }, 'spdx:checksumValue': hash },
  });
  return {
    '@context': {
      dcat: 'http://www.w3.org/ns/dcat#', dct: 'http://purl.org/dc/terms/', foaf: 'http://xmlns.com/foaf/0.1/', spdx: 'http://spdx.org/rdf/terms#',
      adms: 'http://www.w3.org/ns/adms#', xsd: 'http://www.w3.org/2001/XMLSchema#',
    },
    '@id': r.identifier,
    '@type': 'dcat:Dataset',
    'dct:identifier': r.identifier,
    'dct:title': r.title,
    'dct:description': r.description,
    'dct:issued': { '@value': r.created_at, '@type': 'xsd:dateTime' },
    'dcat:version': String(r.version),
    'dct:publisher': { '@type': 'foaf:Agent', 'foaf:name': hub.config.hub.publisher },
    'dcat:keyword': ['medical imaging', 'DICOM', 'chest imaging', 'AI', ...modalities],
    'dct:accessRights': 'Restricted access through a data access committee',
    'adms:versionNotes': w.applied ? `${w.items} items withheld after purges (opt-out)` : 'no items withheld',
    'dcat:landingPage': { '@id': api },
    'spdx:checksum': { '@type': 'spdx:Checksum', 'spdx:algorithm': { '@id': 'spdx:checksumAlgorithm_sha256' }, 'spdx:checksumValue': r.content_hash },
    'dcat:distribution': [dist('training', r.training_hash), dist('validation', r.validation_hash)],
    'dct:extent': `${counts.groups.training.patients + counts.groups.validation.patients} patients, ${counts.groups.training.instances + counts.groups.validation.instances} instances`,
  };
}
