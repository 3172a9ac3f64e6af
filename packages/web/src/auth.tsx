import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, onSessionExpired, type User } from './api';
import { clearAllDrafts } from './drafts';

interface AuthState {
  /** undefined while the first /me is in flight. */
  user: User | null | undefined;
  /** Set when a live session ended under the user (not by signing out). */
  expired: boolean;
  oidc: boolean;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
  refresh(): Promise<void>;
}

const Ctx = createContext<AuthState | null>(null);

export function useAuth(): AuthState {
  const c = useContext(Ctx);
  if (!c) throw new Error('useAuth outside AuthProvider');
  return c;
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [expired, setExpired] = useState(false);
  const [oidc, setOidc] = useState(false);

  const refresh = useCallback(async () => {
    try {
      const me = await api.get<{ user: User; oidc: boolean }>('/api/auth/me', { noExpire: true });
      setUser(me.user);
      setOidc(me.oidc);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setUser(null);
      else throw e;
    }
  }, []);

  useEffect(() => {
    refresh().catch(() => setUser(null));
    api.get<{ oidc: boolean }>('/api/ui/config', { noExpire: true }).then((c) => setOidc(c.oidc), () => undefined);
  }, [refresh]);

  useEffect(() => onSessionExpired(() => {
    setUser((u) => {
      if (u) setExpired(true);
      return null;
    });
  }), []);

  const login = useCallback(async (username: string, password: string) => {
    const r = await api.post<{ user: User }>('/api/auth/login', { username, password }, { noExpire: true });
    setUser(r.user);
    setExpired(false);
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.post('/api/auth/logout', undefined, { noExpire: true });
    } finally {
      clearAllDrafts();
      setExpired(false);
      setUser(null);
    }
  }, []);

  return <Ctx.Provider value={{ user, expired, oidc, login, logout, refresh }}>{children}</Ctx.Provider>;
}
