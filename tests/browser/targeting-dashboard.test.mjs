// End-to-end tests of the dashboard's targeting pages (dashboard/dist as served by the real
// lookout binary) in Debian's Chromium: an admin builds a segment and a campaign through the UI
// (each first refused with the server's invalid_rule message shown by the form), switches the
// campaign on from the list, then a visitor on a page of another origin (JSON-LD Car items) views
// a Tesla Model 3 three times: the segment badge appears in the live table and the journey
// (with the visitor's interests), the campaign's modal appears on the visitor's page, and the
// campaign's results page counts it triggered, sent, shown, clicked and converted. Deleting asks
// for confirmation; a viewer gets read-only pages; phone-sized screens fit; no CSP violation.
// Screenshots (1280×800 and 390×844) go to tests/browser/artifacts/targeting-*.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LookoutServer, PageServer, api, browserSkipReason, createSite, eventually, launchBrowser, signup, sleep } from './lib/server.mjs';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const STUB = 'window.lookout=window.lookout||function(){(lookout.q=lookout.q||[]).push(arguments)}';
const WAIT = { timeout: 15_000 };
const PASSWORD = 'correct horse battery staple';

const TESLA_3 = {
  '@context': 'https://schema.org',
  '@type': 'Car',
  name: 'Tesla Model 3 Long Range',
  brand: { '@type': 'Brand', name: 'Tesla' },
  model: 'Model 3',
  bodyType: 'Sedan',
  sku: 'TM3-LR',
  offers: { '@type': 'Offer', price: '41990.00', priceCurrency: 'USD' },
};

/** The dealer's pages on another origin: a Model 3 listing (JSON-LD Car), the financing page. */
function dealerPage(url, tag) {
  const listing = url.pathname.startsWith('/cars/tesla-model-3');
  const title = listing ? `Tesla Model 3 — listing ${url.searchParams.get('listing') || ''}` : url.pathname === '/financing' ? 'Financing' : 'Dealer';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<script>${STUB}</script>
${tag}
${listing ? `<script type="application/ld+json">${JSON.stringify(TESLA_3)}</script>` : ''}
</head><body><h1>${title}</h1></body></html>`;
}

const skip = browserSkipReason();
if (skip) console.log(`# skipping the targeting dashboard browser tests: ${skip}`);

describe('targeting pages of the dashboard in a browser', { skip: skip || false }, () => {
  let server;
  let pages;
  let browser;
  let adminCtx;
  let page;
  let visitorCtx;
  let visitor;
  let owner;
  let site;
  let tag = '';
  let segmentId;
  let campaignId;
  let visitorId;
  const problems = [];
  const adminEmail = `dealer-${Date.now()}@example.test`;
  const viewerEmail = `viewer-${Date.now()}@example.test`;

  /** A screenshot without the notices of earlier steps over it. */
  async function shot(p, name, opts = {}) {
    await p.evaluate(() => document.querySelectorAll('.toast .icon-btn').forEach((b) => b.click()));
    await sleep(250);
    await p.screenshot({ path: join(ARTIFACTS, `targeting-${name}.png`), ...opts });
  }

  function watch(p, who) {
    p.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${who}: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`${who}: page error ${e.message}`));
  }

  async function login(p, email) {
    await p.goto(server.url + '/');
    await p.getByLabel('Email').fill(email);
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('main h1').first().waitFor(WAIT);
  }

  /** The number a results tile shows. */
  const stat = (p, name) => p.locator(`[data-stat="${name}"] .kpi-value`).textContent().then((t) => Number(t.replace(/[^\d.-]/g, '')));

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await LookoutServer.start();
    owner = await signup(server, adminEmail, PASSWORD);
    site = await createSite(server, owner.token, { name: 'Dealer', domains: ['localhost'] });
    tag = `<script async src="${server.url}/snippet.js" data-site="${site.key}"></script>`;
    pages = await PageServer.start((url) => (url.pathname === '/favicon.ico' ? null : { body: dealerPage(url, tag) }));
    browser = await launchBrowser();
    adminCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await adminCtx.newPage();
    watch(page, 'admin');
    await login(page, adminEmail);
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    if (server && process.env.LOOKOUT_E2E_LOG) console.log(server.log);
    await server?.dispose();
  });

  test('a segment is built with the condition builder; a refused one shows the server message at its field', async () => {
    await page.goto(`${server.url}/#/sites/${site.id}/live`);
    await page.getByRole('link', { name: 'Segments', exact: true }).click();
    await page.getByRole('heading', { name: 'Segments', exact: true }).waitFor(WAIT);
    await page.getByText('No segments yet').waitFor(WAIT);
    await page.getByRole('link', { name: 'New segment' }).first().click();
    await page.getByRole('heading', { name: 'New segment' }).waitFor(WAIT);

    await page.getByLabel('Name', { exact: true }).fill('Model 3 shoppers');
    await page.getByLabel('Description (optional)').fill('Viewed a Model 3 three times this session');
    const c1 = page.locator('[data-condition="0"]');
    assert.equal(await c1.getByLabel('Condition 1', { exact: true }).inputValue(), 'item');
    await c1.getByLabel('Brand').fill('Tesla');
    await c1.getByLabel('Model', { exact: true }).fill('Model 3');
    await c1.getByLabel('Min price').fill('50000');
    await c1.getByLabel('Max price').fill('1000');
    await c1.getByLabel('At least (items viewed)').fill('3');
    // A second condition, changed to another type, then removed again.
    await page.getByRole('button', { name: '+ Add condition' }).click();
    const c2 = page.locator('[data-condition="1"]');
    await c2.getByLabel('Condition 2', { exact: true }).selectOption('utm');
    await c2.getByLabel('Parameter').selectOption('campaign');
    await c2.getByLabel('Is', { exact: true }).fill('spring');
    await page.getByText('utm_campaign is “spring”').waitFor(WAIT);
    await page.getByText('Any condition', { exact: true }).click();
    assert.equal(await c2.locator('xpath=..').getAttribute('class'), 'conds conds-any');
    await page.getByRole('button', { name: 'Remove condition 2' }).click();
    assert.equal(await page.locator('[data-condition]').count(), 1);

    // The server refuses min_price > max_price: its message shows next to the form and at the field.
    await page.getByRole('button', { name: 'Create segment' }).click();
    const alert = page.locator('.form-foot [role="alert"]');
    await alert.getByText('conditions[0].min_price must not exceed max_price').waitFor(WAIT);
    assert.match(await alert.innerText(), /invalid_rule/);
    assert.match(await c1.getAttribute('class'), /cond-invalid/);
    assert.equal(await c1.locator('.field-invalid').getByLabel('Min price').count(), 1, 'the field named by the error is marked');
    await shot(page, 'segment-refused');

    await c1.getByLabel('Min price').fill('');
    await c1.getByLabel('Max price').fill('');
    await page.getByRole('button', { name: 'Create segment' }).click();
    await page.waitForURL((u) => /#\/sites\/[^/]+\/segments\/[^/?]+$/.test(u.hash) && !u.hash.endsWith('/new'), WAIT);
    segmentId = /segments\/([^/?]+)$/.exec(page.url())[1];
    await page.getByRole('heading', { name: 'Model 3 shoppers' }).waitFor(WAIT);
    await page.getByText('Nobody is in this segment right now').waitFor(WAIT);
    const stored = await api(server, 'GET', `/api/sites/${site.id}/segments/${segmentId}`, { token: owner.token });
    assert.deepEqual(stored.body.conditions, [{ type: 'item', brand: 'Tesla', model: 'Model 3', category: null, name: null, min_price: null, max_price: null, min: 3 }]);
    assert.equal(stored.body.match, 'any');

    // Back to "all" from the edit page.
    await page.getByRole('link', { name: 'Edit segment' }).click();
    await page.getByRole('heading', { name: 'Edit segment' }).waitFor(WAIT);
    assert.equal(await page.locator('[data-condition="0"]').getByLabel('Brand').inputValue(), 'Tesla');
    await page.getByText('All conditions', { exact: true }).click();
    await page.getByRole('button', { name: 'Save segment' }).click();
    await page.waitForURL((u) => /segments\/[^/?]+$/.test(u.hash), WAIT);
    await eventually(async () => (await api(server, 'GET', `/api/sites/${site.id}/segments/${segmentId}`, { token: owner.token })).body.match === 'all', { what: 'match all saved' });

    await page.getByRole('link', { name: 'Segments', exact: true }).first().click();
    const row = page.locator(`tr[data-segment="${segmentId}"]`);
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /Model 3 shoppers/);
    assert.match(await row.innerText(), /at least 3 items with brand “Tesla”, model “Model 3”/);
    assert.equal(await row.getByTestId('members-now').textContent(), '0');
    await shot(page, 'segments');
  });

  test('a campaign is composed (a refused placeholder first), saved off, and switched on from the list', async () => {
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    await page.getByText('No campaigns yet').waitFor(WAIT);
    await page.getByRole('link', { name: 'New campaign' }).first().click();
    await page.getByRole('heading', { name: 'New campaign' }).waitFor(WAIT);

    await page.getByLabel('Name', { exact: true }).fill('Model 3 financing');
    await page.getByLabel('Priority').fill('10');
    const trigger = page.getByRole('region', { name: 'Trigger' });
    const segSelect = trigger.getByLabel('Segment', { exact: true });
    await segSelect.locator(`option[value="${segmentId}"]`).waitFor({ state: 'attached', ...WAIT });
    await eventually(async () => (await segSelect.inputValue()) === segmentId, { what: 'the first segment preselected' });

    const message = page.getByRole('region', { name: 'Message' });
    await message.getByLabel('Title', { exact: true }).fill('Financing for your {{shoe_size}}');
    await message.getByLabel('Body', { exact: true }).fill('{{brand}} from {{price}} {{currency}}');
    await message.getByText('Modal', { exact: true }).click();
    await message.getByLabel('Button label (optional)').fill('See rates');
    await message.getByLabel('Button link').fill(`${pages.origin}/financing`);
    const goal = page.getByRole('region', { name: 'Goal and control group' });
    await goal.getByText('Views a page', { exact: true }).click();
    await goal.getByLabel('Goal page URL').selectOption('prefix');
    await goal.getByLabel('Goal value').fill('/financing');
    await goal.getByLabel('Counts within', { exact: true }).fill('1');
    await goal.getByLabel('Counts within: unit').selectOption({ label: 'hours' });

    // Unknown placeholders are refused by the server, which names them.
    await page.getByRole('button', { name: 'Create campaign' }).click();
    const alert = page.locator('.form-foot [role="alert"]');
    await alert.getByText(/unknown placeholder \{\{shoe_size\}\}/).waitFor(WAIT);
    assert.match(await alert.innerText(), /invalid_rule/);
    assert.match(await message.locator('.field-invalid').innerText(), /shoe_size/, 'shown at the title field');
    await shot(page, 'campaign-refused');

    // The placeholder buttons insert at the caret of the last focused field.
    const title = message.getByLabel('Title', { exact: true });
    await title.fill('Financing for your ');
    await title.focus();
    await title.press('End');
    await message.getByRole('button', { name: 'Insert {{model}}' }).click();
    assert.equal(await title.inputValue(), 'Financing for your {{model}}');
    const preview = page.getByRole('region', { name: 'Preview' });
    await preview.getByText('Financing for your {{model}}').waitFor(WAIT);
    await preview.getByLabel('Example values').check();
    await preview.getByText('Financing for your Model 3').waitFor(WAIT);
    await preview.getByText('Tesla from 41990 USD').waitFor(WAIT);
    assert.equal(await page.getByRole('region', { name: 'Frequency' }).getByLabel('Per visitor, at most').inputValue(), '1');
    await shot(page, 'campaign-editor', { fullPage: true });

    await page.getByRole('button', { name: 'Create campaign' }).click();
    await page.waitForURL((u) => /#\/sites\/[^/]+\/campaigns\/[^/?]+$/.test(u.hash) && !u.hash.endsWith('/new'), WAIT);
    campaignId = /campaigns\/([^/?]+)$/.exec(page.url())[1];
    await page.getByRole('heading', { name: 'Model 3 financing' }).waitFor(WAIT);
    const c = (await api(server, 'GET', `/api/sites/${site.id}/campaigns/${campaignId}`, { token: owner.token })).body;
    assert.equal(c.enabled, false);
    assert.equal(c.priority, 10);
    assert.deepEqual(c.trigger, { type: 'segment_entered', segment: segmentId });
    assert.deepEqual(c.message, {
      title: 'Financing for your {{model}}',
      body: '{{brand}} from {{price}} {{currency}}',
      style: 'modal',
      cta: { label: 'See rates', url: `${pages.origin}/financing` },
      data: {},
    });
    assert.equal(c.frequency.per_visitor, 1);
    assert.deepEqual(c.goal, { type: 'pageview', match: 'prefix', value: '/financing' });
    assert.equal(c.goal_window_seconds, 3600);

    await page.getByRole('link', { name: 'Campaigns', exact: true }).first().click();
    const row = page.locator(`tr[data-campaign="${campaignId}"]`);
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /Enters “Model 3 shoppers”/);
    const toggle = row.getByRole('switch', { name: 'Enabled: Model 3 financing' });
    assert.equal(await toggle.isChecked(), false);
    await toggle.check();
    await page.getByText('“Model 3 financing” is on').waitFor(WAIT);
    await eventually(async () => (await api(server, 'GET', `/api/sites/${site.id}/campaigns/${campaignId}`, { token: owner.token })).body.enabled === true, {
      what: 'the campaign enabled on the server',
    });
    assert.equal(await toggle.isChecked(), true);
    await shot(page, 'campaigns');
  });

  test('three Model 3 views: the badge appears live, the modal on the page, and the results count it', async () => {
    await page.goto(`${server.url}/#/sites/${site.id}/live`);
    visitorCtx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    visitor = await visitorCtx.newPage();
    await visitor.goto(`${pages.origin}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring`);
    const row = page.locator('tr[data-visitor]');
    await row.first().waitFor(WAIT);
    visitorId = await row.first().getAttribute('data-visitor');
    // The source comes from the landing page's UTM parameters, and stays as the visitor moves on.
    await page.waitForFunction((v) => /newsletter/.test(document.querySelector(`tr[data-visitor="${v}"] .c-source`)?.textContent || ''), visitorId, WAIT);
    assert.match(await row.first().locator('.c-source').innerText(), /email · spring/);

    for (const n of [1, 2]) {
      await visitor.goto(`${pages.origin}/cars/tesla-model-3?listing=${n}`);
      await page.waitForFunction(([v, n]) => document.querySelector(`tr[data-visitor="${v}"]`)?.textContent.includes(`listing ${n}`), [visitorId, n], WAIT);
    }
    assert.equal(await row.first().locator('.seg-badge').count(), 0, 'not in the segment after two views');
    await visitor.goto(`${pages.origin}/cars/tesla-model-3?listing=3`);

    // The segment badge in the live table.
    const badge = row.first().locator('.c-segs .seg-badge');
    await badge.waitFor(WAIT);
    assert.equal(await badge.textContent(), 'Model 3 shoppers');
    assert.match(await row.first().locator('.c-source').innerText(), /newsletter/);
    await page.getByText('entered').first().waitFor(WAIT);
    await shot(page, 'live-segment-badge');

    // The campaign's modal on the visitor's page (the snippet renders in a shadow root).
    const dialog = visitor.getByRole('dialog', { name: 'Financing for your Model 3' });
    await dialog.waitFor(WAIT);
    await dialog.getByText('Tesla from 41990 USD').waitFor(WAIT);

    // The journey: the badge and the interests.
    await row.first().locator('.visitor-link').click();
    const drawer = page.locator('.drawer');
    await drawer.locator('.j-segments .seg-badge', { hasText: 'Model 3 shoppers' }).waitFor(WAIT);
    const brands = drawer.locator('[data-interest="brands"]');
    await brands.waitFor(WAIT);
    assert.match(await brands.innerText(), /Tesla\s*3×/);
    assert.match(await drawer.locator('[data-interest="models"]').innerText(), /Model 3\s*3×/);
    assert.match(await drawer.getByTestId('price-range').innerText(), /41[,.\s ]?990/);
    await shot(page, 'journey-interests');
    await page.keyboard.press('Escape');

    // The campaign's results: triggered and sent, then shown (the page displayed it).
    await page.goto(`${server.url}/#/sites/${site.id}/campaigns/${campaignId}`);
    await page.getByTestId('campaign-stats').waitFor(WAIT);
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="triggered"] .kpi-value')?.textContent) >= 1, null, WAIT);
    assert.ok((await stat(page, 'sent')) >= 1);
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="shown"] .kpi-value')?.textContent) >= 1, null, WAIT);
    assert.equal(await stat(page, 'control'), 0);

    // The visitor clicks through to the financing page: clicked and converted, without a reload.
    await dialog.getByRole('link', { name: 'See rates' }).click();
    await visitor.waitForURL(/\/financing$/);
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="converted"] .kpi-value')?.textContent) === 1, null, { timeout: 20_000 });
    assert.equal(await stat(page, 'clicked'), 1);
    assert.equal(await page.locator('[data-stat="conversion_rate"] .kpi-value').textContent(), '100%');
    assert.equal(await page.locator('[data-stat="lift"] .kpi-value').textContent(), '—');
    await shot(page, 'campaign-results', { fullPage: true });

    // The list shows the numbers too.
    await page.getByRole('link', { name: 'Campaigns', exact: true }).first().click();
    const crow = page.locator(`tr[data-campaign="${campaignId}"]`);
    await crow.waitFor(WAIT);
    await page.waitForFunction((id) => document.querySelector(`tr[data-campaign="${id}"] [data-count="sent"]`)?.textContent === '1', campaignId, WAIT);
  });

  test('the members view lists the visitors in the segment now, and the list counts them live', async () => {
    await page.goto(`${server.url}/#/sites/${site.id}/segments`);
    const row = page.locator(`tr[data-segment="${segmentId}"]`);
    await row.waitFor(WAIT);
    await page.waitForFunction((id) => document.querySelector(`tr[data-segment="${id}"] [data-testid="members-now"]`)?.textContent === '1', segmentId, WAIT);
    await row.getByTestId('members-now').click();
    await page.getByRole('heading', { name: 'Model 3 shoppers' }).waitFor(WAIT);
    const member = page.locator(`.table-members tr[data-visitor="${visitorId}"]`);
    await member.waitFor(WAIT);
    assert.match(await member.innerText(), /Financing/);
    assert.equal(await page.getByTestId('members-count').textContent(), '1');
    await shot(page, 'segment-members');
    // A member opens their journey over the page.
    await member.locator('.visitor-link').click();
    await page.locator(`.drawer[data-visitor="${visitorId}"]`).waitFor(WAIT);
    await page.keyboard.press('Escape');
  });

  test('deleting asks first, and a segment in use is explained, not deleted', async () => {
    await page.goto(`${server.url}/#/sites/${site.id}/segments`);
    await page.getByRole('button', { name: 'Delete Model 3 shoppers' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete the segment “Model 3 shoppers”?' });
    await dialog.waitFor(WAIT);
    await dialog.getByRole('button', { name: 'Delete segment' }).click();
    await dialog.getByText(/uses this segment/).waitFor(WAIT);
    await shot(page, 'segment-delete-in-use');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await api(server, 'GET', `/api/sites/${site.id}/segments/${segmentId}`, { token: owner.token })).status, 200);

    // A throwaway segment goes after confirming.
    const extra = await api(server, 'POST', `/api/sites/${site.id}/segments`, {
      token: owner.token,
      body: { name: 'Mobile visitors', conditions: [{ type: 'device', value: 'mobile' }] },
    });
    assert.equal(extra.status, 201);
    await page.reload();
    await page.getByRole('button', { name: 'Delete Mobile visitors' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete segment' }).click();
    await page.locator(`tr[data-segment="${extra.body.id}"]`).waitFor({ state: 'detached', ...WAIT });
    assert.equal((await api(server, 'GET', `/api/sites/${site.id}/segments/${extra.body.id}`, { token: owner.token })).status, 404);
  });

  test('a viewer sees the targeting pages read-only', async () => {
    await signup(server, viewerEmail, PASSWORD);
    const added = await api(server, 'POST', `/api/sites/${site.id}/members`, { token: owner.token, body: { email: viewerEmail, role: 'viewer' } });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const vp = await ctx.newPage();
    watch(vp, 'viewer');
    await login(vp, viewerEmail);

    await vp.getByRole('link', { name: 'Segments', exact: true }).click();
    const row = vp.locator(`tr[data-segment="${segmentId}"]`);
    await row.waitFor(WAIT);
    assert.equal(await vp.getByRole('link', { name: 'New segment' }).count(), 0);
    assert.equal(await vp.getByRole('button', { name: /^Delete/ }).count(), 0);
    await shot(vp, 'viewer-segments');
    await row.getByRole('link', { name: 'View Model 3 shoppers' }).click();
    await vp.getByRole('heading', { name: 'Model 3 shoppers' }).waitFor(WAIT);
    await vp.getByText('Read only: your role on this site is viewer.').waitFor(WAIT);
    assert.ok(await vp.getByLabel('Name', { exact: true }).isDisabled());
    assert.ok(await vp.locator('[data-condition="0"]').getByLabel('Brand').isDisabled());
    assert.equal(await vp.getByRole('button', { name: /Save|Create|Add condition|Remove/ }).count(), 0);
    await shot(vp, 'viewer-segment');
    await vp.goto(`${server.url}/#/sites/${site.id}/segments/new`);
    await vp.getByText('Viewers cannot create segments').waitFor(WAIT);

    await vp.goto(`${server.url}/#/sites/${site.id}/campaigns`);
    const crow = vp.locator(`tr[data-campaign="${campaignId}"]`);
    await crow.waitFor(WAIT);
    assert.ok(await crow.getByRole('switch').isDisabled());
    assert.equal(await vp.getByRole('link', { name: 'New campaign' }).count(), 0);
    assert.equal(await vp.getByRole('button', { name: /^Delete/ }).count(), 0);
    await shot(vp, 'viewer-campaigns');
    await crow.getByRole('link', { name: 'Results of Model 3 financing' }).click();
    await vp.getByTestId('campaign-stats').waitFor(WAIT);
    assert.ok((await stat(vp, 'sent')) >= 1);
    assert.ok(await vp.getByRole('switch').isDisabled());
    assert.equal(await vp.getByRole('button', { name: /Delete/ }).count(), 0);
    await vp.getByRole('link', { name: 'View definition' }).click();
    await vp.getByText('Read only: your role on this site is viewer.').waitFor(WAIT);
    assert.ok(await vp.getByRole('region', { name: 'Message' }).getByLabel('Title', { exact: true }).isDisabled());
    assert.equal(await vp.getByRole('button', { name: /Save|Create|Insert/ }).count(), 0);
    await shot(vp, 'viewer-campaign', { fullPage: true });

    // The server refuses the viewer's changes too.
    const res = await vp.evaluate(
      async ([s, c]) => (await fetch(`/api/sites/${s}/campaigns/${c}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"enabled":false}' })).status,
      [site.id, campaignId],
    );
    assert.equal(res, 403);
    await ctx.close();
  });

  test('on a phone-sized screen the targeting pages fit', async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await adminCtx.storageState(), hasTouch: true, isMobile: true });
    const mp = await ctx.newPage();
    watch(mp, 'phone');
    const views = {
      segments: 'segments',
      'segment-members': `segments/${segmentId}`,
      'segment-edit': `segments/${segmentId}/edit`,
      campaigns: 'campaigns',
      'campaign-results': `campaigns/${campaignId}`,
      'campaign-edit': `campaigns/${campaignId}/edit`,
      live: 'live',
    };
    for (const [name, path] of Object.entries(views)) {
      await mp.goto(`${server.url}/#/sites/${site.id}/${path}`);
      await mp.locator('main h1').first().waitFor(WAIT);
      await mp.locator('main .loading').first().waitFor({ state: 'detached', ...WAIT }).catch(() => {});
      await sleep(300);
      const overflow = await mp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${name} overflows the screen by ${overflow}px`);
      await shot(mp, `phone-${name}`);
    }
    // The live card shows the segment badge.
    await mp.locator(`tr[data-visitor="${visitorId}"] .seg-badge`).waitFor(WAIT);
    await ctx.close();
  });

  test('every condition type goes through the builder and back unchanged', async () => {
    await page.goto(`${server.url}/#/sites/${site.id}/segments/new`);
    await page.getByRole('heading', { name: 'New segment' }).waitFor(WAIT);
    await page.getByLabel('Name', { exact: true }).fill('Everything');
    await page.getByText('Any condition', { exact: true }).click();
    const steps = [
      ['current_url', async (c) => {
        await c.getByLabel('Match').selectOption('glob');
        await c.getByLabel('Value', { exact: true }).fill('/cars/*/model-?');
      }],
      ['pages', async (c) => {
        await c.getByLabel('Value', { exact: true }).fill('/cars/');
        await c.getByLabel('At least (page views)').fill('2');
      }],
      ['item', async (c) => {
        await c.getByLabel('Category').fill('Sedan');
        await c.getByLabel('Min price').fill('30000');
        await c.getByLabel('Max price').fill('60000');
      }],
      ['time_on_site', async (c) => {
        await c.getByLabel('Since the session started, at least', { exact: true }).fill('5');
      }],
      ['time_on_page', async (c) => {
        await c.getByLabel('On the current page, at least', { exact: true }).fill('30');
        await c.getByLabel('On the current page, at least: unit').selectOption({ label: 'seconds' });
      }],
      ['sessions', async (c) => {
        await c.getByLabel('At least (sessions)').fill('2');
        await c.getByLabel('At most (sessions)').fill('5');
      }],
      ['referrer', async (c) => {
        await c.getByLabel('Match').selectOption('regex');
        await c.getByLabel('Value', { exact: true }).fill('^https://(www\\.)?google\\.');
      }],
      ['utm', async (c) => {
        await c.getByLabel('Parameter').selectOption('medium');
        await c.getByLabel('Is', { exact: true }).fill('email');
      }],
      ['device', async (c) => {
        await c.getByLabel('Device is').selectOption('mobile');
      }],
      ['trait', async (c) => {
        await c.getByLabel('Trait', { exact: true }).fill('plan');
        await c.getByLabel('Equals (optional)').fill('pro');
      }],
      ['event', async (c) => {
        await c.getByLabel('Event name').fill('added_to_cart');
        await c.getByLabel('At least (times)').fill('2');
        await c.getByRole('button', { name: '+ Add a property' }).click();
        await c.getByLabel('Property 1 name').fill('sku');
        await c.getByLabel('Property 1 value').fill('A-113');
        await c.getByRole('button', { name: '+ Add a property' }).click();
        await c.getByLabel('Property 2 name').fill('qty');
        await c.getByLabel('Property 2 value').fill('2');
      }],
    ];
    for (const [i, [type, fill]] of steps.entries()) {
      if (i > 0) await page.getByRole('button', { name: '+ Add condition' }).click();
      const c = page.locator(`[data-condition="${i}"]`);
      await c.getByLabel(`Condition ${i + 1}`, { exact: true }).selectOption(type);
      await fill(c);
    }
    await shot(page, 'segment-all-types', { fullPage: true });
    await page.getByRole('button', { name: 'Create segment' }).click();
    await page.waitForURL((u) => /segments\/[^/?]+$/.test(u.hash) && !u.hash.endsWith('/new'), WAIT);
    const id = /segments\/([^/?]+)$/.exec(page.url())[1];
    const expected = [
      { type: 'current_url', match: 'glob', value: '/cars/*/model-?' },
      { type: 'pages', match: 'prefix', value: '/cars/', min: 2 },
      { type: 'item', brand: null, model: null, category: 'Sedan', name: null, min_price: 30000, max_price: 60000, min: 1 },
      { type: 'time_on_site', min_seconds: 300 },
      { type: 'time_on_page', min_seconds: 30 },
      { type: 'sessions', min: 2, max: 5 },
      { type: 'referrer', match: 'regex', value: '^https://(www\\.)?google\\.' },
      { type: 'utm', param: 'medium', value: 'email' },
      { type: 'device', value: 'mobile' },
      { type: 'trait', key: 'plan', value: 'pro' },
      { type: 'event', name: 'added_to_cart', props: { sku: 'A-113', qty: 2 }, min: 2 },
    ];
    const first = (await api(server, 'GET', `/api/sites/${site.id}/segments/${id}`, { token: owner.token })).body;
    assert.deepEqual(first.conditions, expected);
    assert.equal(first.match, 'any');

    // The edit page shows what was stored; saving it unchanged keeps it as it was.
    await page.getByRole('link', { name: 'Edit segment' }).click();
    await page.getByRole('heading', { name: 'Edit segment' }).waitFor(WAIT);
    assert.equal(await page.locator('[data-condition="3"]').getByLabel('Since the session started, at least: unit').inputValue(), '60');
    assert.equal(await page.locator('[data-condition="3"]').getByLabel('Since the session started, at least', { exact: true }).inputValue(), '5');
    // (The server keeps props sorted by name.)
    const ev = page.locator('[data-condition="10"]');
    assert.deepEqual(
      [await ev.getByLabel('Property 1 name').inputValue(), await ev.getByLabel('Property 1 value').inputValue(), await ev.getByLabel('Property 2 name').inputValue()],
      ['qty', '2', 'sku'],
    );
    await page.getByRole('button', { name: 'Save segment' }).click();
    await page.waitForURL((u) => /segments\/[^/?]+$/.test(u.hash), WAIT);
    const again = (await api(server, 'GET', `/api/sites/${site.id}/segments/${id}`, { token: owner.token })).body;
    assert.deepEqual(again.conditions, expected);

    // Deleted from its own page.
    await page.getByRole('heading', { name: 'Everything' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete segment' }).click();
    await page.getByRole('heading', { name: 'Segments', exact: true }).waitFor(WAIT);
    assert.equal((await api(server, 'GET', `/api/sites/${site.id}/segments/${id}`, { token: owner.token })).status, 404);
  });

  test('no CSP violation or script error happened', () => {
    assert.deepEqual(problems, []);
  });
});
