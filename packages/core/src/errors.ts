/**
 * One error vocabulary for the whole platform. Every layer throws ImagoError;
 * the HTTP layer maps it to a status code through `httpStatusFor`, the single
 * place where that mapping lives.
 */
export const ERROR_CODES = {
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  gone: 410,
  payloadTooLarge: 413,
  unsupportedMediaType: 415,
  unprocessable: 422,
  tooManyRequests: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `observations.temperature`. */
  path: string;
  message: string;
}

export class ImagoError extends Error {
  readonly code: ErrorCode;
  readonly issues: FieldIssue[] | undefined;
  /** Extra machine-readable detail. Never put PHI here: it is sent to clients. */
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: { issues?: FieldIssue[]; detail?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ImagoError';
    this.code = code;
    this.issues = opts.issues;
    this.detail = opts.detail;
  }

  toJSON(): { error: ErrorCode; message: string; issues?: FieldIssue[]; detail?: Record<string, unknown> } {
    return {
      error: this.code,
      message: this.message,
      ...(this.issues ? { issues: this.issues } : {}),
      ...(this.detail ? { detail: this.detail } : {}),
    };
  }
}

/** The single mapping from error vocabulary to HTTP status. */
export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code];
}

export function isImagoError(e: unknown): e is ImagoError {
  return e instanceof ImagoError;
}

type Opts = ConstructorParameters<typeof ImagoError>[2];
export const badRequest = (m: string, o?: Opts) => new ImagoError('badRequest', m, o);
export const unauthorized = (m = 'authentication required', o?: Opts) => new ImagoError('unauthorized', m, o);
export const forbidden = (m = 'not allowed', o?: Opts) => new ImagoError('forbidden', m, o);
export const notFound = (m: string, o?: Opts) => new ImagoError('notFound', m, o);
export const conflict = (m: string, o?: Opts) => new ImagoError('conflict', m, o);
export const gone = (m: string, o?: Opts) => new ImagoError('gone', m, o);
export const payloadTooLarge = (m: string, o?: Opts) => new ImagoError('payloadTooLarge', m, o);
export const unsupportedMediaType = (m: string, o?: Opts) => new ImagoError('unsupportedMediaType', m, o);
export const unprocessable = (m: string, o?: Opts) => new ImagoError('unprocessable', m, o);
export const tooManyRequests = (m: string, o?: Opts) => new ImagoError('tooManyRequests', m, o);
export const internal = (m: string, o?: Opts) => new ImagoError('internal', m, o);
export const unavailable = (m: string, o?: Opts) => new ImagoError('unavailable', m, o);

/**
 * Failure classes used by every retrying component (job workers, the site
 * uplink): transient errors are retried, ambiguous ones are re-checked before a
 * retry, permanent ones are parked for a person.
 */
export type FailureClass = 'transient' | 'ambiguous' | 'permanent';

export class ClassifiedError extends Error {
  constructor(readonly failureClass: FailureClass, message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'ClassifiedError';
  }
}

/** Classify an arbitrary error. Unknown errors are treated as transient. */
export function classifyFailure(e: unknown): FailureClass {
  if (e instanceof ClassifiedError) return e.failureClass;
  if (e instanceof ImagoError) {
    const s = httpStatusFor(e.code);
    if (s === 429 || s >= 500) return 'transient';
    return 'permanent';
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'].includes(code)) return 'ambiguous';
    if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'SQLITE_BUSY', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) return 'transient';
  }
  return 'transient';
}
