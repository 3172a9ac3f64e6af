/** Lists arrive either bare or wrapped ({items}, {sites}, …): accept both. */
export function list<T>(x: unknown, ...keys: string[]): T[] {
  if (Array.isArray(x)) return x as T[];
  if (x && typeof x === 'object') {
    for (const k of [...keys, 'items', 'rows', 'data', 'results']) {
      const v = (x as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v as T[];
    }
  }
  return [];
}

export function sum(o: Record<string, number> | undefined | null, keys?: readonly string[]): number {
  if (!o) return 0;
  return (keys ?? Object.keys(o)).reduce((a, k) => a + (o[k] ?? 0), 0);
}
