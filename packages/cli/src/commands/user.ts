import type { Command } from 'commander';
import { badRequest } from '@imago/core';
import { configFor } from '../context.js';
import { openCore } from '../platform.js';
import { readSecretInput } from '../secrets.js';

/** Parse `role@ORG` or `role` grants. */
export function parseGrants(list: string[]): Array<{ role: string; org: string | null }> {
  return list.map((g) => {
    const [role, org] = g.split('@');
    if (!role) throw badRequest(`bad --role value: ${g}`);
    return { role, org: org ?? null };
  });
}

export function register(program: Command): void {
  const user = program.command('user').description('manage user accounts (local administration)');
  user
    .command('add <username>')
    .description('add a user; the password is read from --password-file or stdin')
    .requiredOption('-r, --role <role@ORG...>', 'role grant(s), e.g. site_admin@DEMO1 or platform_operator')
    .option('--name <display name>', 'display name')
    .option('--email <email>', 'email address')
    .option('--password-file <file>', 'file holding the password (default: read stdin)')
    .option('--oidc-subject <sub>', 'link to an OpenID Connect subject instead of a password')
    .action(async (username: string, opts: { role: string[]; name?: string; email?: string; passwordFile?: string; oidcSubject?: string }, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        const password = opts.oidcSubject ? null : await readSecretInput(opts.passwordFile, 'password');
        const u = await core.identity.addUser('system', {
          username, displayName: opts.name ?? username, email: opts.email ?? null, password, oidcSubject: opts.oidcSubject ?? null, grants: parseGrants(opts.role),
        });
        console.log(`added ${u.username} (${u.id})`);
      } finally {
        await core.close();
      }
    });
  user
    .command('list')
    .description('list users and their roles')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const core = await openCore(configFor(cmd));
      try {
        const users = await core.identity.listUsers('system');
        if (opts.json) console.log(JSON.stringify(users, null, 2));
        else for (const u of users) console.log(`${u.username.padEnd(16)} ${u.disabled ? 'disabled' : 'active  '} ${u.grants.map((g) => (g.orgCode ? `${g.role}@${g.orgCode}` : g.role)).join(', ')}`);
      } finally {
        await core.close();
      }
    });
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    user
      .command(`${name} <username>`)
      .description(`${name} a user (disabling also ends their sessions)`)
      .action(async (username: string, _opts: unknown, cmd: Command) => {
        const core = await openCore(configFor(cmd));
        try {
          await core.identity.setDisabled('system', username, disabled);
          console.log(`${username} ${disabled ? 'disabled' : 'enabled'}`);
        } finally {
          await core.close();
        }
      });
  }
}
