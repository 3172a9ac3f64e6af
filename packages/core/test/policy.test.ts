import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANONYMOUS, authorize, POLICY, ROLES, type Principal } from '@imago/core';

const ORG_A = 'org-a';
const ORG_B = 'org-b';
const who = (role: string, orgId: string | null = ORG_A): Principal => ({ kind: 'user', id: 'u', name: 'u', grants: [{ role, orgId }] });

// The expected table: for each action, the roles that may perform it. Written
// out independently of POLICY so that a change to either is caught.
const EXPECTED: Record<string, string[] | 'public'> = {
  'user.manage': ['platform_operator'],
  'user.self': ROLES.filter((r) => r !== 'site_uplink'),
  'token.manage': ['platform_operator'],
  'audit.read': ['platform_operator'],
  'audit.read.org': ['site_admin', 'platform_operator'],
  'site.status.read': ['site_admin', 'site_data_manager'],
  'site.optout.manage': ['site_admin'],
  'site.pseudonym.lookup': ['site_admin'],
  'site.clinical.read': ['site_admin', 'site_data_manager'],
  'site.clinical.write': ['site_admin', 'site_data_manager'],
  'site.quarantine.review': ['site_admin', 'site_data_manager'],
  'site.ingest': ['site_admin'],
  'site.queue.manage': ['site_admin'],
  'hub.site.manage': ['platform_operator'],
  'hub.submit': ['site_uplink'],
  'hub.dicomweb.read': ['platform_operator'],
  'hub.stats.read': ['platform_operator'],
  'hub.purge.request': ['platform_operator'],
  'hub.purge.request.site': ['site_uplink'],
  'hub.release.manage': ['platform_operator'],
  'hub.release.read': ['platform_operator', 'validator'],
  'hub.link.import': ['platform_operator'],
  'tre.application.create': ['researcher'],
  'tre.application.review': ['dac_member'],
  'tre.project.read': ['researcher'],
  'tre.airlock.review': ['dac_member', 'platform_operator'],
  'validation.submit': ['researcher'],
  'validation.run': ['validator'],
  'deploy.install': ['clinical_safety_officer'],
  'deploy.review': ['radiologist'],
  'public.register.read': 'public',
};

test('the expected table covers every action in the policy', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), Object.keys(POLICY).sort());
});

for (const [action, allowed] of Object.entries(EXPECTED)) {
  for (const role of ROLES) {
    const should = allowed === 'public' || allowed.includes(role);
    test(`${role} ${should ? 'may' : 'may not'} ${action}`, () => {
      const d = authorize(who(role), action, { orgId: ORG_A });
      assert.equal(d.allow, should, d.reason);
    });
  }
}

test('org-scoped actions need the grant in the same organisation', () => {
  assert.equal(authorize(who('site_admin', ORG_A), 'site.optout.manage', { orgId: ORG_A }).allow, true);
  assert.equal(authorize(who('site_admin', ORG_A), 'site.optout.manage', { orgId: ORG_B }).allow, false);
  assert.equal(authorize(who('site_admin', ORG_A), 'site.optout.manage', {}).allow, false);
  assert.equal(authorize(who('site_uplink', ORG_A), 'hub.submit', { orgId: ORG_B }).allow, false);
});

test('unknown roles, unknown actions and anonymous callers are denied', () => {
  for (const action of Object.keys(POLICY)) {
    assert.equal(authorize(who('superuser', null), action, { orgId: ORG_A }).allow, action === 'public.register.read');
    assert.equal(authorize(who('root', ORG_A), action, { orgId: ORG_A }).allow, action === 'public.register.read');
    assert.equal(authorize(ANONYMOUS, action, { orgId: ORG_A }).allow, action === 'public.register.read');
  }
  for (const role of ROLES) assert.equal(authorize(who(role), 'hub.everything', { orgId: ORG_A }).allow, false);
  assert.equal(authorize({ kind: 'user', id: 'x', name: 'x', grants: [] }, 'user.self').allow, false);
});

test('a user with several roles in several organisations gets the union, scoped', () => {
  const p: Principal = { kind: 'user', id: 'u', name: 'u', grants: [{ role: 'site_admin', orgId: ORG_A }, { role: 'radiologist', orgId: ORG_B }] };
  assert.equal(authorize(p, 'site.optout.manage', { orgId: ORG_A }).allow, true);
  assert.equal(authorize(p, 'deploy.review', { orgId: ORG_B }).allow, true);
  assert.equal(authorize(p, 'deploy.review', { orgId: ORG_A }).allow, false);
});
