import type { Command } from 'commander';
import { configFor } from '../context.js';
import { openCore } from '../platform.js';

export function register(program: Command): void {
  const token = program.command('token').description('manage API tokens for sites and services');
  token
    .command('create <name>')
    .description('create a token; it is printed once and stored only hashed')
    .requiredOption('-r, --role <role>', 'role the token acts in, e.g. site_uplink')
    .option('-o, --org <code>', 'organisation code the role is held in')
    .action(async (name: string, opts: { role: string; org?: string }, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        const { token: secret, view } = await core.identity.createToken('system', { name, role: opts.role, org: opts.org ?? null });
        process.stderr.write(`token ${view.id} created; store it now, it is not shown again:\n`);
        console.log(secret);
      } finally {
        await core.close();
      }
    });
  token
    .command('revoke <id>')
    .description('revoke a token by its id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        await core.identity.revokeToken('system', id);
        console.log(`revoked ${id}`);
      } finally {
        await core.close();
      }
    });
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async (_o: unknown, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        for (const t of await core.identity.listTokens('system')) {
          console.log(`${t.id}  ${t.name.padEnd(20)} ${t.role.padEnd(18)} ${t.revokedAt ? `revoked ${t.revokedAt}` : 'active'}`);
        }
      } finally {
        await core.close();
      }
    });
}
