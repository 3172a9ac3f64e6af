import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * The one typed configuration object. Loaded from defaults, then
 * `imago.config.json` (optional), then `IMAGO_*` environment variables, and
 * validated once at start. Any bad key fails fast with its path named.
 *
 * Environment variables map to paths with `__` between levels, e.g.
 * `IMAGO_HTTP__PORT=8080` or `IMAGO_DB__URL=postgres://…`. Values are parsed
 * as JSON when they look like JSON (numbers, booleans, arrays), else taken as
 * strings.
 */
const secret = z.string().min(1).optional();

export const ConfigSchema = z.strictObject({
  /** Root for everything the embedded default writes. */
  dataDir: z.string().default('./data'),
  http: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Externally visible base URL, used in printed links and OIDC redirects. */
    publicUrl: z.string().url().optional(),
    /** Largest request body accepted, in bytes (STOW batches are streamed separately). */
    bodyLimit: z.number().int().positive().default(10 * 1024 * 1024),
  }).prefault({}),
  db: z.strictObject({
    /** `sqlite:PATH` (embedded default) or `postgres://…` (scale). */
    url: z.string().default('sqlite:./data/imago.db'),
    poolSize: z.number().int().positive().default(10),
  }).prefault({}),
  storage: z.strictObject({
    /** `file:PATH` (embedded default) or `s3://BUCKET/PREFIX` (scale). */
    url: z.string().default('file:./data/blobs'),
    s3: z.strictObject({
      endpoint: z.string().url().optional(),
      region: z.string().default('us-east-1'),
      accessKeyId: z.string().optional(),
      secretAccessKey: secret,
      forcePathStyle: z.boolean().default(true),
    }).prefault({}),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
  auth: z.strictObject({
    sessionTtlMinutes: z.number().int().positive().default(60 * 8),
    /** Send cookies with the Secure flag. Always on when http.publicUrl is https; this forces it otherwise. */
    cookieSecure: z.boolean().default(false),
    loginMaxFailures: z.number().int().positive().default(5),
    loginLockoutSeconds: z.number().int().positive().default(300),
    oidc: z.strictObject({
      issuer: z.string().url(),
      clientId: z.string().min(1),
      clientSecret: secret,
      /** Claim whose value lists Imago roles as `role@orgCode`. */
      rolesClaim: z.string().default('imago_roles'),
    }).optional(),
  }).prefault({}),
  jobs: z.strictObject({
    pollIntervalMs: z.number().int().positive().default(250),
    retryLimit: z.number().int().min(0).default(5),
    retryDelayMs: z.number().int().positive().default(1000),
    retryMaxDelayMs: z.number().int().positive().default(5 * 60 * 1000),
    /** A job not finished after this long is considered abandoned and re-run. */
    expireSeconds: z.number().int().positive().default(15 * 60),
  }).prefault({}),
  /** Which parts run in this process. */
  parts: z.strictObject({
    site: z.boolean().default(true),
    hub: z.boolean().default(true),
  }).prefault({}),
  site: z.strictObject({
    code: z.string().regex(/^[A-Z0-9_-]{2,32}$/).default('DEMO1'),
    aeTitle: z.string().regex(/^[ -~]{1,16}$/).default('IMAGO'),
    dimsePort: z.number().int().min(0).max(65535).default(11112),
    allowedCallingAeTitles: z.array(z.string()).default([]),
    /** Keyed-hash secret for pseudonyms and UID remapping. Never leaves the site. */
    secret,
    secretFile: z.string().optional(),
    hubUrl: z.string().url().optional(),
    hubToken: secret,
    keepOriginalsDays: z.number().int().min(0).default(0),
    /** Modalities at risk of burned-in PHI (US, SC, OT, XC) let through without quarantine. */
    allowModalities: z.array(z.string()).default([]),
    /** Largest PDU the DIMSE server accepts (bytes). */
    maxPduLength: z.number().int().min(4096).max(4 * 1024 * 1024).default(131072),
    /** Jobs run at once per pipeline stage. */
    checkConcurrency: z.number().int().positive().default(2),
    deidConcurrency: z.number().int().positive().default(2),
    /** Worker threads that parse and de-identify off the receiving thread (0: in the main thread). */
    deidWorkers: z.number().int().min(0).max(64).default(1),
    /** While instances are arriving, a pipeline job waits up to this long before it runs (receiving first). */
    receivePriorityMs: z.number().int().min(0).default(2000),
    /** Run the pipeline workers (opt-out, de-identification, upload). Off only for receive-only benchmarks. */
    pipeline: z.boolean().default(true),
    uplinkConcurrency: z.number().int().positive().default(4),
    /** How often ready clinical records are flushed to the hub. */
    clinicalFlushMs: z.number().int().positive().default(2000),
    /** An upload that gets no answer in this time is ambiguous and re-checked. */
    uplinkTimeoutMs: z.number().int().positive().default(120_000),
    /** Run the DIMSE server (off for API-only or test setups). */
    dimse: z.boolean().default(true),
    /** Test only: hold each receive group commit this long (crash tests kill the node between C-STORE success and the row commit). */
    commitDelayMs: z.number().int().min(0).default(0),
  }).prefault({}),
  /** De-identification (DICOM PS3.15 Annex E); defaults are the site node's profile. */
  deid: z.strictObject({
    retainLongitudinalModifiedDates: z.boolean().default(true),
    retainPatientCharacteristics: z.boolean().default(true),
    retainDeviceIdentity: z.boolean().default(false),
    retainSafePrivate: z.boolean().default(false),
    cleanDescriptors: z.boolean().default(true),
    cleanStructuredContent: z.boolean().default(false),
    dateShiftMinDays: z.number().int().min(0).default(1),
    dateShiftMaxDays: z.number().int().min(0).default(365),
    /** Risky modalities (US, SC, OT, XC) allowed through without quarantine. */
    allowModalities: z.array(z.string()).default([]),
    allowSecondaryCapture: z.boolean().default(false),
    quarantineOverlays: z.boolean().default(true),
  }).prefault({}),
  hub: z.strictObject({
    /** Keyed-hash secret for the training/validation split. */
    splitSecret: secret,
    /** Largest DICOM instance a site may PUT, in bytes (streamed, never buffered whole). */
    maxInstanceBytes: z.number().int().positive().default(2 * 1024 * 1024 * 1024),
    /** Bytes of each upload kept in memory to read the header from; larger headers are re-read from the blob. */
    headerPrefixBytes: z.number().int().positive().default(1024 * 1024),
    /** Largest side of a rendered thumbnail, in pixels. */
    thumbnailSize: z.number().int().min(16).max(1024).default(128),
    /** Default split for newly registered sites: percentage of patients assigned to training. */
    defaultTrainingPercent: z.number().int().min(0).max(100).default(80),
    /** Base for release identifiers and catalogue URIs. */
    publisher: z.string().default('Imago national imaging platform'),
    /**
     * Reference population for representativeness, as shares per category
     * (each table sums to about 1). Default: England and Wales, Census 2021, rounded.
     */
    referencePopulation: z.record(z.string(), z.record(z.string(), z.number().min(0).max(1))).default({
      sex: { F: 0.51, M: 0.49 },
      ageBand: { '0-17': 0.21, '18-29': 0.15, '30-39': 0.14, '40-49': 0.12, '50-59': 0.13, '60-69': 0.11, '70-79': 0.09, '80+': 0.05 },
      ethnicity: { white: 0.817, asian: 0.093, black: 0.04, mixed: 0.029, other: 0.021 },
    }),
  }).prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function parseEnvValue(v: string): unknown {
  const t = v.trim();
  if (/^(-?\d+(\.\d+)?|true|false|null|\[.*\]|\{.*\})$/s.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return v;
    }
  }
  return v;
}

function toCamel(s: string): string {
  return s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Turn IMAGO_* variables into a nested object, remembering where each came from. */
export function envToConfig(env: NodeJS.ProcessEnv): { value: Record<string, unknown>; sources: Map<string, string> } {
  const value: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const [k, raw] of Object.entries(env)) {
    if (!k.startsWith('IMAGO_') || raw === undefined) continue;
    if (k === 'IMAGO_CONFIG') continue;
    const path = k.slice('IMAGO_'.length).split('__').map(toCamel);
    let cur = value;
    for (let i = 0; i < path.length - 1; i++) {
      const seg = path[i]!;
      const next = cur[seg];
      if (typeof next !== 'object' || next === null) cur[seg] = {};
      cur = cur[seg] as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = parseEnvValue(raw);
    sources.set(path.join('.'), k);
  }
  return { value, sources };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      out[k] = v;
    }
  }
  return out;
}

export interface LoadConfigOptions {
  /** Path to a JSON file; default `imago.config.json` in cwd, or $IMAGO_CONFIG. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence overrides (command-line flags, tests). */
  overrides?: Record<string, unknown>;
}

/** Load and validate the configuration. Throws ConfigError naming the bad key. */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.IMAGO_CONFIG ?? 'imago.config.json';
  let fromFile: Record<string, unknown> = {};
  const filePath = resolve(file);
  if (existsSync(filePath)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(filePath, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('top level must be an object');
      fromFile = parsed as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`config: cannot read ${file}: ${(e as Error).message}`);
    }
  } else if (opts.file || env.IMAGO_CONFIG) {
    throw new ConfigError(`config: file not found: ${file}`);
  }
  const { value: fromEnv, sources } = envToConfig(env);
  const merged = deepMerge(deepMerge(fromFile, fromEnv), opts.overrides ?? {});
  const r = ConfigSchema.safeParse(merged);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')];
      return keys
        .map((key) => {
          const src = sources.get(key);
          return `  ${key || '(root)'}: ${i.code === 'unrecognized_keys' ? 'unknown key' : i.message}${src ? ` (from ${src})` : ''}`;
        })
        .join('\n');
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}

const SECRET_KEYS = /secret|token|password|accesskey/i;

/** A copy of the config safe to print: secrets and credentials in URLs redacted. */
export function redactConfig(c: Config): unknown {
  const walk = (v: unknown, key: string): unknown => {
    if (v === undefined) return undefined;
    if (SECRET_KEYS.test(key) && typeof v === 'string') return '[redacted]';
    if (typeof v === 'string') return v.replace(/\/\/([^:/@]+):([^@/]+)@/, '//$1:[redacted]@');
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(c, '');
}
