/**
 * Authorisation as a pure function. The data layer calls `authorize` before it
 * reads or writes; route handlers never decide on their own. Deny by default:
 * an unknown role, an unknown action or a missing scope is refused.
 */

export const ROLES = [
  'site_admin',
  'site_data_manager',
  'platform_operator',
  'researcher',
  'dac_member',
  'validator',
  'clinical_safety_officer',
  'radiologist',
  /** A site node's uplink credential: writes to the hub only as itself. */
  'site_uplink',
] as const;
export type Role = (typeof ROLES)[number];

export function isRole(r: string): r is Role {
  return (ROLES as readonly string[]).includes(r);
}

/** A role held in one organisation. `orgId` null means a national role. */
export interface RoleGrant {
  role: string;
  orgId: string | null;
}

export interface Principal {
  kind: 'user' | 'token' | 'anonymous';
  /** User id or token id; `anonymous` for the public. */
  id: string;
  /** Display name for audit; never PHI. */
  name: string;
  grants: RoleGrant[];
}

export const ANONYMOUS: Principal = { kind: 'anonymous', id: 'anonymous', name: 'anonymous', grants: [] };

/**
 * Scope of an action:
 * - `org`: the principal must hold the role in the resource's organisation;
 * - `national`: the role counts wherever it is held;
 * - `public`: anyone, including anonymous.
 */
type Scope = 'org' | 'national' | 'public';

interface Rule {
  roles: readonly Role[];
  scope: Scope;
}

/** The policy table. Every action the platform performs is listed here. */
export const POLICY = {
  // identity and administration
  'user.manage': { roles: ['platform_operator'], scope: 'national' },
  'user.self': { roles: ROLES.filter((r) => r !== 'site_uplink'), scope: 'national' },
  'token.manage': { roles: ['platform_operator'], scope: 'national' },
  'audit.read': { roles: ['platform_operator'], scope: 'national' },
  'audit.read.org': { roles: ['site_admin', 'platform_operator'], scope: 'org' },
  // site node
  'site.status.read': { roles: ['site_admin', 'site_data_manager'], scope: 'org' },
  'site.optout.manage': { roles: ['site_admin'], scope: 'org' },
  'site.pseudonym.lookup': { roles: ['site_admin'], scope: 'org' },
  'site.clinical.read': { roles: ['site_admin', 'site_data_manager'], scope: 'org' },
  'site.clinical.write': { roles: ['site_admin', 'site_data_manager'], scope: 'org' },
  'site.quarantine.review': { roles: ['site_admin', 'site_data_manager'], scope: 'org' },
  'site.ingest': { roles: ['site_admin'], scope: 'org' },
  'site.queue.manage': { roles: ['site_admin'], scope: 'org' },
  // hub
  'hub.site.manage': { roles: ['platform_operator'], scope: 'national' },
  'hub.submit': { roles: ['site_uplink'], scope: 'org' },
  'hub.dicomweb.read': { roles: ['platform_operator'], scope: 'national' },
  'hub.stats.read': { roles: ['platform_operator'], scope: 'national' },
  'hub.purge.request': { roles: ['platform_operator'], scope: 'national' },
  'hub.purge.request.site': { roles: ['site_uplink'], scope: 'org' },
  'hub.release.manage': { roles: ['platform_operator'], scope: 'national' },
  'hub.release.read': { roles: ['platform_operator', 'validator'], scope: 'national' },
  'hub.link.import': { roles: ['platform_operator'], scope: 'national' },
  // trusted research environment
  'tre.application.create': { roles: ['researcher'], scope: 'national' },
  'tre.application.review': { roles: ['dac_member'], scope: 'national' },
  'tre.project.read': { roles: ['researcher'], scope: 'org' },
  'tre.airlock.review': { roles: ['dac_member', 'platform_operator'], scope: 'national' },
  // validation
  'validation.submit': { roles: ['researcher'], scope: 'national' },
  'validation.run': { roles: ['validator'], scope: 'national' },
  // deployment
  'deploy.install': { roles: ['clinical_safety_officer'], scope: 'org' },
  'deploy.review': { roles: ['radiologist'], scope: 'org' },
  // public transparency register
  'public.register.read': { roles: [], scope: 'public' },
} as const satisfies Record<string, Rule>;

export type Action = keyof typeof POLICY;

export interface Resource {
  /** The organisation that owns the resource, for `org`-scoped actions. */
  orgId?: string | null;
}

export interface Decision {
  allow: boolean;
  reason: string;
}

export function authorize(p: Principal, action: string, resource: Resource = {}): Decision {
  const rule = (POLICY as Record<string, Rule | undefined>)[action];
  if (!rule) return { allow: false, reason: `unknown action ${action}` };
  if (rule.scope === 'public') return { allow: true, reason: 'public' };
  if (p.kind === 'anonymous') return { allow: false, reason: 'not authenticated' };
  for (const g of p.grants) {
    if (!isRole(g.role)) continue; // unknown roles grant nothing
    if (!rule.roles.includes(g.role)) continue;
    if (rule.scope === 'national') return { allow: true, reason: `role ${g.role}` };
    if (rule.scope === 'org') {
      if (resource.orgId === undefined || resource.orgId === null) continue;
      if (g.orgId === resource.orgId) return { allow: true, reason: `role ${g.role} in org` };
    }
  }
  return { allow: false, reason: `no grant allows ${action}` };
}

export function hasRole(p: Principal, role: Role): boolean {
  return p.grants.some((g) => g.role === role);
}
