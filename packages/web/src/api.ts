/**
 * The one way the UI talks to the server. Errors arrive in the platform's one
 * vocabulary `{error, message, issues?}` and are thrown as ApiError. A 401 on
 * any call (other than the login itself) means the session has expired: the
 * app is told, sends the user to the login page, and brings them back.
 */
export interface Issue {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(message);
  }
  /** Field-level messages keyed by field path without the `body.` prefix. */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const i of this.issues) {
      const key = i.path.replace(/^(body|querystring|params)\.?/, '');
      if (!(key in out)) out[key] = i.message;
    }
    return out;
  }
}

type Listener = () => void;
const expiredListeners = new Set<Listener>();
export function onSessionExpired(l: Listener): () => void {
  expiredListeners.add(l);
  return () => expiredListeners.delete(l);
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: unknown;
  /** Raw body (a File, text) sent as is with this content type. */
  raw?: { body: BodyInit; contentType: string };
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Do not treat a 401 as an expired session (the login call itself). */
  noExpire?: boolean;
}

export function withQuery(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

/** A 403 may mean "signed out" to an API that authorises before it authenticates: ask who we are. */
async function sessionGone(): Promise<boolean> {
  try {
    const r = await fetch('/api/auth/me', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    return r.status === 401;
  } catch {
    return false;
  }
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  let body: BodyInit | undefined;
  if (opts.raw) {
    body = opts.raw.body;
    headers['content-type'] = opts.raw.contentType;
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const j = (json ?? {}) as { error?: string; message?: string; issues?: Issue[] };
    const err = new ApiError(res.status, j.error ?? `http${res.status}`, j.message ?? (res.statusText || `HTTP ${res.status}`), Array.isArray(j.issues) ? j.issues : []);
    if (!opts.noExpire && (res.status === 401 || (res.status === 403 && (await sessionGone())))) for (const l of expiredListeners) l();
    throw err;
  }
  return (json ?? (text as unknown)) as T;
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body }),
  put: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PUT', path, { ...opts, body }),
  patch: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PATCH', path, { ...opts, body }),
  del: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('DELETE', path, { ...opts, body }),
};

export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 403) return `You do not have permission to do this (${e.message}).`;
    if (e.status === 404 && /^no route/.test(e.message)) return 'This part of the server is not available yet.';
    return e.message;
  }
  return (e as Error)?.message ?? String(e);
}

// ---- the signed-in user --------------------------------------------------
export interface Grant {
  role: string;
  orgId: string | null;
  orgCode: string | null;
}
export interface User {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  grants: Grant[];
}
