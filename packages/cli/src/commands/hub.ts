import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Actor } from '@imago/audit';
import { configFor } from '../context.js';
import { openCore, type Core } from '../platform.js';
import { progress } from '../progress.js';

/** The local operator: whoever can run the CLI against the database acts as a platform operator. */
function cliActor(): Actor {
  let name = 'cli';
  try {
    name = `cli:${userInfo().username}`;
  } catch {
    /* no passwd entry */
  }
  return { principal: { kind: 'user', id: 'cli', name, grants: [{ role: 'platform_operator', orgId: null }] }, ip: null };
}

async function withHub<T>(cmd: Command, fn: (h: import('@imago/hub').Hub, core: Core) => Promise<T>): Promise<T> {
  const core = await openCore(configFor(cmd));
  const { createHub } = await import('@imago/hub');
  const hub = createHub({ config: core.config, db: core.db, audit: core.audit, identity: core.identity, logger: core.logger });
  try {
    return await fn(hub, core);
  } finally {
    await hub.blobs.close();
    await core.close();
  }
}

const json = (v: unknown) => console.log(JSON.stringify(v, null, 2));

export function register(program: Command): void {
  const hub = program.command('hub').description('the national warehouse: sites, stats, purges, releases, linkage');

  const site = hub.command('site').description('register and manage contributing sites');
  site
    .command('add <code>')
    .description('register a site and print its uplink token (shown once)')
    .requiredOption('-n, --name <name>', 'site name')
    .requiredOption('-r, --region <region>', 'region')
    .option('--shares-data', 'the site shares its data with other parties (never contributes to validation)', false)
    .option('-s, --split <mode>', 'training | validation | percent', 'percent')
    .option('-t, --training-percent <n>', 'percentage of patients in training when --split percent')
    .action(async (code: string, o: { name: string; region: string; sharesData: boolean; split: string; trainingPercent?: string }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        if (!['training', 'validation', 'percent'].includes(o.split)) throw new Error('--split must be training, validation or percent');
        const r = await h.registerSite(cliActor(), {
          code, name: o.name, region: o.region, sharesData: o.sharesData, splitMode: o.split as 'training' | 'validation' | 'percent',
          ...(o.trainingPercent !== undefined ? { trainingPercent: Number(o.trainingPercent) } : {}),
        });
        process.stderr.write(`site ${r.site.code} registered (${r.site.rule}); uplink token ${r.tokenId}, store it now, it is not shown again:\n`);
        console.log(r.token);
      });
    });
  site
    .command('list')
    .description('list sites and their split rules')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const sites = await h.listSites(cliActor());
        if (o.json) return json(sites);
        for (const s of sites) console.log(`${s.code.padEnd(12)} ${s.name.padEnd(32)} ${s.region.padEnd(16)} ${s.rule}`);
      });
    });
  site
    .command('set <code>')
    .description('change a site’s split rule or sharing flag (patients already assigned keep their group)')
    .option('-s, --split <mode>', 'training | validation | percent')
    .option('-t, --training-percent <n>', 'percentage in training')
    .option('--shares-data <yes|no>', 'whether the site shares its data with other parties')
    .action(async (code: string, o: { split?: string; trainingPercent?: string; sharesData?: string }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const s = await h.updateSite(cliActor(), code, {
          ...(o.split ? { splitMode: o.split as 'training' | 'validation' | 'percent' } : {}),
          ...(o.trainingPercent !== undefined ? { trainingPercent: Number(o.trainingPercent) } : {}),
          ...(o.sharesData !== undefined ? { sharesData: /^(y|yes|true|1)$/i.test(o.sharesData) } : {}),
        });
        console.log(`${s.code}: ${s.rule}`);
      });
    });
  site
    .command('token <code>')
    .description('issue a new uplink token for a site (printed once)')
    .option('--revoke-others', 'revoke the site’s earlier uplink tokens', false)
    .option('--revoke', 'revoke every active uplink token of the site and issue none (same as `hub site revoke`)', false)
    .action(async (code: string, o: { revokeOthers: boolean; revoke: boolean }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        if (o.revoke) {
          const r = await h.revokeSiteTokens(cliActor(), code);
          console.log(`${code}: ${r.revoked} uplink token(s) revoked; the site cannot upload until a new token is issued`);
          return;
        }
        const t = await h.issueSiteToken(cliActor(), code, { revokeOthers: o.revokeOthers });
        process.stderr.write(`token ${t.tokenId} issued${t.revoked ? `, ${t.revoked} earlier token(s) revoked` : ''}; store it now:\n`);
        console.log(t.token);
      });
    });

  site
    .command('revoke <code>')
    .description('revoke every active uplink token of a site without issuing a new one')
    .action(async (code: string, _o: unknown, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const r = await h.revokeSiteTokens(cliActor(), code);
        console.log(`${code}: ${r.revoked} uplink token(s) revoked; the site cannot upload until a new token is issued`);
      });
    });

  hub
    .command('stats')
    .description('data quality: totals, split balance, conflicts (--json for everything)')
    .option('--json', 'print the full data-quality document')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const { hubStats } = await import('@imago/hub');
        const s = await hubStats(h, cliActor());
        if (o.json) return json(s);
        const t = s.totals;
        console.log(`sites ${t.sites}  patients ${t.patients}  studies ${t.studies}  instances ${t.instances}  bytes ${t.bytes}  clinical records ${t.clinicalRecords}`);
        console.log(`split conflicts: ${t.splitConflicts}${t.splitConflicts ? '  (see GET /api/hub/v1/split/conflicts)' : ''}`);
        for (const b of s.splitBalance) console.log(`  ${b.site.padEnd(12)} ${b.rule.padEnd(24)} training ${b.training}  validation ${b.validation}  share ${b.trainingShare ?? '-'}`);
      });
    });

  hub
    .command('purge <pseudonym>')
    .description('remove everything held for a patient and write evidence (counts and hashes, never the identity)')
    .option('--reason <text>', 'reason recorded with the evidence')
    .action(async (pseudonym: string, o: { reason?: string }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const r = await h.purge(cliActor(), pseudonym, o.reason ? { reason: o.reason } : {});
        console.log(`${r.status}; evidence ${r.evidenceId}${Object.keys(r.counts).length ? `; ${Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`);
      });
    });

  hub
    .command('link <file>')
    .description('import an external source keyed by pseudonym (CSV with a pseudonym column, JSON array or NDJSON)')
    .requiredOption('-s, --source <name>', 'name of the source, e.g. ethnicity-feed or isaric')
    .action(async (file: string, o: { source: string }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const r = await h.importLinked(cliActor(), { source: o.source, fileName: basename(file), content: readFileSync(file, 'utf8') });
        console.log(`${r.rows} rows: ${r.fields} fields merged, ${r.skipped} unchanged, ${r.unmatched} rows for patients not (yet) held, ${r.rejected.length} rejected`);
        for (const x of r.rejected.slice(0, 20)) console.log(`  row ${x.row}: ${x.reason}`);
      });
    });

  const rel = hub.command('release').description('immutable, versioned dataset releases');
  rel
    .command('create')
    .description('freeze a release of training and validation (manifests, checksums, datasheet, citable identifier)')
    .option('--title <title>')
    .option('--description <text>')
    .action(async (o: { title?: string; description?: string }, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const { createRelease } = await import('@imago/hub');
        const r = await createRelease(h, cliActor(), { ...(o.title ? { title: o.title } : {}), ...(o.description ? { description: o.description } : {}) });
        const g = r.counts.groups;
        console.log(r.identifier);
        process.stderr.write(`release v${r.version}: training ${g.training.patients} patients / ${g.training.instances} instances, validation ${g.validation.patients} patients / ${g.validation.instances} instances\n`);
      });
    });
  rel
    .command('list')
    .description('list releases')
    .action(async (_o: unknown, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const { listReleases } = await import('@imago/hub');
        for (const r of await listReleases(h, cliActor())) {
          console.log(`v${String(r.version).padEnd(4)} ${r.identifier}  ${r.createdAt}  ${r.withheld.applied ? `(${r.withheld.items} items withheld after purges)` : ''}`);
        }
      });
    });
  rel
    .command('show <release>')
    .description('show a release (version, id or identifier); --datasheet md|json, --catalog for DCAT JSON-LD')
    .option('--datasheet <format>', 'md or json')
    .option('--catalog', 'print the DCAT catalogue entry (JSON-LD)')
    .action(async (id: string, o: { datasheet?: string; catalog?: boolean }, cmd: Command) => {
      await withHub(cmd, async (h, core) => {
        const { getRelease, releaseCatalogue } = await import('@imago/hub');
        if (o.catalog) return json(await releaseCatalogue(h, cliActor(), id, core.config.http.publicUrl ?? `http://${core.config.http.host}:${core.config.http.port}`));
        const r = await getRelease(h, cliActor(), id);
        if (o.datasheet === 'md') return void process.stdout.write(r.datasheetMarkdown);
        if (o.datasheet === 'json') return json(r.datasheet);
        const { datasheet: _d, datasheetMarkdown: _m, ...rest } = r;
        json(rest);
      });
    });
  rel
    .command('verify <release>')
    .description('verify a release’s manifest against the blobs and its frozen hashes')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await withHub(cmd, async (h) => {
        const { verifyRelease } = await import('@imago/hub');
        let bar: ReturnType<typeof progress> | undefined;
        let last = 0;
        const r = await verifyRelease(h, cliActor(), id, (done, total) => {
          bar ??= progress('verify', total);
          bar.tick(done - last);
          last = done;
        });
        bar?.stop();
        console.log(`${r.identifier}: ${r.ok ? 'OK' : 'FAILED'}; ${r.checked} items checked, ${r.missing} missing, ${r.mismatched} mismatched, ${r.withheld} withheld after purges; hashes training ${r.hashes.training ? 'ok' : 'BAD'}, validation ${r.hashes.validation ? 'ok' : 'BAD'}, content ${r.hashes.content ? 'ok' : 'BAD'}`);
        for (const p of r.problems.slice(0, 20)) console.log(`  ${p.kind} ${p.ref}: ${p.problem}`);
        if (!r.ok) process.exitCode = 1;
      });
    });
}
