import { sql } from '@imago/db';
import type { Actor } from '@imago/audit';
import type { Hub } from './hub.js';

export interface HubStats {
  totals: { sites: number; patients: number; studies: number; instances: number; bytes: number; clinicalRecords: number; splitConflicts: number };
  overTime: Array<{ period: string; site: string; modality: string; group: string; instances: number }>;
  /** New patients per period (by `hub_patients.assigned_at`, their first arrival), per site (the site that first sent them) and group. Sums to `totals.patients`. */
  patientsOverTime: Array<{ period: string; site: string; group: string; patients: number }>;
  /** The same new patients, per modality they have at least one instance of (a patient counts once per modality, so this does not sum to the total). */
  patientsOverTimeByModality: Array<{ period: string; site: string; modality: string; group: string; patients: number }>;
  completeness: Array<{ site: string; patients: number; fields: Record<string, number> }>;
  distributions: Record<string, Record<string, Array<{ category: string; count: number; share: number; reference: number | null }>>>;
  splitBalance: Array<{ site: string; rule: string; training: number; validation: number; trainingShare: number | null; configuredTrainingPercent: number }>;
}

function flatten(o: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = v;
  }
  return out;
}

const SKIP_FIELDS = new Set(['kind', 'templateVersion', 'submittingSite', 'patientId', 'pseudonym']);

/**
 * The data-quality and representativeness view the web UI draws: counts per
 * site, modality and group over time; completeness of each clinical field per
 * site; age, sex and ethnicity per group against the reference population;
 * split balance per site.
 */
export async function hubStats(hub: Hub, actor: Actor, opts: { bucket?: 'day' | 'month' } = {}): Promise<HubStats> {
  await hub.require(actor, 'hub.stats.read', 'hub.stats');
  const db = hub.db.db;
  const len = opts.bucket === 'day' ? 10 : 7;
  const count = async (t: 'hub_sites' | 'hub_patients' | 'hub_studies' | 'hub_instances' | 'hub_clinical_records' | 'hub_split_conflicts') =>
    Number((await db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const bytes = Number((await db.selectFrom('hub_instances').select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('b')).executeTakeFirstOrThrow()).b);
  const period = sql<string>`substr(hub_instances.received_at, 1, ${sql.lit(len)})`;
  const overTime = await db.selectFrom('hub_instances').innerJoin('hub_patients', 'hub_patients.pseudonym', 'hub_instances.pseudonym')
    .select([period.as('period'), 'hub_instances.site', 'hub_instances.modality', 'hub_patients.grp', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy([period, 'hub_instances.site', 'hub_instances.modality', 'hub_patients.grp'])
    .orderBy('period').execute();
  const pPeriod = sql<string>`substr(hub_patients.assigned_at, 1, ${sql.lit(len)})`;
  const patientsOverTime = await db.selectFrom('hub_patients')
    .select([pPeriod.as('period'), 'hub_patients.site', 'hub_patients.grp', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy([pPeriod, 'hub_patients.site', 'hub_patients.grp'])
    .orderBy('period').orderBy('hub_patients.site').orderBy('hub_patients.grp').execute();
  const pm = db.selectFrom('hub_instances').select(['pseudonym', 'modality']).distinct().as('pm');
  const patientsByModality = await db.selectFrom('hub_patients').innerJoin(pm, 'pm.pseudonym', 'hub_patients.pseudonym')
    .select([pPeriod.as('period'), 'hub_patients.site', 'pm.modality', 'hub_patients.grp', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy([pPeriod, 'hub_patients.site', 'pm.modality', 'hub_patients.grp'])
    .orderBy('period').orderBy('hub_patients.site').orderBy('pm.modality').orderBy('hub_patients.grp').execute();

  // Completeness of the current clinical record per patient, per site.
  const recs = await db.selectFrom('hub_clinical_records').select(['site', 'pseudonym', 'kind', 'received_at', 'record']).orderBy('received_at').execute();
  const current = new Map<string, { site: string; kind: string; record: string }>();
  for (const r of recs) {
    const prev = current.get(r.pseudonym);
    if (!prev || r.kind === 'data' || prev.kind === 'status') current.set(r.pseudonym, r);
  }
  const bySite = new Map<string, { patients: number; filled: Map<string, number> }>();
  for (const c of current.values()) {
    const s = bySite.get(c.site) ?? { patients: 0, filled: new Map<string, number>() };
    bySite.set(c.site, s);
    s.patients++;
    const flat = flatten(JSON.parse(c.record) as Record<string, unknown>);
    for (const [k, v] of Object.entries(flat)) {
      if (SKIP_FIELDS.has(k)) continue;
      s.filled.set(k, (s.filled.get(k) ?? 0) + (v === null || v === undefined || v === '' ? 0 : 1));
    }
  }
  const completeness = [...bySite.entries()].sort().map(([site, s]) => ({
    site, patients: s.patients, fields: Object.fromEntries([...s.filled.entries()].sort().map(([k, n]) => [k, Math.round((n / s.patients) * 1000) / 1000])),
  }));

  const ref = hub.config.hub.referencePopulation;
  const distributions: HubStats['distributions'] = {};
  for (const [dim, col, refKey] of [['sex', 'sex', 'sex'], ['ageBand', 'age_band', 'ageBand'], ['ethnicity', 'ethnicity', 'ethnicity']] as const) {
    const rows = await db.selectFrom('hub_patients').select(['grp', sql<string | null>`${sql.ref(col)}`.as('cat'), (eb) => eb.fn.countAll<number>().as('n')]).groupBy(['grp', sql.ref(col)]).execute();
    const out: Record<string, Array<{ category: string; count: number; share: number; reference: number | null }>> = {};
    for (const grp of ['training', 'validation']) {
      const mine = rows.filter((r) => r.grp === grp);
      const total = mine.reduce((a, r) => a + Number(r.n), 0);
      const cats = new Set([...mine.map((r) => r.cat ?? 'unknown'), ...Object.keys(ref[refKey] ?? {})]);
      out[grp] = [...cats].sort().map((c) => {
        const n = Number(mine.find((r) => (r.cat ?? 'unknown') === c)?.n ?? 0);
        return { category: c, count: n, share: total ? Math.round((n / total) * 1000) / 1000 : 0, reference: ref[refKey]?.[c] ?? null };
      });
    }
    distributions[dim] = out;
  }

  const sites = await db.selectFrom('hub_sites').selectAll().orderBy('code').execute();
  const bal = await db.selectFrom('hub_patients').select(['site', 'grp', (eb) => eb.fn.countAll<number>().as('n')]).groupBy(['site', 'grp']).execute();
  const splitBalance = sites.map((s) => {
    const t = Number(bal.find((b) => b.site === s.code && b.grp === 'training')?.n ?? 0);
    const v = Number(bal.find((b) => b.site === s.code && b.grp === 'validation')?.n ?? 0);
    const rule = s.split_mode === 'percent' ? `percent:${s.training_percent}` : s.split_mode;
    return { site: s.code, rule: s.shares_data ? `${rule}+shares-data` : rule, training: t, validation: v, trainingShare: t + v ? Math.round((t / (t + v)) * 1000) / 1000 : null, configuredTrainingPercent: s.shares_data ? 100 : s.training_percent };
  });

  const stats: HubStats = {
    totals: {
      sites: await count('hub_sites'), patients: await count('hub_patients'), studies: await count('hub_studies'), instances: await count('hub_instances'),
      bytes, clinicalRecords: await count('hub_clinical_records'), splitConflicts: await count('hub_split_conflicts'),
    },
    overTime: overTime.map((r) => ({ period: r.period, site: r.site, modality: r.modality ?? '', group: r.grp, instances: Number(r.n) })),
    patientsOverTime: patientsOverTime.map((r) => ({ period: r.period, site: r.site, group: r.grp, patients: Number(r.n) })),
    patientsOverTimeByModality: patientsByModality.map((r) => ({ period: r.period, site: r.site, modality: r.modality ?? '', group: r.grp, patients: Number(r.n) })),
    completeness,
    distributions,
    splitBalance,
  };
  await hub.audit.record({ actor, action: 'hub.stats.read', code: 'query', resourceType: 'hub.stats', outcome: 'success' });
  return stats;
}
