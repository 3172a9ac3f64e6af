import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, type RequestOptions } from './api';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  /** When the data was last fetched. */
  at: Date | null;
}

/**
 * GET a resource; refetch when the path or query changes, and every `pollMs`
 * while the tab is visible (the site status refreshes live this way).
 */
export function useApi<T>(path: string | null, opts: { query?: RequestOptions['query']; pollMs?: number } = {}): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(!!path);
  const [at, setAt] = useState<Date | null>(null);
  const [tick, setTick] = useState(0);
  const key = path ? JSON.stringify([path, opts.query ?? null]) : null;
  const live = useRef(true);
  useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);
  useEffect(() => {
    if (!path) return;
    const ctl = new AbortController();
    setLoading(true);
    api.get<T>(path, { query: opts.query, signal: ctl.signal }).then(
      (d) => {
        if (!live.current) return;
        setData(d);
        setError(null);
        setAt(new Date());
        setLoading(false);
      },
      (e: unknown) => {
        if ((e as Error).name === 'AbortError' || !live.current) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [key, tick]);
  useEffect(() => {
    if (!opts.pollMs || !path) return;
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') setTick((n) => n + 1);
    }, opts.pollMs);
    return () => clearInterval(t);
  }, [opts.pollMs, path]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, loading, reload, at };
}

/** True when an error means the endpoint has not been built into this server yet. */
export function isMissingEndpoint(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404 && /^no route/.test(e.message);
}
