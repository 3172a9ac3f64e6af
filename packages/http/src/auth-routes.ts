import { z } from 'zod';
import { badRequest, unauthorized } from '@imago/core';
import { SESSION_COOKIE, type App, type HttpDeps } from './server.js';

const OIDC_STATE_COOKIE = 'imago_oidc_state';

const UserViewSchema = z.object({
  id: z.string(),
  username: z.string(),
  displayName: z.string(),
  email: z.string().nullable(),
  disabled: z.boolean(),
  grants: z.array(z.object({ role: z.string(), orgId: z.string().nullable(), orgCode: z.string().nullable() })),
  createdAt: z.string(),
});

export async function registerAuthRoutes(app: App, deps: HttpDeps): Promise<void> {
  // Secure cookies whenever the platform is served over HTTPS (or when forced).
  const secure = deps.config.auth.cookieSecure || (deps.config.http.publicUrl ?? '').startsWith('https:');
  const cookieOpts = (expires: Date) => ({ path: '/', httpOnly: true, sameSite: 'lax' as const, secure, expires });

  app.post('/api/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Password login; sets a session cookie',
      body: z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(256) }),
      response: { 200: z.object({ user: UserViewSchema, expiresAt: z.string() }) },
    },
  }, async (req, reply) => {
    const s = await deps.identity.login(req.body.username, req.body.password, req.ip);
    reply.setCookie(SESSION_COOKIE, s.sessionToken, cookieOpts(new Date(s.expiresAt)));
    return { user: s.user, expiresAt: s.expiresAt };
  });

  app.post('/api/auth/logout', { schema: { tags: ['auth'], summary: 'End the session', response: { 204: z.null() } } }, async (req, reply) => {
    const sid = req.cookies[SESSION_COOKIE];
    if (sid) await deps.identity.logout(sid, req.ip);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.status(204).send(null);
  });

  app.get('/api/auth/me', {
    schema: { tags: ['auth'], summary: 'The signed-in user and their roles', response: { 200: z.object({ user: UserViewSchema, oidc: z.boolean() }) } },
  }, async (req) => {
    const p = req.principal;
    if (p.kind !== 'user') throw unauthorized();
    return { user: await deps.identity.getUser(p.id), oidc: !!deps.oidc };
  });

  app.get('/api/auth/oidc/login', {
    schema: { tags: ['auth'], summary: 'Start an OpenID Connect login', querystring: z.object({ returnTo: z.string().max(512).optional() }) },
  }, async (req, reply) => {
    if (!deps.oidc) throw badRequest('OpenID Connect is not configured');
    const { url, state } = await deps.oidc.begin(req.query.returnTo ?? '/');
    reply.setCookie(OIDC_STATE_COOKIE, state, { ...cookieOpts(new Date(Date.now() + 10 * 60_000)), path: '/api/auth/oidc' });
    return reply.redirect(url, 302);
  });

  app.get('/api/auth/oidc/callback', { schema: { tags: ['auth'], summary: 'OpenID Connect redirect target' } }, async (req, reply) => {
    if (!deps.oidc) throw badRequest('OpenID Connect is not configured');
    const base = deps.config.http.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`;
    const url = new URL(req.url, base);
    const s = await deps.oidc.complete(url, req.cookies[OIDC_STATE_COOKIE], req.ip);
    reply.clearCookie(OIDC_STATE_COOKIE, { path: '/api/auth/oidc' });
    reply.setCookie(SESSION_COOKIE, s.sessionToken, cookieOpts(new Date(s.expiresAt)));
    return reply.redirect(s.returnTo, 302);
  });
}
