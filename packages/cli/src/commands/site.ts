import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Actor } from '@imago/audit';
import { clinicalFromCsv, clinicalFromFhir, importDirectory, optoutsFromCsv, saveClinical, SiteNode } from '@imago/site';

import { configFor } from '../context.js';
import { openCore, startPlatform, type Core } from '../platform.js';
import { progress } from '../progress.js';

/**
 * The local operator at the site node's console acts as the site
 * administrator of the site's organisation; every action is audited under
 * that name.
 */
async function cliActor(node: SiteNode): Promise<Actor> {
  const orgId = await node.orgId();
  let who = 'unknown';
  try {
    who = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return { principal: { kind: 'user', id: `cli:${who}`, name: `local operator ${who} (cli)`, grants: [{ role: 'site_admin', orgId }] }, ip: null };
}

async function withSite<T>(cmd: Command, fn: (node: SiteNode, core: Core) => Promise<T>): Promise<T> {
  const config = configFor(cmd);
  config.site.dimse = false;
  const core = await openCore(config);
  const node = await SiteNode.open({ config, logger: core.logger, db: core.db, audit: core.audit });
  try {
    return await fn(node, core);
  } finally {
    await node.stop();
    await core.close();
  }
}

export function register(program: Command): void {
  const site = program.command('site').description('the hospital site node: DIMSE/STOW receive, opt-out, de-identification, clinical data, uplink');

  site
    .command('start')
    .description('start only the site part (site-only deployment): DIMSE server, pipeline workers, site API')
    .option('-p, --port <port>', 'HTTP port (overrides http.port)')
    .action(async (opts: { port?: string }, cmd: Command) => {
      const config = configFor(cmd);
      config.parts = { site: true, hub: false };
      if (opts.port !== undefined) config.http.port = Number(opts.port);
      const p = await startPlatform(config, {});
      process.stdout.write(`Imago site node ${config.site.code} is running.\n  API: ${p.url}/api/site/v1/status\n  DIMSE: AE ${config.site.aeTitle} port ${config.site.dimsePort}\n`);
      const stop = async () => {
        await p.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });

  site
    .command('import <dir>')
    .description('walk a folder and queue every DICOM file for the pipeline (a running node processes them)')
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      await withSite(cmd, async (node) => {
        const bar = progress('importing', 0);
        let last = 0;
        const r = await importDirectory(node, dir, (done, total) => {
          bar.setTotal(total);
          bar.tick(done - last);
          last = done;
        });
        bar.stop();
        console.log(`imported ${r.imported}, skipped ${r.skipped} (not DICOM), failed ${r.failed.length}`);
        for (const f of r.failed.slice(0, 20)) console.log(`  ${f.file}: ${f.reason}`);
        if (r.failed.length) process.exitCode = 1;
      });
    });

  site
    .command('status')
    .description('counts per stage, oldest item waiting, last successful upload, parked items')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withSite(cmd, async (node) => {
        const s = await node.status(await cliActor(node));
        if (opts.json) return void console.log(JSON.stringify(s, null, 2));
        console.log(`site ${s.site}  hub ${s.hub ?? '(not configured)'}`);
        console.log(`instances: ${Object.entries(s.instances).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
        console.log(`clinical:  ${Object.entries(s.clinical).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
        console.log(`purges:    ${Object.entries(s.purges).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
        console.log(`oldest waiting: ${s.oldestWaiting ? `${s.oldestWaiting.id} (${s.oldestWaiting.state}, ${s.oldestWaiting.ageSeconds}s)` : 'none'}`);
        console.log(`last successful upload: ${s.lastSuccessfulUpload ?? 'never'}`);
        console.log(`dropped by opt-out: ${s.droppedOptOut.instances} instances, ${s.droppedOptOut.clinical} clinical records`);
        console.log(`parked: ${s.parked.length}`);
        for (const p of s.parked) console.log(`  ${p.kind} ${p.id}: ${p.reason ?? ''}`);
      });
    });

  site
    .command('retry-parked')
    .description('put parked uploads back in the queue')
    .action(async (_o: unknown, cmd: Command) => {
      await withSite(cmd, async (node) => console.log(`re-queued ${await node.retryParked(await cliActor(node))}`));
    });

  const q = site.command('quarantine').description('instances held for burned-in PHI risk or unreadable');
  q.command('list').description('list quarantined instances with their reasons').action(async (_o: unknown, cmd: Command) => {
    await withSite(cmd, async (node) => {
      for (const i of await node.listQuarantine(await cliActor(node))) console.log(`${i.id}\t${i.modality ?? ''}\t${i.receivedAt}\t${i.reason ?? ''}`);
    });
  });
  for (const d of ['release', 'reject'] as const) {
    q.command(`${d} <id>`).description(d === 'release' ? 'release an instance for de-identification and upload' : 'reject and delete a quarantined instance').option('--note <text>', 'reviewer note, kept in the audit log').action(async (id: string, o: { note?: string }, cmd: Command) => {
      await withSite(cmd, async (node) => {
        await node.reviewQuarantine(await cliActor(node), id, d, o.note);
        console.log(`${d}d ${id}`);
      });
    });
  }

  const o = site.command('optout').description('the national data opt-out list (kept as keyed hashes)');
  o.command('import <csv>').description('CSV with nhs_number, or patient_id and issuer').action(async (file: string, _x: unknown, cmd: Command) => {
    await withSite(cmd, async (node) => {
      const r = await node.addOptouts(await cliActor(node), optoutsFromCsv(readFileSync(file, 'utf8')), 'csv');
      console.log(`added ${r.added}, already listed ${r.already}, purge requests ${r.purgesRequested}`);
    });
  });
  o.command('add <patientId>').description('opt one patient out (and request a hub purge if their data was sent)').option('--issuer <issuer>', 'issuer of the patient ID (default: NHS for a valid NHS number, else the site)').action(async (id: string, x: { issuer?: string }, cmd: Command) => {
    await withSite(cmd, async (node) => {
      const r = await node.addOptouts(await cliActor(node), [{ patientId: id, issuer: x.issuer ?? null }], 'cli');
      console.log(`added ${r.added}, already listed ${r.already}, purge requests ${r.purgesRequested}`);
    });
  });
  o.command('list').description('count the opted-out patients (the list itself is never shown)').action(async (_x: unknown, cmd: Command) => {
    await withSite(cmd, async (node) => {
      const r = await node.listOptouts(await cliActor(node));
      console.log(`${r.count} patients opted out; dropped ${r.droppedInstances} instances and ${r.droppedClinical} clinical records`);
      for (const e of r.entries) console.log(`  ${e.hash}…\t${e.source}\t${e.createdAt}`);
    });
  });

  site.command('pseudonym <pseudonym>').description('look up a pseudonym in the site map (audited)').action(async (p: string, _x: unknown, cmd: Command) => {
    await withSite(cmd, async (node) => {
      const m = await node.lookupPseudonym(await cliActor(node), p);
      console.log(m ? `${m.pseudonym}\t${m.patientId}\t${m.issuer}` : 'not found');
    });
  });

  const c = site.command('clinical').description('clinical data (NCCID schema)');
  c.command('import <file>').description('import a CSV (template) or a FHIR R4 Bundle (.json)').action(async (file: string, _x: unknown, cmd: Command) => {
    await withSite(cmd, async (node) => {
      const text = readFileSync(file, 'utf8');
      const recs = /\.json$/i.test(file) ? clinicalFromFhir(JSON.parse(text), { site: node.config.site.code }) : clinicalFromCsv(text, { site: node.config.site.code });
      const r = await saveClinical(node, await cliActor(node), recs, { source: /\.json$/i.test(file) ? 'fhir' : 'csv' });
      console.log(`stored ${r.stored}, unchanged ${r.unchanged}, dropped (opt-out) ${r.droppedOptOut}`);
    });
  });
}
