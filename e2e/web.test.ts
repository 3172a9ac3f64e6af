import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { apiCookie, apiGet, axeSerious, ensureWebBuilt, launchBrowser, screenshot, signIn, signedIn, startServer, type Server } from './harness.ts';

let server: Server;
let browser: Browser;

before(async () => {
  ensureWebBuilt();
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
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

export { signIn };
