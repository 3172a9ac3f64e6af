import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { apiCookie, apiGet, axeSerious, ensureWebBuilt, launchBrowser, screenshot, signIn, signedIn, startDemo, type Server } from './harness.js';

let server: Server;
let browser: Browser;

before(async () => {
  ensureWebBuilt();
  [server, browser] = await Promise.all([startDemo(), launchBrowser()]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The screens each demo role may open (links in the left navigation). */
const EXPECTED: Record<string, string[]> = {
  operator: ['Sites', 'Ingest dashboard', 'Study browser', 'Purges', 'Releases', 'Audit log'],
  siteadmin: ['Status', 'Cases', 'Clinical import', 'Quarantine', 'Opt-out list'],
  datamanager: ['Status', 'Cases', 'Clinical import', 'Quarantine'],
  researcher: [],
  dac: [],
  validator: [],
  safety: [],
  radiologist: [],
};

test('each role signs in and sees only its own screens', async () => {
  for (const [username, links] of Object.entries(EXPECTED)) {
    const { ctx, page } = await signedIn(browser, server, username);
    const nav = page.getByRole('navigation', { name: 'Main' });
    const got = await nav.getByRole('link').allTextContents();
    assert.deepEqual(got, links, `${username} navigation`);
    if (!links.length) {
      // Roles whose parts come later land on a page that says so, with nothing faked.
      await page.getByRole('heading', { name: 'Coming in later releases' }).waitFor();
      assert.ok((await nav.locator('.nav-coming').count()) > 0, `${username} sees its coming screens`);
    }
    await ctx.close();
  }
});

test('a screen outside the role is refused by the UI and by the server', async () => {
  const { ctx, page } = await signedIn(browser, server, 'datamanager');
  await page.goto('/audit');
  await page.getByRole('heading', { name: 'Not available to you' }).waitFor();
  await page.goto('/site/optout');
  await page.getByRole('heading', { name: 'Not available to you' }).waitFor();
  const r = await page.request.get('/api/audit/events');
  assert.equal(r.status(), 403);
  assert.equal((await r.json()).error, 'forbidden');
  await ctx.close();
});

test('password login shows field errors and a wrong password', async () => {
  const ctx = await browser.newContext({ baseURL: server.url });
  const page = await ctx.newPage();
  await page.goto('/hub/sites');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await screenshot(page, '00-login');
  assert.deepEqual(await axeSerious(page), [], 'login page: no serious or critical axe violations');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText('Enter your username').first().waitFor();
  await page.getByLabel('Username', { exact: true }).fill('operator');
  await page.getByLabel('Password', { exact: true }).fill('wrong-password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByText('The username or password is not right').first().waitFor();
  // Keyboard only: the focus outline is drawn and Enter submits.
  await page.getByLabel('Password', { exact: true }).fill(server.logins.get('operator')!);
  await page.keyboard.press('Enter');
  await page.getByTestId('whoami').waitFor();
  // Back where the user was going.
  assert.equal(new URL(page.url()).pathname, '/hub/sites');
  await ctx.close();
});

test('audit log viewer: filters, paging and the chain status match the API', async () => {
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByTestId('chain-status').waitFor();
  assert.match(await page.getByTestId('chain-status').innerText(), /Chain intact/);
  await page.getByTestId('audit-table').waitFor();
  const cookie = await apiCookie(server, 'operator');
  const v = await apiGet<{ ok: boolean; checked: number }>(server, cookie, '/api/audit/verify');
  assert.equal(v.ok, true);
  // Filter to login events: every row shown is one.
  await page.getByLabel('Action starts with').fill('auth.login');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=audit-table] tbody tr td:nth-child(4)')].every((td) => td.textContent!.startsWith('auth.login')));
  const actions = await page.locator('[data-testid=audit-table] tbody tr td:nth-child(4)').allTextContents();
  assert.ok(actions.length > 0);
  await page.getByLabel('Action starts with').fill('');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('button', { name: 'Older' }).click();
  await page.getByText('Page 2').waitFor();
  await page.getByRole('button', { name: 'Newer' }).click();
  await page.getByText('Page 1').waitFor();
  await screenshot(page, 'audit-log');
  assert.deepEqual(await axeSerious(page), [], 'audit log: no serious or critical axe violations');
  // Reading the log is itself audited.
  const reads = await apiGet<{ events: Array<{ action: string; code: string }> }>(server, cookie, '/api/audit/events?action=audit.read&limit=5');
  assert.ok(reads.events.length > 0 && reads.events.every((e) => e.code === '110101'));
  await ctx.close();
});

test('keyboard: skip link, tab order and a visible focus outline', async () => {
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.reload();
  await page.getByTestId('whoami').waitFor();
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.textContent);
  assert.equal(first, 'Skip to main content');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
  assert.equal(outline, 'solid');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => ({ tag: document.activeElement?.tagName, outline: getComputedStyle(document.activeElement!).outlineWidth }));
  assert.ok(['A', 'BUTTON'].includes(focused.tag!));
  assert.equal(focused.outline, '3px');
  await ctx.close();
});

// ---------------------------------------------------------------- site portal

test('site status: counts per stage and the hub link match the site API', async () => {
  const { ctx, page } = await signedIn(browser, server, 'siteadmin');
  assert.equal(new URL(page.url()).pathname, '/site/status');
  await page.getByTestId('stage-table').waitFor();
  const st = await apiGet<{ instances: Record<string, number>; hub: string | null }>(server, await apiCookie(server, 'siteadmin'), '/api/site/v1/status');
  for (const [stage, n] of Object.entries(st.instances)) {
    const cell = page.locator(`[data-stage="${stage}"]`);
    if (await cell.count()) assert.equal((await cell.innerText()).replace(/,/g, ''), String(n), `stage ${stage}`);
  }
  assert.ok((st.instances.uploaded ?? 0) > 0);
  assert.match(await page.getByTestId('hub-connection').innerText(), new RegExp(st.hub!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  // Hub link health: the site pings the hub with its token; the screen says what the API says.
  const link = await apiGet<{ configured: boolean; reachable: boolean; latencyMs: number | null }>(server, await apiCookie(server, 'siteadmin'), '/api/site/v1/hub-link');
  assert.deepEqual([link.configured, link.reachable], [true, true], JSON.stringify(link));
  await page.getByTestId('hub-link-state').getByText('Reachable').waitFor();
  assert.match(await page.getByTestId('hub-link-latency').innerText(), /^\d+ ms$/);
  await screenshot(page, 'site-status');
  assert.deepEqual(await axeSerious(page), [], 'site status: no serious or critical axe violations');
  await ctx.close();
});

test('cases: patients by pseudonym with their studies and clinical completeness, as the site API has them', async () => {
  const { ctx, page } = await signedIn(browser, server, 'datamanager');
  const dm = await apiCookie(server, 'datamanager');
  const api = await apiGet<{ items: Array<{ pseudonym: string; studies: number; clinical: { completeness: number } | null }>; total: number }>(server, dm, '/api/site/v1/cases?limit=50');
  assert.ok(api.total > 0);
  await page.getByRole('link', { name: 'Cases' }).click();
  await page.getByTestId('cases-table').waitFor();
  await page.getByTestId('case-row').first().waitFor();
  assert.match(await page.getByTestId('cases-count').innerText(), new RegExp(`of ${api.total} case`));
  // (In the demo data no patient has both images and clinical data: the two arrive under different pseudonyms. Checked separately.)
  const withStudies = api.items.find((c) => c.studies > 0);
  assert.ok(withStudies, 'the demo data has a patient with studies');
  const row = page.locator(`[data-testid="case-row"][data-pseudonym="${withStudies.pseudonym}"]`);
  assert.equal(await row.getByTestId('case-studies').innerText(), String(withStudies.studies));
  const withClinical = api.items.find((c) => c.clinical && c.clinical.completeness < 1);
  assert.ok(withClinical, 'the demo data has a partly complete clinical record');
  const crow = page.locator(`[data-testid="case-row"][data-pseudonym="${withClinical.pseudonym}"]`);
  assert.match(await crow.innerText(), new RegExp(`${Math.round(withClinical.clinical!.completeness * 100)}%`));
  // Prefix search goes to the server.
  await page.getByLabel('Pseudonym starts with').fill(withStudies.pseudonym.slice(0, 12).toLowerCase());
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="case-row"]').length <= n, api.total);
  const shown = await page.getByTestId('case-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-pseudonym')));
  assert.ok(shown.includes(withStudies.pseudonym) && shown.every((p) => p!.startsWith(withStudies.pseudonym.slice(0, 12))), JSON.stringify(shown));
  await screenshot(page, 'site-cases');
  assert.deepEqual(await axeSerious(page), [], 'cases: no serious or critical axe violations');
  await ctx.close();
});

test('clinical form: an invalid field is explained, fixed and saved; an expired session keeps the work', async () => {
  const { ctx, page } = await signedIn(browser, server, 'datamanager');
  await page.getByRole('link', { name: 'Cases' }).click();
  await page.getByTestId('cases-table').waitFor();
  await page.getByRole('link', { name: 'Enter clinical data' }).click();
  await page.getByLabel('Patient identifier').fill('E2E-FORM-1');
  await page.getByLabel('Swab result').selectOption('positive');
  await page.getByLabel('Swab date').fill('2020-04-01');
  await page.getByLabel(/^Age/).fill('61');
  await page.getByLabel(/^Sex/).selectOption('F');
  await page.getByLabel(/^Temperature/).fill('52');
  await page.getByLabel(/^Heart rate/).fill('96');
  await page.getByRole('button', { name: 'Save and submit' }).click();
  // The site's validation answers per field; the form shows it by the field and in the summary.
  const err = page.locator('#f-observations_temperature-error');
  await err.waitFor();
  assert.match(await err.innerText(), /at most 45/);
  assert.equal(await page.getByLabel(/^Temperature/).getAttribute('aria-invalid'), 'true');
  await page.getByRole('alert').filter({ hasText: 'There is a problem' }).waitFor();
  await screenshot(page, 'site-clinical-form-error');
  assert.deepEqual(await axeSerious(page), [], 'clinical form: no serious or critical axe violations');
  // A draft needs only the patient and the kind: it is kept at the site, not sent.
  await page.getByRole('button', { name: 'Save draft' }).click();
  await page.getByText(/Draft saved on the site/).waitFor();
  const drafts = await apiGet<{ items: Array<{ state: string; record: { observations?: { temperature?: number } } }> }>(server, await apiCookie(server, 'datamanager'), '/api/site/v1/clinical?state=draft');
  assert.ok(drafts.items.some((d) => d.record.observations?.temperature === 52), 'the draft is stored as typed');
  await page.getByLabel(/^Temperature/).fill('38.4');
  // The session expires while the work is in hand.
  await ctx.clearCookies();
  await page.getByRole('button', { name: 'Save and submit' }).click();
  await page.getByTestId('session-expired').waitFor();
  await signIn(page, server, 'datamanager');
  await page.getByTestId('draft-restored').waitFor();
  assert.equal(new URL(page.url()).pathname, '/site/clinical/new');
  assert.equal(await page.getByLabel(/^Temperature/).inputValue(), '38.4');
  assert.equal(await page.getByLabel('Patient identifier').inputValue(), 'E2E-FORM-1');
  await page.getByRole('button', { name: 'Save and submit' }).click();
  await page.getByTestId('saved-note').waitFor();
  assert.equal(await page.locator('[data-field="observations.temperature"]').innerText(), '38.4 °C');
  const pseudonym = decodeURIComponent(new URL(page.url()).pathname.split('/')[3]!);
  const recs = await apiGet<{ items: Array<{ state: string; record: { observations: { temperature: number }; age: number } }> }>(server, await apiCookie(server, 'datamanager'), `/api/site/v1/clinical?pseudonym=${encodeURIComponent(pseudonym)}`);
  assert.equal(recs.items.length, 1, 'the submitted record replaced the draft');
  assert.notEqual(recs.items[0]!.state, 'draft');
  assert.equal(recs.items[0]!.record.observations.temperature, 38.4);
  assert.equal(recs.items[0]!.record.age, 61);
  await ctx.close();
});

test('CSV import: the preview and a per-row error report come before anything is stored', async () => {
  const { ctx, page } = await signedIn(browser, server, 'datamanager');
  const dm = await apiCookie(server, 'datamanager');
  const before = (await apiGet<{ items: unknown[] }>(server, dm, '/api/site/v1/clinical?limit=1000')).items.length;
  await page.getByRole('link', { name: 'Clinical import' }).click();
  const bad = 'patient_id,swab_status,swab_date,age,sex,temperature\nE2E-CSV-1,positive,2020-04-01,54,F,38.1\nE2E-CSV-2,positive,2020-04-02,150,M,37.0\nE2E-CSV-3,negative,2020-04-03,,,\n';
  await page.getByLabel('CSV file').setInputFiles({ name: 'clinical.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  await page.getByTestId('import-preview').waitFor();
  assert.equal(await page.locator('[data-testid=import-preview] tbody tr').count(), 3);
  await page.getByRole('button', { name: 'Check and import' }).click();
  const report = page.getByTestId('import-errors');
  await report.waitFor();
  assert.match(await report.innerText(), /Row 3/);
  assert.match(await report.innerText(), /Age.*120/);
  assert.equal(await page.locator('[data-row="3"].row-error').count(), 1);
  assert.equal(await page.locator('[data-row="2"].row-error').count(), 0);
  await screenshot(page, 'site-import-errors');
  assert.deepEqual(await axeSerious(page), [], 'import: no serious or critical axe violations');
  assert.equal((await apiGet<{ items: unknown[] }>(server, dm, '/api/site/v1/clinical?limit=1000')).items.length, before, 'nothing stored');
  await page.getByLabel('CSV file').setInputFiles({ name: 'clinical.csv', mimeType: 'text/csv', buffer: Buffer.from(bad.replace(',150,', ',72,')) });
  await page.getByRole('button', { name: 'Check and import' }).click();
  await page.getByTestId('import-result').waitFor();
  assert.match(await page.getByTestId('import-result').innerText(), /3 record\(s\) stored/);
  assert.equal((await apiGet<{ items: unknown[] }>(server, dm, '/api/site/v1/clinical?limit=1000')).items.length, before + 3);
  await ctx.close();
});

test('quarantine: release an instance after confirming; the decision is audited', async () => {
  const { ctx, page } = await signedIn(browser, server, 'datamanager');
  const dm = await apiCookie(server, 'datamanager');
  const q = await apiGet<{ items: Array<{ id: string; reason: string }> }>(server, dm, '/api/site/v1/quarantine');
  assert.ok(q.items.length > 0, 'the synthetic data put something in quarantine');
  await page.getByRole('link', { name: 'Quarantine' }).click();
  await page.getByTestId('quarantine-list').waitFor();
  assert.equal(await page.getByTestId('quarantine-item').count(), q.items.length);
  // Each card shows the site's PNG preview of the quarantined original, or "No preview" where the server cannot render it (415).
  const items = page.getByTestId('quarantine-item');
  let previews = 0;
  for (let i = 0; i < q.items.length; i++) {
    const card = items.nth(i);
    const r = await fetch(`${server.url}/api/site/v1/quarantine/${encodeURIComponent(q.items[i]!.id)}/thumbnail`, { headers: { cookie: dm } });
    if (r.status === 200) {
      assert.equal(r.headers.get('content-type'), 'image/png');
      const img = card.locator('img');
      await img.waitFor();
      await page.waitForFunction((el) => (el as HTMLImageElement).complete, await img.elementHandle());
      assert.ok(await img.evaluate((el) => (el as HTMLImageElement).naturalWidth) > 0, `card ${i}: the preview loaded`);
      previews++;
    } else {
      assert.equal(r.status, 415, `card ${i}: ${r.status}`);
      await card.getByText('No preview for this instance.').waitFor();
    }
  }
  assert.ok(previews > 0, 'at least one quarantined instance has a preview');
  // The viewer opens on the quarantined original (application/dicom from the site API).
  const withPreview = items.filter({ has: page.locator('img') }).first();
  await withPreview.getByRole('button', { name: 'View' }).click();
  const canvas = page.locator('canvas').first();
  await canvas.waitFor();
  await page.waitForFunction((el) => {
    const c = el as HTMLCanvasElement;
    const d = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data;
    return !!d && d.some((v, k) => k % 4 !== 3 && v > 0);
  }, await canvas.elementHandle());
  await withPreview.getByRole('button', { name: 'Close viewer' }).click();
  await screenshot(page, 'site-quarantine');
  assert.deepEqual(await axeSerious(page), [], 'quarantine: no serious or critical axe violations');
  const first = page.getByTestId('quarantine-item').first();
  assert.match(await first.innerText(), new RegExp(q.items[0]!.reason.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await first.getByRole('button', { name: 'Release' }).click();
  const dialog = page.getByRole('dialog', { name: 'Release this instance?' });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.getByTestId('quarantine-item').count(), q.items.length, 'cancel changes nothing');
  await first.getByRole('button', { name: 'Release' }).click();
  await dialog.getByRole('button', { name: 'Release instance' }).click();
  await page.getByText(/^Released /).waitFor();
  const after = await apiGet<{ items: Array<{ id: string }> }>(server, dm, '/api/site/v1/quarantine');
  assert.equal(after.items.length, q.items.length - 1);
  assert.ok(!after.items.some((i) => i.id === q.items[0]!.id));
  const audit = await apiGet<{ events: Array<{ resourceId: string; detail: { decision: string } }> }>(server, await apiCookie(server, 'operator'), '/api/audit/events?action=site.quarantine.review');
  assert.ok(audit.events.some((e) => e.resourceId === q.items[0]!.id && e.detail.decision === 'release'));
  await ctx.close();
});

test('opt-out list: add by identifier and by CSV; only counts are shown', async () => {
  const { ctx, page } = await signedIn(browser, server, 'siteadmin');
  await page.getByRole('link', { name: 'Opt-out list' }).click();
  await page.getByTestId('optout-stats').waitFor();
  const count0 = (await apiGet<{ count: number }>(server, await apiCookie(server, 'siteadmin'), '/api/site/v1/optouts')).count;
  await page.getByLabel('Patient identifier', { exact: true }).fill('9990001112');
  await page.getByRole('button', { name: 'Add to the opt-out list' }).click();
  await page.getByText(/1 added/).waitFor();
  await page.getByLabel('CSV file').setInputFiles({ name: 'optouts.csv', mimeType: 'text/csv', buffer: Buffer.from('patient_id,issuer\nE2E-OPT-1,DEMO1\nE2E-OPT-2,DEMO1\n') });
  await page.getByRole('button', { name: 'Upload and apply' }).click();
  await page.getByText(/From optouts.csv: 2 added/).waitFor();
  const count1 = (await apiGet<{ count: number }>(server, await apiCookie(server, 'siteadmin'), '/api/site/v1/optouts')).count;
  assert.equal(count1, count0 + 3);
  await page.waitForFunction((n) => document.querySelector('[data-testid=optout-stats]')?.textContent?.includes(String(n)), count1);
  const text = await page.locator('main').innerText();
  assert.ok(!text.includes('9990001112') && !text.includes('E2E-OPT-1'), 'identifiers are never shown back');
  await screenshot(page, 'site-optout');
  assert.deepEqual(await axeSerious(page), [], 'opt-out: no serious or critical axe violations');
  await ctx.close();
});

// ---------------------------------------------------------------- hub console

test('sites: register a site and see its token once; the token works', async () => {
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.getByRole('link', { name: 'Sites' }).click();
  await page.getByTestId('sites-table').waitFor();
  await page.getByRole('button', { name: 'Register site' }).click();
  await page.getByText('Use 2 to 32 capital letters, digits, - or _').first().waitFor();
  await page.getByLabel('Site code').fill('E2ENORTH');
  await page.getByLabel('Name', { exact: true }).fill('E2E North Hospital');
  await page.getByLabel('Region', { exact: true }).fill('North');
  await page.getByLabel('Split rule').selectOption('percent');
  await page.getByLabel(/^Training share/).fill('60');
  await page.getByRole('button', { name: 'Register site' }).click();
  const tok = page.getByTestId('site-token');
  await tok.waitFor();
  const token = (await tok.innerText()).trim();
  assert.ok(token.length > 20);
  await screenshot(page, 'hub-sites-token');
  assert.deepEqual(await axeSerious(page), [], 'sites: no serious or critical axe violations');
  const ping = await fetch(`${server.url}/api/hub/v1/ping`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ping.status, 200);
  assert.equal(((await ping.json()) as { site: string }).site, 'E2ENORTH');
  await page.getByRole('button', { name: 'I have stored it' }).click();
  assert.equal(await page.getByTestId('site-token').count(), 0);
  await page.reload();
  await page.getByTestId('sites-table').locator('td strong', { hasText: 'E2ENORTH' }).waitFor();
  assert.ok(!(await page.content()).includes(token), 'the token is shown once only');
  const sites = await apiGet<{ sites: Array<{ code: string; rule: string }> }>(server, await apiCookie(server, 'operator'), '/api/hub/v1/sites');
  assert.ok(sites.sites.some((s) => s.code === 'E2ENORTH'));
  // Change the split rule and the sharing flag.
  const row = page.getByTestId('sites-table').locator('tr', { hasText: 'E2ENORTH' });
  await row.getByRole('button', { name: 'Edit rule' }).click();
  await row.getByLabel('Split rule', { exact: true }).selectOption('training');
  await row.getByLabel('Shares data with other parties').check();
  await row.getByRole('button', { name: 'Save' }).click();
  await page.getByText(/Saved E2ENORTH/).waitFor();
  const s2 = await apiGet<{ sharesData: boolean; splitMode: string }>(server, await apiCookie(server, 'operator'), '/api/hub/v1/sites/E2ENORTH');
  assert.equal(s2.splitMode, 'training');
  assert.equal(s2.sharesData, true);
  // Revoke its tokens alone: cancel first, then confirm; the token then gets 401, and no new token is shown.
  await row.getByRole('button', { name: 'Revoke', exact: true }).click();
  const dlg = page.getByRole('dialog', { name: 'Revoke every token of E2ENORTH?' }).filter({ hasText: 'no new token is issued' });
  await dlg.waitFor();
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await fetch(`${server.url}/api/hub/v1/ping`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'cancel revokes nothing');
  await row.getByRole('button', { name: 'Revoke', exact: true }).click();
  await dlg.getByRole('button', { name: 'Revoke tokens' }).click();
  await page.getByText(/Revoked 1 token\(s\) of E2ENORTH/).waitFor();
  assert.equal(await page.getByTestId('site-token').count(), 0, 'no new token is issued');
  assert.equal((await fetch(`${server.url}/api/hub/v1/ping`, { headers: { authorization: `Bearer ${token}` } })).status, 401, 'the revoked token is refused');
  await ctx.close();
});

test('ingest dashboard: the numbers drawn are the hub API\'s', async () => {
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.getByRole('link', { name: 'Ingest dashboard' }).click();
  await page.getByTestId('hub-totals').waitFor();
  const stats = await apiGet<{ totals: Record<string, number>; splitBalance: Array<{ site: string; training: number; validation: number }>; completeness: Array<{ site: string }> }>(server, await apiCookie(server, 'operator'), '/api/hub/v1/stats');
  assert.ok(stats.totals.instances! > 0, 'the hub holds the uploaded demo data');
  for (const k of ['sites', 'patients', 'studies', 'instances', 'clinicalRecords']) {
    assert.equal((await page.locator(`[data-total="${k}"]`).innerText()).replace(/,/g, ''), String(stats.totals[k]), `total ${k}`);
  }
  for (const b of stats.splitBalance) {
    const row = page.locator(`[data-testid=split-table] tr[data-site="${b.site}"]`);
    assert.equal(await row.locator('[data-col=training]').innerText(), String(b.training));
    assert.equal(await row.locator('[data-col=validation]').innerText(), String(b.validation));
  }
  if (stats.completeness.length) assert.equal(await page.locator('[data-testid=completeness-heatmap] thead th').count(), stats.completeness.length + 1);
  else await page.getByText('No clinical records yet.').waitFor();
  // Patients over time (cumulative, by site): the last row's total is the API's patient total, and the series sums to it.
  const pot = await apiGet<{ patientsOverTime: Array<{ patients: number }> }>(server, await apiCookie(server, 'operator'), '/api/hub/v1/stats?bucket=day');
  assert.equal(pot.patientsOverTime.reduce((a, r) => a + r.patients, 0), stats.totals.patients);
  const drawnTotal = (await page.locator('[data-testid=patients-overtime-table] tbody tr').last().locator('[data-col=total]').textContent())?.replace(/,/g, '');
  assert.equal(drawnTotal, String(stats.totals.patients), 'drawn patient total');
  assert.ok((await page.locator('[data-testid=overtime-patients] .recharts-surface').count()) >= 1, 'the patients chart is drawn');
  assert.ok((await page.locator('.recharts-surface').count()) >= 4, 'charts are drawn');
  assert.ok((await page.locator('.recharts-line-curve, .recharts-bar-rectangle').count()) > 0, 'charts carry data');
  await screenshot(page, 'hub-dashboard');
  assert.deepEqual(await axeSerious(page), [], 'dashboard: no serious or critical axe violations');
  await ctx.close();
});

test('releases: create one, read its datasheet and counts, download its manifest', async () => {
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.getByRole('link', { name: 'Releases' }).click();
  await page.getByTestId('releases-table').waitFor();
  await page.getByLabel('Title').fill('E2E release');
  await page.getByLabel('Description').fill('Cut by the browser test');
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.getByTestId('release-detail').waitFor();
  const list = await apiGet<{ releases: Array<{ id: string; title: string; identifier: string; counts: { groups: Record<string, { instances: number; patients: number }> } }> }>(server, await apiCookie(server, 'operator'), '/api/hub/v1/releases');
  const rel = list.releases.find((r) => r.title === 'E2E release')!;
  assert.equal(await page.locator('[data-testid=releases-table] tbody tr').count(), list.releases.length);
  for (const [grp, c] of Object.entries(rel.counts.groups)) {
    assert.equal((await page.locator(`[data-testid=release-counts] tr[data-group="${grp}"] [data-col=instances]`).innerText()).replace(/,/g, ''), String(c.instances));
  }
  assert.match(await page.getByLabel('Datasheet').innerText(), /E2E release|\w+/);
  await screenshot(page, 'hub-releases');
  assert.deepEqual(await axeSerious(page), [], 'releases: no serious or critical axe violations');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download training manifest' }).click()]);
  const body = JSON.parse(await streamText(await download.createReadStream())) as { identifier: string; group: string; items: Array<{ kind: string }> };
  assert.equal(body.identifier, rel.identifier);
  assert.equal(body.group, 'training');
  assert.equal(body.items.filter((i) => i.kind === 'instance').length, rel.counts.groups.training!.instances);
  await ctx.close();
});

test('purges: request one with confirmation and see its evidence', async () => {
  const op = await apiCookie(server, 'operator');
  const studies = await apiGet<Array<Record<string, { Value?: string[] }>>>(server, op, '/api/hub/v1/dicomweb/studies?limit=1');
  const pseudonym = studies[0]!['00100020']!.Value![0]!;
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.getByRole('link', { name: 'Purges' }).click();
  await page.getByTestId('purges-table').waitFor();
  await page.getByLabel('Pseudonym').fill(pseudonym);
  await page.getByLabel('Reason').fill('national opt-out registered (e2e)');
  await page.getByRole('button', { name: 'Purge this patient' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Purge', exact: true }).click();
  await page.getByText(/^Purged: /).waitFor();
  await page.locator('[data-testid=purges-table] tbody tr').first().getByRole('button', { name: 'Evidence' }).click();
  const purges = await apiGet<{ purges: Array<{ id: string; instancesDigest: string }> }>(server, op, '/api/hub/v1/purges');
  await page.getByText(purges.purges[0]!.instancesDigest).waitFor();
  await screenshot(page, 'hub-purges');
  assert.deepEqual(await axeSerious(page), [], 'purges: no serious or critical axe violations');
  const gone = await apiGet<unknown[]>(server, op, `/api/hub/v1/dicomweb/studies?PatientID=${pseudonym}`);
  assert.equal(gone.length, 0);
  await ctx.close();
});

test('study browser: a series is drawn with window and level', async () => {
  const { ctx, page } = await signedIn(browser, server, 'operator');
  await page.getByRole('link', { name: 'Study browser' }).click();
  await page.getByTestId('studies-table').waitFor();
  await page.getByRole('button', { name: 'Series' }).first().click();
  await page.getByTestId('series-list').getByRole('button', { name: 'View series' }).first().click();
  const canvas = page.getByTestId('viewer-canvas');
  await page.getByLabel(/^Window width/).waitFor();
  const sample = () => canvas.evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i]!;
    return { w: c.width, mean: sum / (d.length / 4) };
  });
  const a = await sample();
  assert.ok(a.w > 0 && a.mean > 0, 'the image is drawn');
  const width = page.getByLabel(/^Window width/);
  await width.focus();
  await page.keyboard.press('Home'); // narrowest window, by keyboard
  const b = await sample();
  assert.notEqual(Math.round(a.mean), Math.round(b.mean), 'a narrower window changes the drawing');
  await page.getByRole('button', { name: 'Reset window' }).click();
  await screenshot(page, 'hub-study-viewer');
  assert.deepEqual(await axeSerious(page), [], 'study browser: no serious or critical axe violations');
  await ctx.close();
});

async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
