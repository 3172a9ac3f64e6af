import type { User } from './api';

/**
 * Every screen of the app, grouped by part. Later parts (TRE, validation,
 * deployment) are listed as "coming" for the roles that will use them, so the
 * navigation and role-based layout are already shaped for them. The server
 * enforces access regardless of what the navigation shows.
 */
export type Part = 'Site' | 'Hub' | 'Research (TRE)' | 'Validation' | 'Deployment' | 'Governance';

export interface ScreenDef {
  id: string;
  part: Part;
  label: string;
  path: string;
  roles: readonly string[];
  /** Not built yet: shown as a non-link "coming" item. */
  coming?: boolean;
}

export const SITE_ROLES = ['site_admin', 'site_data_manager'] as const;

export const SCREENS: readonly ScreenDef[] = [
  { id: 'site-status', part: 'Site', label: 'Status', path: '/site/status', roles: SITE_ROLES },
  { id: 'site-cases', part: 'Site', label: 'Cases', path: '/site/cases', roles: SITE_ROLES },
  { id: 'site-import', part: 'Site', label: 'Clinical import', path: '/site/import', roles: SITE_ROLES },
  { id: 'site-quarantine', part: 'Site', label: 'Quarantine', path: '/site/quarantine', roles: SITE_ROLES },
  { id: 'site-optout', part: 'Site', label: 'Opt-out list', path: '/site/optout', roles: ['site_admin'] },
  { id: 'hub-sites', part: 'Hub', label: 'Sites', path: '/hub/sites', roles: ['platform_operator'] },
  { id: 'hub-dashboard', part: 'Hub', label: 'Ingest dashboard', path: '/hub/dashboard', roles: ['platform_operator'] },
  { id: 'hub-studies', part: 'Hub', label: 'Study browser', path: '/hub/studies', roles: ['platform_operator'] },
  { id: 'hub-purges', part: 'Hub', label: 'Purges', path: '/hub/purges', roles: ['platform_operator'] },
  { id: 'hub-releases', part: 'Hub', label: 'Releases', path: '/hub/releases', roles: ['platform_operator'] },
  { id: 'audit', part: 'Governance', label: 'Audit log', path: '/audit', roles: ['platform_operator'] },
  { id: 'tre-applications', part: 'Research (TRE)', label: 'Data access applications', path: '/tre/applications', roles: ['researcher', 'dac_member'], coming: true },
  { id: 'tre-projects', part: 'Research (TRE)', label: 'Projects and cohorts', path: '/tre/projects', roles: ['researcher'], coming: true },
  { id: 'tre-airlock', part: 'Research (TRE)', label: 'Airlock review', path: '/tre/airlock', roles: ['dac_member', 'platform_operator'], coming: true },
  { id: 'val-submissions', part: 'Validation', label: 'Model submissions', path: '/validation/submissions', roles: ['researcher', 'validator'], coming: true },
  { id: 'val-reports', part: 'Validation', label: 'Validation reports', path: '/validation/reports', roles: ['validator'], coming: true },
  { id: 'dep-models', part: 'Deployment', label: 'Installed models', path: '/deployment/models', roles: ['clinical_safety_officer'], coming: true },
  { id: 'dep-worklist', part: 'Deployment', label: 'AI findings worklist', path: '/deployment/worklist', roles: ['radiologist'], coming: true },
];

export const PART_ORDER: readonly Part[] = ['Site', 'Hub', 'Research (TRE)', 'Validation', 'Deployment', 'Governance'];

export const ROLE_LABELS: Record<string, string> = {
  site_admin: 'Site administrator',
  site_data_manager: 'Site data manager',
  platform_operator: 'Platform operator',
  researcher: 'Researcher',
  dac_member: 'Data access committee',
  validator: 'Validator',
  clinical_safety_officer: 'Clinical safety officer',
  radiologist: 'Radiologist',
};

export function roles(user: User | null): Set<string> {
  return new Set(user?.grants.map((g) => g.role) ?? []);
}

export function screensFor(user: User | null): ScreenDef[] {
  const r = roles(user);
  return SCREENS.filter((s) => s.roles.some((x) => r.has(x)));
}

/** The organisation in which the user holds a site role (the site portal's scope). */
export function siteOrg(user: User | null): string | null {
  return user?.grants.find((g) => (SITE_ROLES as readonly string[]).includes(g.role))?.orgCode ?? null;
}

export function homeFor(user: User | null): string {
  const first = screensFor(user).find((s) => !s.coming);
  return first?.path ?? '/home';
}
