import { useCallback, useEffect, useRef, useState } from 'react';

/**
 * Work in hand survives an expired session: forms keep their unsaved values in
 * sessionStorage (this tab only, gone when the tab closes) until they are saved
 * or the user signs out. Values are pseudonymised case data, never identifiers.
 */
const PREFIX = 'imago.draft.';

export function useDraft<T>(key: string, initial: T): [T, (v: T | ((p: T) => T)) => void, () => void, boolean] {
  const storageKey = PREFIX + key;
  const read = (): { value: T; restored: boolean } => {
    try {
      const s = sessionStorage.getItem(storageKey);
      if (s) return { value: JSON.parse(s) as T, restored: true };
    } catch {
      /* unreadable draft: start fresh */
    }
    return { value: initial, restored: false };
  };
  const [state, setState] = useState(read);
  const keyRef = useRef(storageKey);
  useEffect(() => {
    if (keyRef.current !== storageKey) {
      keyRef.current = storageKey;
      setState(read());
    }
  }, [storageKey]);
  const set = useCallback((v: T | ((p: T) => T)) => {
    setState((prev) => {
      const next = typeof v === 'function' ? (v as (p: T) => T)(prev.value) : v;
      try {
        sessionStorage.setItem(storageKey, JSON.stringify(next));
      } catch {
        /* storage full: keep in memory */
      }
      return { value: next, restored: prev.restored };
    });
  }, [storageKey]);
  const clear = useCallback(() => {
    sessionStorage.removeItem(storageKey);
    setState({ value: initial, restored: false });
  }, [storageKey]);
  return [state.value, set, clear, state.restored];
}

export function clearAllDrafts(): void {
  for (let i = sessionStorage.length - 1; i >= 0; i--) {
    const k = sessionStorage.key(i);
    if (k?.startsWith(PREFIX)) sessionStorage.removeItem(k);
  }
}
