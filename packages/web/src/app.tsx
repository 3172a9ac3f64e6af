import { Suspense, lazy, useEffect, type ComponentType } from 'react';
import { useAuth } from './auth';
import { Link, match, navigate, useLocation } from './router';
import { PART_ORDER, ROLE_LABELS, SCREENS, homeFor, screensFor, type ScreenDef } from './nav';
import { Login } from './screens/login';
import { Home } from './screens/home';
import { AuditLogScreen } from './screens/audit';
import { SiteStatus } from './screens/site/status';
import { SiteCases, SiteCase } from './screens/site/cases';
import { ClinicalForm } from './screens/site/clinical';
import { ClinicalImport } from './screens/site/import';
import { Quarantine } from './screens/site/quarantine';
import { OptOut } from './screens/site/optout';
import { HubSites } from './screens/hub/sites';
// The dashboard carries the charting library: load it only when opened.
const HubDashboard = lazy(() => import('./screens/hub/dashboard').then((m) => ({ default: m.HubDashboard })));
import { HubStudies } from './screens/hub/studies';
import { HubPurges } from './screens/hub/purges';
import { HubReleases } from './screens/hub/releases';

interface Route {
  pattern: string;
  screen: string;
  component: ComponentType<{ params: Record<string, string> }>;
}

const ROUTES: Route[] = [
  { pattern: '/site/status', screen: 'site-status', component: SiteStatus },
  { pattern: '/site/cases', screen: 'site-cases', component: SiteCases },
  { pattern: '/site/cases/:pseudonym', screen: 'site-cases', component: SiteCase },
  { pattern: '/site/clinical/new', screen: 'site-cases', component: ClinicalForm },
  { pattern: '/site/import', screen: 'site-import', component: ClinicalImport },
  { pattern: '/site/quarantine', screen: 'site-quarantine', component: Quarantine },
  { pattern: '/site/optout', screen: 'site-optout', component: OptOut },
  { pattern: '/hub/sites', screen: 'hub-sites', component: HubSites },
  { pattern: '/hub/dashboard', screen: 'hub-dashboard', component: HubDashboard },
  { pattern: '/hub/studies', screen: 'hub-studies', component: HubStudies },
  { pattern: '/hub/purges', screen: 'hub-purges', component: HubPurges },
  { pattern: '/hub/releases', screen: 'hub-releases', component: HubReleases },
  { pattern: '/audit', screen: 'audit', component: AuditLogScreen },
];

function Nav({ screens, path }: { screens: ScreenDef[]; path: string }) {
  const parts = PART_ORDER.filter((p) => screens.some((s) => s.part === p));
  return (
    <nav className="sidenav" aria-label="Main">
      {parts.map((part) => (
        <div className="nav-group" key={part}>
          <h2 className="nav-part">{part}</h2>
          <ul>
            {screens.filter((s) => s.part === part).map((s) => (
              <li key={s.id}>
                {s.coming ? (
                  <span className="nav-coming" aria-disabled="true">{s.label}<span className="tag">coming</span></span>
                ) : (
                  <Link to={s.path} className={path === s.path || path.startsWith(s.path + '/') ? 'active' : undefined}
                    aria-current={path === s.path || path.startsWith(s.path + '/') ? 'page' : undefined}>{s.label}</Link>
                )}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </nav>
  );
}

function Forbidden() {
  return (
    <section className="page">
      <h1 tabIndex={-1}>Not available to you</h1>
      <p>This screen is not part of your role. Use the navigation to reach your screens.</p>
    </section>
  );
}

function NotFound() {
  return (
    <section className="page">
      <h1 tabIndex={-1}>Page not found</h1>
      <p>There is no page at this address.</p>
    </section>
  );
}

export function App() {
  const { user, logout } = useAuth();
  const { path } = useLocation();

  // Signed out or expired: go to /login, remembering where the user was.
  useEffect(() => {
    if (user === null && path !== '/login') navigate(`/login?returnTo=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    if (user && (path === '/login' || path === '/')) {
      const rt = new URLSearchParams(location.search).get('returnTo');
      navigate(rt && rt.startsWith('/') && !rt.startsWith('//') && rt !== '/login' && rt !== '/' ? rt : homeFor(user), { replace: true });
    }
  }, [user, path]);

  if (user === undefined) return <p className="boot" role="status">Loading Imago…</p>;
  if (user === null) {
    const rt = new URLSearchParams(location.search).get('returnTo') ?? '/';
    return <Login returnTo={rt} />;
  }

  const screens = screensFor(user);
  const allowed = new Set(screens.filter((s) => !s.coming).map((s) => s.id));
  let body = <NotFound />;
  if (path === '/home') body = <Home />;
  else {
    for (const r of ROUTES) {
      const params = match(r.pattern, path);
      if (!params) continue;
      const C = r.component;
      body = allowed.has(r.screen) ? <C params={params} /> : <Forbidden />;
      break;
    }
    if (!ROUTES.some((r) => match(r.pattern, path)) && SCREENS.some((s) => s.path === path)) body = <Forbidden />;
  }

  return (
    <div className="shell">
      <a className="skip-link" href="#main">Skip to main content</a>
      <header className="topbar">
        <Link to={homeFor(user)} className="brand"><span className="brand-mark" aria-hidden="true">◐</span> Imago</Link>
        <div className="whoami">
          <span data-testid="whoami">{user.displayName}</span>
          <span className="muted"> · {user.grants.map((g) => `${ROLE_LABELS[g.role] ?? g.role}${g.orgCode ? ` (${g.orgCode})` : ''}`).join(', ')}</span>
          <button className="btn btn-secondary btn-small" type="button" onClick={() => void logout()}>Sign out</button>
        </div>
      </header>
      <div className="layout">
        <Nav screens={screens} path={path} />
        <main id="main" className="main" tabIndex={-1}><Suspense fallback={<p role="status">Loading…</p>}>{body}</Suspense></main>
      </div>
    </div>
  );
}
