import { createHash } from 'node:crypto';

/** Canonical JSON: JSON.stringify with object keys sorted recursively. Shared with the hub. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, sortKeys(o[k])]));
  }
  return v;
}

export function canonicalSha256(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex');
}
