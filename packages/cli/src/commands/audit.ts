import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { systemActor } from '@imago/identity';
import { configFor } from '../context.js';
import { openCore } from '../platform.js';
import { progress } from '../progress.js';

export function register(program: Command): void {
  const audit = program.command('audit').description('the append-only, hash-chained audit log');
  audit
    .command('verify')
    .description('walk the hash chain and report the first broken link (exit 1 if broken)')
    .action(async (_o: unknown, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        const total = await core.audit.count();
        const bar = progress('verifying', total);
        let last = 0;
        const r = await core.audit.verify((n) => {
          bar.tick(n - last);
          last = n;
        });
        bar.stop();
        if (r.ok) {
          console.log(`audit chain OK: ${r.checked} events, head ${r.head}`);
        } else {
          console.log(`audit chain BROKEN at event ${r.broken!.seq}: ${r.broken!.reason} (${r.checked} events verified before it)`);
          process.exitCode = 1;
        }
        await core.audit.record({ actor: systemActor(), action: 'audit.verify', code: 'auditLogUsed', resourceType: 'audit', outcome: r.ok ? 'success' : 'failure', detail: { checked: r.checked } });
      } finally {
        await core.close();
      }
    });
  audit
    .command('export')
    .description('write the log as FHIR R4 AuditEvent NDJSON')
    .option('-o, --out <file>', 'output file (default stdout)')
    .action(async (opts: { out?: string }, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        await core.audit.record({ actor: systemActor(), action: 'audit.export', code: 'auditLogUsed', resourceType: 'audit', outcome: 'success' });
        const total = await core.audit.count();
        const out = opts.out ? createWriteStream(opts.out) : process.stdout;
        const bar = opts.out ? progress('exporting', total) : null;
        for await (const line of core.audit.exportFhir()) {
          if (!out.write(line + '\n')) await once(out, 'drain');
          bar?.tick();
        }
        bar?.stop();
        if (opts.out) {
          (out as ReturnType<typeof createWriteStream>).end();
          await once(out, 'finish');
        }
      } finally {
        await core.close();
      }
    });
}
