import { useAuth } from '../auth';
import { Page } from '../components/ui';
import { Link } from '../router';
import { ROLE_LABELS, screensFor } from '../nav';

/** For roles whose screens arrive with later parts: say so, do not fake them. */
export function Home() {
  const { user } = useAuth();
  const screens = screensFor(user ?? null);
  const ready = screens.filter((s) => !s.coming);
  const coming = screens.filter((s) => s.coming);
  return (
    <Page title={`Welcome, ${user?.displayName ?? ''}`} intro={`Signed in as ${user?.grants.map((g) => `${ROLE_LABELS[g.role] ?? g.role}${g.orgCode ? ` at ${g.orgCode}` : ''}`).join(', ')}.`}>
      {ready.length ? (
        <section className="panel" aria-labelledby="ready-h">
          <h2 id="ready-h">Your screens</h2>
          <ul className="link-list">{ready.map((s) => <li key={s.id}><Link to={s.path}>{s.part}: {s.label}</Link></li>)}</ul>
        </section>
      ) : null}
      {coming.length ? (
        <section className="panel" aria-labelledby="coming-h">
          <h2 id="coming-h">Coming in later releases</h2>
          <p>These screens are part of the platform's plan for your role and are not available yet:</p>
          <ul>{coming.map((s) => <li key={s.id}>{s.part}: {s.label}</li>)}</ul>
        </section>
      ) : null}
    </Page>
  );
}
