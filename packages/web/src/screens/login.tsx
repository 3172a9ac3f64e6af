import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, errorText } from '../api';
import { useAuth } from '../auth';
import { ErrorSummary, TextField } from '../components/ui';

export function Login({ returnTo }: { returnTo: string }) {
  const { login, expired, oidc } = useAuth();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const h = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = 'Sign in · Imago';
    h.current?.focus();
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string> = {};
    if (!username.trim()) local.username = 'Enter your username';
    if (!password) local.password = 'Enter your password';
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      await login(username.trim(), password);
    } catch (err) {
      if (err instanceof ApiError && err.issues.length) setErrors(err.fieldErrors());
      else if (err instanceof ApiError && err.status === 401) setErrors({ password: 'The username or password is not right' });
      else setErrors({ form: errorText(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="login-page">
      <div className="login-card">
        <div className="brand brand-large" aria-hidden="true"><span className="brand-mark">◐</span> Imago</div>
        <h1 ref={h} tabIndex={-1}>Sign in</h1>
        <p className="muted">The national medical-imaging platform for AI.</p>
        {expired ? (
          <div className="note note-wait" role="status" data-testid="session-expired">
            Your session has ended. Sign in again to carry on; unsaved work on this page has been kept.
          </div>
        ) : null}
        <ErrorSummary errors={errors} labels={{ username: 'Username', password: 'Password', form: '' }} />
        <form onSubmit={submit} noValidate aria-label="Sign in with a password">
          <TextField label="Username" name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} error={errors.username} />
          <TextField label="Password" name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} error={errors.password} />
          <button className="btn btn-wide" type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        </form>
        {oidc ? (
          <>
            <div className="or"><span>or</span></div>
            <a className="btn btn-secondary btn-wide" href={`/api/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`}>Sign in with your organisation (OpenID Connect)</a>
          </>
        ) : null}
      </div>
    </main>
  );
}
