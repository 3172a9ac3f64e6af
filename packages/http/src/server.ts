import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, Histogram } from 'prom-client';
import {
  ANONYMOUS, enableDefaultMetrics, httpStatusFor, ImagoError, isImagoError, metricsRegistry, unauthorized,
  type Config, type ErrorCode, type Logger, type Principal,
} from '@imago/core';
import type { Actor, AuditLog } from '@imago/audit';
import type { ImagoDb } from '@imago/db';
import { sql } from '@imago/db';
import type { Identity, OidcLogin } from '@imago/identity';

export const SESSION_COOKIE = 'imago_session';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /** The acting principal and source address, for the data layer. */
    actor(): Actor;
  }
}

export interface HttpDeps {
  config: Config;
  logger: Logger;
  db: ImagoDb;
  audit: AuditLog;
  identity: Identity;
  oidc?: OidcLogin;
  version?: string;
}

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  Logger,
  ZodTypeProvider
>;

function metric<T>(name: string, make: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? make();
}

const httpDuration = metric('imago_http_request_duration_seconds', () => new Histogram({
  name: 'imago_http_request_duration_seconds', help: 'HTTP request duration by route', labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [metricsRegistry],
}));
const httpErrors = metric('imago_http_errors_total', () => new Counter({
  name: 'imago_http_errors_total', help: 'HTTP errors by code', labelNames: ['code'] as const, registers: [metricsRegistry],
}));

/** Map any thrown error onto the one vocabulary. */
export function toImagoError(err: unknown): ImagoError {
  if (isImagoError(err)) return err;
  const fe = err as FastifyError & { validation?: unknown };
  if (hasZodFastifySchemaValidationErrors(fe)) {
    return new ImagoError('badRequest', 'request does not match the schema', {
      issues: fe.validation.map((v) => ({ path: `${fe.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`, message: v.message ?? 'invalid' })),
    });
  }
  const byStatus: Record<number, ErrorCode> = { 400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'notFound', 406: 'badRequest', 409: 'conflict', 413: 'payloadTooLarge', 415: 'unsupportedMediaType', 422: 'unprocessable', 429: 'tooManyRequests' };
  if (typeof fe.statusCode === 'number' && byStatus[fe.statusCode]) return new ImagoError(byStatus[fe.statusCode]!, fe.message);
  return new ImagoError('internal', 'internal error', { cause: err });
}

/**
 * The HTTP server: fastify with zod schemas, OpenAPI generated from them,
 * cookie sessions and bearer tokens, health, readiness and metrics. Parts add
 * their routes as plugins after this returns and before `listen`.
 */
export async function createHttpServer(deps: HttpDeps): Promise<App> {
  enableDefaultMetrics();
  const app = Fastify({
    loggerInstance: deps.logger,
    // We log each request ourselves (route pattern only, never the URL or body).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.http.bodyLimit,
    trustProxy: false,
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>() as unknown as App;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(cookie);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Imago API', version: deps.version ?? '0.1.0', description: 'Open national medical-imaging platform for AI' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
          token: { type: 'http', scheme: 'bearer' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });

  app.decorateRequest('principal', { getter: () => ANONYMOUS, setter: () => undefined });
  app.decorateRequest('actor', function (this: FastifyRequest) {
    return { principal: this.principal, ip: this.ip };
  });

  // Who is calling: bearer token (sites, services) or a session cookie (people).
  app.addHook('onRequest', async (req) => {
    let principal: Principal = ANONYMOUS;
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      const p = m ? await deps.identity.principalForToken(m[1]!) : null;
      if (!p) throw unauthorized('invalid or revoked token');
      principal = p;
    } else {
      const sid = req.cookies[SESSION_COOKIE];
      if (sid) principal = (await deps.identity.principalForSession(sid)) ?? ANONYMOUS;
    }
    Object.defineProperty(req, 'principal', { value: principal, writable: false, configurable: true });
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const secs = reply.elapsedTime / 1000;
    httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, secs);
    // Route pattern only: URLs and bodies may carry identifiers.
    // Successful requests at debug, refusals at info, server errors at error.
    const line = { method: req.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (reply.statusCode >= 500) req.log.error(line, 'request');
    else if (reply.statusCode >= 400) req.log.info(line, 'request');
    else req.log.debug(line, 'request');
  });

  app.setErrorHandler(async (err, req, reply: FastifyReply) => {
    const e = toImagoError(err);
    httpErrors.inc({ code: e.code });
    if (e.code === 'internal') req.log.error({ err: { message: (err as Error).message, stack: (err as Error).stack }, route: req.routeOptions.url }, 'unhandled error');
    return reply.status(httpStatusFor(e.code)).type('application/json').send(JSON.stringify(e.toJSON()));
  });
  app.setNotFoundHandler(async (req, reply) => {
    return reply.status(404).type('application/json').send(JSON.stringify(new ImagoError('notFound', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON()));
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await sql`SELECT 1`.execute(deps.db.db);
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'not ready' });
    }
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(metricsRegistry.contentType);
    return metricsRegistry.metrics();
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}

/** Fastify route config helper: which security schemes a route accepts. */
export const SECURED = [{ session: [] }, { token: [] }];
