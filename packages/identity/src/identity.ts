import { createHash, randomBytes } from 'node:crypto';
import {
  ANONYMOUS, badRequest, conflict, isRole, newId, notFound, tooManyRequests, unauthorized,
  type Config, type Principal, type RoleGrant,
} from '@imago/core';
import type { DbOrTrx, ImagoDb } from '@imago/db';
import type { Actor, AuditLog } from '@imago/audit';
import { checkPasswordPolicy, DUMMY_HASH, hashPassword, verifyPassword } from './passwords.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export interface UserView {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  disabled: boolean;
  grants: Array<RoleGrant & { orgCode: string | null }>;
  createdAt: string;
}

export interface TokenView {
  id: string;
  name: string;
  role: string;
  orgId: string | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface GrantInput {
  role: string;
  /** Organisation code, or null for a national role. */
  org: string | null;
}

/**
 * Users, organisations, role grants, sessions and API tokens. Every mutating
 * call checks the policy through the audit log's `require` and is audited.
 */
export class Identity {
  constructor(
    private readonly h: ImagoDb,
    private readonly audit: AuditLog,
    private readonly cfg: Config['auth'],
  ) {}

  private get db() {
    return this.h.db;
  }

  // ---- organisations -------------------------------------------------------
  async ensureOrganisation(code: string, name: string, kind: string, trx: DbOrTrx = this.db): Promise<string> {
    const existing = await trx.selectFrom('organisations').select('id').where('code', '=', code).executeTakeFirst();
    if (existing) return existing.id;
    const id = newId();
    await trx.insertInto('organisations').values({ id, code, name, kind, created_at: new Date().toISOString() }).onConflict((oc) => oc.column('code').doNothing()).execute();
    const row = await trx.selectFrom('organisations').select('id').where('code', '=', code).executeTakeFirstOrThrow();
    return row.id;
  }

  async orgIdByCode(code: string): Promise<string> {
    const r = await this.db.selectFrom('organisations').select('id').where('code', '=', code).executeTakeFirst();
    if (!r) throw notFound(`organisation ${code} not found`);
    return r.id;
  }

  async listOrganisations() {
    return this.db.selectFrom('organisations').selectAll().orderBy('code').execute();
  }

  // ---- users ---------------------------------------------------------------
  /**
   * Create a user. `actor` must hold user.manage, except for the bootstrap
   * path (`system: true`) that the CLI and demo loader use on the local machine.
   */
  async addUser(
    actor: Actor | 'system',
    input: { username: string; displayName?: string; email?: string | null; password?: string | null; oidcSubject?: string | null; grants: GrantInput[] },
  ): Promise<UserView> {
    if (actor !== 'system') await this.audit.require(actor, 'user.manage', { type: 'user' });
    if (!/^[a-z0-9._@-]{2,64}$/i.test(input.username)) throw badRequest('username must be 2-64 characters of letters, digits, . _ @ -');
    if (input.password) {
      const p = checkPasswordPolicy(input.password);
      if (p) throw badRequest(p);
    }
    for (const g of input.grants) if (!isRole(g.role)) throw badRequest(`unknown role ${g.role}`);
    const id = newId();
    const passwordHash = input.password ? await hashPassword(input.password) : null;
    await this.h.transaction(async (trx) => {
      const dup = await trx.selectFrom('users').select('id').where('username', '=', input.username).executeTakeFirst();
      if (dup) throw conflict(`user ${input.username} already exists`);
      await trx
        .insertInto('users')
        .values({
          id, username: input.username, display_name: input.displayName ?? input.username, email: input.email ?? null,
          password_hash: passwordHash, oidc_subject: input.oidcSubject ?? null, disabled: 0, failed_logins: 0, locked_until: null,
          created_at: new Date().toISOString(),
        })
        .execute();
      for (const g of input.grants) {
        const orgId = g.org ? (await trx.selectFrom('organisations').select('id').where('code', '=', g.org).executeTakeFirst())?.id : null;
        if (g.org && !orgId) throw notFound(`organisation ${g.org} not found`);
        await trx.insertInto('role_grants').values({ user_id: id, role: g.role, org_id: orgId ?? null }).execute();
      }
      await this.audit.record(
        { actor: actor === 'system' ? systemActor() : actor, action: 'user.add', code: 'securityAlert', resourceType: 'user', resourceId: id, outcome: 'success', detail: { roles: input.grants.map((g) => g.role) } },
        trx,
      );
    });
    return this.getUser(id);
  }

  async getUser(id: string): Promise<UserView> {
    const u = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!u) throw notFound('user not found');
    return { id: u.id, username: u.username, displayName: u.display_name, email: u.email, disabled: !!u.disabled, grants: await this.grantsOf(u.id), createdAt: u.created_at };
  }

  async findUserByUsername(username: string): Promise<UserView | null> {
    const u = await this.db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst();
    return u ? this.getUser(u.id) : null;
  }

  async listUsers(actor: Actor | 'system'): Promise<UserView[]> {
    if (actor !== 'system') await this.audit.require(actor, 'user.manage', { type: 'user' });
    const rows = await this.db.selectFrom('users').select('id').orderBy('username').execute();
    return Promise.all(rows.map((r) => this.getUser(r.id)));
  }

  async setDisabled(actor: Actor | 'system', username: string, disabled: boolean): Promise<void> {
    if (actor !== 'system') await this.audit.require(actor, 'user.manage', { type: 'user' });
    const u = await this.db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst();
    if (!u) throw notFound(`user ${username} not found`);
    await this.h.transaction(async (trx) => {
      await trx.updateTable('users').set({ disabled: disabled ? 1 : 0 }).where('id', '=', u.id).execute();
      if (disabled) await trx.deleteFrom('sessions').where('user_id', '=', u.id).execute();
      await this.audit.record({ actor: actor === 'system' ? systemActor() : actor, action: disabled ? 'user.disable' : 'user.enable', code: 'securityAlert', resourceType: 'user', resourceId: u.id, outcome: 'success' }, trx);
    });
  }

  private async grantsOf(userId: string): Promise<Array<RoleGrant & { orgCode: string | null }>> {
    const rows = await this.db
      .selectFrom('role_grants')
      .leftJoin('organisations', 'organisations.id', 'role_grants.org_id')
      .select(['role_grants.role', 'role_grants.org_id', 'organisations.code'])
      .where('role_grants.user_id', '=', userId)
      .execute();
    return rows.map((r) => ({ role: r.role, orgId: r.org_id, orgCode: r.code ?? null }));
  }

  async principalForUser(userId: string): Promise<Principal> {
    const u = await this.getUser(userId);
    return { kind: 'user', id: u.id, name: u.username, grants: u.grants.map((g) => ({ role: g.role, orgId: g.orgId })) };
  }

  // ---- password login and sessions ----------------------------------------
  /**
   * Password login with brute-force protection: after `loginMaxFailures`
   * failures the account is locked for `loginLockoutSeconds`. Unknown users
   * cost the same scrypt time as known ones.
   */
  async login(username: string, password: string, ip: string | null): Promise<{ sessionToken: string; expiresAt: string; user: UserView }> {
    const u = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    const actor: Actor = { principal: u ? { kind: 'user', id: u.id, name: u.username, grants: [] } : ANONYMOUS, ip };
    const now = new Date();
    if (u?.locked_until && new Date(u.locked_until) > now) {
      await this.audit.record({ actor, action: 'auth.login', code: 'userAuthentication', resourceType: 'session', outcome: 'denied', detail: { reason: 'locked' } });
      throw tooManyRequests('too many failed logins; try again later');
    }
    const ok = await verifyPassword(password, u?.password_hash ?? DUMMY_HASH);
    if (!u || !ok || u.disabled) {
      if (u && !u.disabled) {
        const failures = u.failed_logins + 1;
        const lock = failures >= this.cfg.loginMaxFailures ? new Date(now.getTime() + this.cfg.loginLockoutSeconds * 1000).toISOString() : null;
        await this.db.updateTable('users').set({ failed_logins: lock ? 0 : failures, locked_until: lock }).where('id', '=', u.id).execute();
      }
      await this.audit.record({ actor, action: 'auth.login', code: 'userAuthentication', resourceType: 'session', outcome: 'failure' });
      throw unauthorized('invalid username or password');
    }
    await this.db.updateTable('users').set({ failed_logins: 0, locked_until: null }).where('id', '=', u.id).execute();
    return this.createSession(u.id, ip, 'password');
  }

  async createSession(userId: string, ip: string | null, method: 'password' | 'oidc'): Promise<{ sessionToken: string; expiresAt: string; user: UserView }> {
    const token = randomBytes(32).toString('base64url');
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.cfg.sessionTtlMinutes * 60_000).toISOString();
    await this.db.insertInto('sessions').values({ id_hash: sha256(token), user_id: userId, created_at: now.toISOString(), expires_at: expiresAt, ip }).execute();
    const user = await this.getUser(userId);
    await this.audit.record({ actor: { principal: { kind: 'user', id: userId, name: user.username, grants: [] }, ip }, action: 'auth.login', code: 'userAuthentication', resourceType: 'session', outcome: 'success', detail: { method } });
    return { sessionToken: token, expiresAt, user };
  }

  async principalForSession(token: string): Promise<Principal | null> {
    const s = await this.db.selectFrom('sessions').selectAll().where('id_hash', '=', sha256(token)).executeTakeFirst();
    if (!s) return null;
    if (new Date(s.expires_at) <= new Date()) {
      await this.db.deleteFrom('sessions').where('id_hash', '=', s.id_hash).execute();
      return null;
    }
    const u = await this.db.selectFrom('users').select(['disabled']).where('id', '=', s.user_id).executeTakeFirst();
    if (!u || u.disabled) return null;
    return this.principalForUser(s.user_id);
  }

  async logout(token: string, ip: string | null): Promise<void> {
    const s = await this.db.selectFrom('sessions').selectAll().where('id_hash', '=', sha256(token)).executeTakeFirst();
    if (!s) return;
    await this.db.deleteFrom('sessions').where('id_hash', '=', s.id_hash).execute();
    await this.audit.record({ actor: { principal: await this.principalForUser(s.user_id), ip }, action: 'auth.logout', code: 'userAuthentication', resourceType: 'session', outcome: 'success' });
  }

  // ---- API tokens ----------------------------------------------------------
  /** Create an API token. The secret is returned once and stored only hashed. */
  async createToken(actor: Actor | 'system', input: { name: string; role: string; org: string | null }, trx?: DbOrTrx): Promise<{ token: string; view: TokenView }> {
    if (actor !== 'system') await this.audit.require(actor, 'token.manage', { type: 'token' });
    if (!isRole(input.role)) throw badRequest(`unknown role ${input.role}`);
    const db = trx ?? this.db;
    const orgId = input.org ? (await db.selectFrom('organisations').select('id').where('code', '=', input.org).executeTakeFirst())?.id : null;
    if (input.org && !orgId) throw notFound(`organisation ${input.org} not found`);
    const id = newId();
    const token = `imt_${id.replace(/-/g, '')}_${randomBytes(24).toString('base64url')}`;
    const now = new Date().toISOString();
    await db.insertInto('api_tokens').values({ id, name: input.name, token_hash: sha256(token), role: input.role, org_id: orgId ?? null, created_by: actor === 'system' ? 'system' : actor.principal.id, created_at: now, revoked_at: null, last_used_at: null }).execute();
    await this.audit.record({ actor: actor === 'system' ? systemActor() : actor, action: 'token.create', code: 'securityAlert', resourceType: 'token', resourceId: id, outcome: 'success', detail: { role: input.role } }, trx);
    return { token, view: { id, name: input.name, role: input.role, orgId: orgId ?? null, createdAt: now, revokedAt: null, lastUsedAt: null } };
  }

  async revokeToken(actor: Actor | 'system', id: string, trx?: DbOrTrx): Promise<void> {
    if (actor !== 'system') await this.audit.require(actor, 'token.manage', { type: 'token', id });
    const db = trx ?? this.db;
    const r = await db.updateTable('api_tokens').set({ revoked_at: new Date().toISOString() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw notFound('token not found or already revoked');
    await this.audit.record({ actor: actor === 'system' ? systemActor() : actor, action: 'token.revoke', code: 'securityAlert', resourceType: 'token', resourceId: id, outcome: 'success' }, trx);
  }

  async listTokens(actor: Actor | 'system'): Promise<TokenView[]> {
    if (actor !== 'system') await this.audit.require(actor, 'token.manage', { type: 'token' });
    const rows = await this.db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, orgId: r.org_id, createdAt: r.created_at, revokedAt: r.revoked_at, lastUsedAt: r.last_used_at }));
  }

  async principalForToken(token: string): Promise<Principal | null> {
    if (!token.startsWith('imt_')) return null;
    const r = await this.db.selectFrom('api_tokens').selectAll().where('token_hash', '=', sha256(token)).executeTakeFirst();
    if (!r || r.revoked_at) return null;
    const now = new Date();
    // Touch at most once a minute to keep hot paths cheap.
    if (!r.last_used_at || now.getTime() - new Date(r.last_used_at).getTime() > 60_000) {
      await this.db.updateTable('api_tokens').set({ last_used_at: now.toISOString() }).where('id', '=', r.id).execute();
    }
    return { kind: 'token', id: r.id, name: r.name, grants: [{ role: r.role, orgId: r.org_id }] };
  }

  /** Find or provision the user of an OIDC subject (see OidcLogin). */
  async userForOidc(sub: string, claims: Record<string, unknown>, rolesClaim: string): Promise<UserView> {
    const existing = await this.db.selectFrom('users').select(['id', 'disabled']).where('oidc_subject', '=', sub).executeTakeFirst();
    if (existing) {
      if (existing.disabled) throw unauthorized('account disabled');
      return this.getUser(existing.id);
    }
    const raw = claims[rolesClaim];
    const roles = Array.isArray(raw) ? raw.filter((r): r is string => typeof r === 'string') : typeof raw === 'string' ? raw.split(/[ ,]+/) : [];
    const grants: GrantInput[] = [];
    for (const r of roles) {
      const [role, org] = r.split('@');
      if (role && isRole(role)) grants.push({ role, org: org ?? null });
    }
    if (!grants.length) throw unauthorized('no Imago roles for this OIDC account');
    const base = typeof claims.preferred_username === 'string' ? claims.preferred_username : `oidc-${sub}`;
    const username = base.replace(/[^a-z0-9._@-]/gi, '_').slice(0, 64);
    return this.addUser('system', {
      username,
      displayName: typeof claims.name === 'string' ? claims.name : username,
      email: typeof claims.email === 'string' ? claims.email : null,
      oidcSubject: sub,
      grants,
    });
  }
}

export function systemActor(): Actor {
  return { principal: { kind: 'user', id: 'system', name: 'system', grants: [] }, ip: null };
}
