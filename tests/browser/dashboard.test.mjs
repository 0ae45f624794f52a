// End-to-end tests of the dashboard (dashboard/dist, as served by the real lookout binary) in
// Debian's Chromium: an admin signs up, creates a site and installs the tag on a test page served
// from another origin; a visitor appears live, their journey grows as they navigate, a message
// reaches their page and its click is counted, a banner reaches a segment; history, stats and
// settings show the data; a viewer cannot send; phone-sized screens, reconnects, session expiry.
// Screenshots of every main view go to tests/browser/artifacts/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LookoutServer, PageServer, api, browserSkipReason, launchBrowser, signup, sleep } from './lib/server.mjs';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const STUB = 'window.lookout=window.lookout||function(){(lookout.q=lookout.q||[]).push(arguments)}';
const WAIT = { timeout: 15_000 };
const PASSWORD = 'correct horse battery staple';

/** A customer's page carrying the tag exactly as the dashboard showed it. */
function customerPage(url, tag) {
  const name = url.pathname.split('/').pop() || 'home';
  const title = { landing: 'Landing page', next: 'Next page' }[name] || `Page ${name}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<script>${STUB}</script>
${tag}
</head><body>
<h1>${title}</h1>
<p><a id="next" href="/p/next">Next page</a></p>
</body></html>`;
}

const skip = browserSkipReason();
if (skip) console.log(`# skipping the dashboard browser tests: ${skip}`);

describe('dashboard in a browser', { skip: skip || false }, () => {
  let server;
  let pages;
  let browser;
  let adminCtx;
  let page;
  let visitorCtx;
  let visitor;
  let tag = '';
  let siteId;
  let visitorId;
  const problems = [];
  const adminEmail = `admin-${Date.now()}@example.test`;
  const viewerEmail = `viewer-${Date.now()}@example.test`;

  const shot = (p, name, opts = {}) => p.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), ...opts });

  /** Reports CSP violations and script errors of a dashboard page. */
  function watch(p, who) {
    p.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${who}: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`${who}: page error ${e.message}`));
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await LookoutServer.start();
    pages = await PageServer.start((url) => (url.pathname.startsWith('/p/') ? { body: customerPage(url, tag) } : null));
    browser = await launchBrowser();
    adminCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await adminCtx.newPage();
    watch(page, 'admin');
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
    if (server && process.env.LOOKOUT_E2E_LOG) console.log(server.log);
    await server?.dispose();
  });

  test('signing up leads to creating the first site and its tag, waiting for a visitor', async () => {
    await page.goto(server.url + '/');
    await page.getByRole('heading', { name: 'Sign in to Lookout' }).waitFor(WAIT);
    await shot(page, 'login');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill(adminEmail);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();

    await page.getByRole('heading', { name: 'Add your first site' }).waitFor(WAIT);
    await page.getByLabel('Site name').fill('Acme shop');
    await page.getByLabel('Domains').fill('localhost');
    await shot(page, 'new-site');
    await page.getByRole('button', { name: 'Create site' }).click();

    await page.getByRole('heading', { name: 'Install the snippet' }).waitFor(WAIT);
    siteId = /#\/sites\/([^/?]+)\/setup/.exec(page.url())[1];
    tag = (await page.locator('.code-block code').first().textContent()).trim();
    assert.match(tag, new RegExp(`^<script async src="${server.url.replace(/\./g, '\\.')}/snippet\\.js" data-site="[^"]+"></script>$`));
    await page.locator('[data-state="waiting"]').waitFor(WAIT);
    await page.locator('main .conn[data-status="open"], .sidebar .conn[data-status="open"]').first().waitFor(WAIT);
    await shot(page, 'setup-waiting');
  });

  test('the first visitor turns the setup page green and shows up in the live table', async () => {
    visitorCtx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    visitor = await visitorCtx.newPage();
    await visitor.goto(`${pages.origin}/p/landing?utm_source=newsletter`);

    await page.locator('[data-state="arrived"]').waitFor(WAIT);
    await shot(page, 'setup-arrived');
    await page.getByRole('link', { name: 'Open live view' }).click();

    const row = page.locator('tr[data-visitor]');
    await row.first().waitFor(WAIT);
    assert.equal(await row.count(), 1);
    visitorId = await row.first().getAttribute('data-visitor');
    const text = await row.first().innerText();
    assert.match(text, /Landing page/);
    assert.match(text, /\/p\/landing/);
    assert.match(text, /newsletter/, 'the UTM source is the source');
    assert.equal(await page.getByTestId('live-count').textContent(), '1');

    // Time on page ticks without any frame arriving.
    const cell = row.first().locator('.tick');
    const t0 = await cell.textContent();
    await sleep(2100);
    assert.notEqual(await cell.textContent(), t0, 'time on page ticks');

    // The right-now panel groups by page.
    assert.match(await page.locator('.rn-list').innerText(), /\/p\/landing/);
  });

  test('the journey opens from the table and grows as the visitor navigates', async () => {
    await page.locator(`tr[data-visitor="${visitorId}"] .visitor-link`).click();
    const drawer = page.locator('.drawer');
    await drawer.waitFor(WAIT);
    const session = drawer.locator('.j-section').first().locator('.timeline > li');
    await session.first().waitFor(WAIT);
    assert.equal(await session.count(), 1);

    // A full navigation: the page closes its socket and the next page opens one.
    await visitor.click('#next');
    await visitor.waitForURL(/\/p\/next$/);
    await page.waitForFunction(() => document.querySelectorAll('.drawer .j-section:first-of-type .timeline > li').length === 2, null, WAIT);
    // A single-page-app navigation.
    await visitor.evaluate(() => {
      document.title = 'SPA step';
      history.pushState({}, '', '/p/spa-step');
    });
    await page.waitForFunction(() => document.querySelectorAll('.drawer .j-section:first-of-type .timeline > li').length === 3, null, WAIT);
    const urls = await session.evaluateAll((lis) => lis.map((li) => li.getAttribute('data-url')));
    assert.deepEqual(
      urls.map((u) => new URL(u).pathname),
      ['/p/landing', '/p/next', '/p/spa-step'],
    );
    // The earlier pages have durations; the current one ticks.
    assert.equal(await session.last().locator('.tick').count(), 1);

    // The live row follows.
    await page.waitForFunction((v) => /\/p\/spa-step/.test(document.querySelector(`tr[data-visitor="${v}"]`)?.textContent || ''), visitorId, WAIT);
    assert.match(await page.locator(`tr[data-visitor="${visitorId}"]`).innerText(), /\b3\b/);

    // A second tab of the same visitor: one row, two tabs, both in the journey.
    const second = await visitorCtx.newPage();
    await second.goto(`${pages.origin}/p/second-tab`);
    await page.waitForFunction(() => document.querySelectorAll('.drawer .j-section:first-of-type .timeline > li').length === 4, null, WAIT);
    assert.equal(await page.locator('tr[data-visitor]').count(), 1);
    await page.waitForFunction((v) => document.querySelector(`tr[data-visitor="${v}"] td:nth-child(5)`)?.textContent === '2', visitorId, WAIT);
    assert.equal(await drawer.locator('.tab-tag', { hasText: 'tab 2' }).count(), 1);
    await second.close();
    // The server sends the visitor's new state when one of its tabs closes: back to one tab.
    await page.waitForFunction((v) => document.querySelector(`tr[data-visitor="${v}"] td:nth-child(5)`)?.textContent === '1', visitorId, WAIT);
    // The source is the landing page's, not the current page's.
    assert.match(await page.locator(`tr[data-visitor="${visitorId}"] .c-source`).innerText(), /newsletter/);

    // Identify and track from the page: the row and the journey show them.
    await visitor.evaluate(() => {
      window.lookout('identify', 'user-7', { name: 'Ada Lovelace', plan: 'pro' });
      window.lookout('track', 'added_to_cart', { sku: 'A-113' });
    });
    await page.waitForFunction((v) => /user-7/.test(document.querySelector(`tr[data-visitor="${v}"]`)?.textContent || ''), visitorId, WAIT);
    await drawer.getByText('added_to_cart').waitFor(WAIT);
    await drawer.getByText('Ada Lovelace').waitFor(WAIT);

    // What visitors send is text, never markup.
    await visitor.evaluate(() => window.lookout('track', '<img src=x onerror="window.__pwned=1">', { note: '<b>bold</b>' }));
    await drawer.getByText('<img src=x onerror="window.__pwned=1">').waitFor(WAIT);
    assert.equal(await page.locator('main img, .drawer img, .drawer b').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await shot(page, 'journey');

    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'detached', timeout: 5000 });
    await shot(page, 'live');
  });

  test('a message sent from the composer appears on the page and its click is counted', async () => {
    await page.locator(`tr[data-visitor="${visitorId}"] .visitor-link`).click();
    await page.getByRole('link', { name: 'Send a message' }).click();
    await page.getByRole('heading', { name: 'Send a message' }).waitFor(WAIT);
    assert.equal(await page.getByLabel('Visitor', { exact: true }).inputValue(), visitorId);
    await page.getByLabel('Title').fill('Hello from Lookout');
    await page.getByLabel('Body').fill('Spring offer: 10% off electric cars.');
    await page.getByText('Toast', { exact: true }).click();
    await page.getByLabel('Button label (optional)').fill('See the offer');
    await page.getByLabel('Button link').fill(`${pages.origin}/p/spa-step#offer`);
    // The preview shows the text as it will look.
    await page.locator('.preview').getByText('Spring offer: 10% off electric cars.').waitFor(WAIT);
    await shot(page, 'send');
    await page.getByRole('button', { name: 'Send message' }).click();

    const card = page.locator('.sent-card').first();
    await card.waitFor(WAIT);
    await page.waitForFunction(() => Number(document.querySelector('.sent-card [data-status="delivered"] dd')?.textContent) >= 1, null, WAIT);

    // The snippet renders it in a shadow root (Playwright's locators pierce open shadow roots).
    await visitor.getByText('Spring offer: 10% off electric cars.').waitFor(WAIT);
    await page.waitForFunction(() => Number(document.querySelector('.sent-card [data-status="shown"] dd')?.textContent) >= 1, null, WAIT);
    await visitor.getByRole('link', { name: 'See the offer' }).click();
    await page.waitForFunction(() => Number(document.querySelector('.sent-card [data-status="clicked"] dd')?.textContent) === 1, null, WAIT);
    await shot(page, 'send-outcome');

    // The messages list agrees, and so does the visitor's journey.
    await page.getByRole('link', { name: 'Messages', exact: true }).click();
    const row = page.locator('tr[data-message]').first();
    await row.waitFor(WAIT);
    await page.waitForFunction(() => document.querySelector('tr[data-message] td[data-count="clicked"]')?.textContent === '1', null, WAIT);
    assert.match(await row.innerText(), /Hello from Lookout/);
    await shot(page, 'messages');
  });

  test('a banner sent to a segment reaches the live visitors in it', async () => {
    // The visitor identified as plan "pro" before the segment existed.
    const segment = await page.evaluate(async (site) => {
      const r = await fetch(`/api/sites/${site}/segments`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Pro plan', conditions: [{ type: 'trait', key: 'plan', value: 'pro' }] }),
      });
      return { status: r.status, body: await r.json() };
    }, siteId);
    assert.equal(segment.status, 201, JSON.stringify(segment.body));
    await page.goto(`${server.url}/#/sites/${siteId}/send`);
    await page.getByText('A segment', { exact: true }).click();
    const select = page.getByLabel('Segment', { exact: true });
    await select.locator(`option[value="${segment.body.id}"]`).waitFor({ state: 'attached', ...WAIT });
    await select.selectOption(segment.body.id);
    await page.getByLabel('Title').fill('Pro members: free delivery');
    await page.getByText('Banner', { exact: true }).click();
    await page.locator('.preview .pv-banner').getByText('Pro members: free delivery').waitFor(WAIT);
    await page.getByRole('button', { name: 'Send message' }).click();
    const card = page.locator('.sent-card', { hasText: 'Pro members: free delivery' });
    await card.waitFor(WAIT);
    await shot(page, 'send-segment');
    assert.ok(Number(await card.locator('[data-status="delivered"] dd').textContent()) >= 1, await card.innerText());
    await visitor.getByText('Pro members: free delivery').waitFor(WAIT);
  });

  test('history filters page views and events, and finds a visitor by user id', async () => {
    await page.goto(`${server.url}/#/sites/${siteId}/history`);
    const rows = page.locator('.card table tbody tr');
    await rows.first().waitFor(WAIT);
    // Writes are batched; give them a moment to land.
    await page.waitForFunction(() => document.querySelectorAll('.card table tbody tr').length >= 3, null, WAIT).catch(async () => {
      await page.reload();
      await page.waitForFunction(() => document.querySelectorAll('.card table tbody tr').length >= 3, null, WAIT);
    });
    await shot(page, 'history');

    await page.getByLabel('URL starts with').fill(`${pages.origin}/p/next`);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/url=/);
    await page.waitForFunction(() => document.querySelectorAll('.card table tbody tr').length === 1, null, WAIT);
    assert.match(await rows.first().innerText(), /Next page/);

    await page.getByRole('tab', { name: 'Events' }).click();
    await page.getByLabel('Event name').fill('added_to_cart');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/name=added_to_cart/);
    await page.waitForFunction(() => !document.querySelector('main .loading') && document.querySelectorAll('.card table tbody tr').length === 1, null, WAIT);
    assert.match(await rows.first().innerText(), /A-113/);
    await shot(page, 'history-events');

    // Cursor pagination: 60 events, 50 a page.
    await visitor.evaluate(async () => {
      for (let i = 0; i < 60; i++) {
        window.lookout('track', 'scroll_depth', { i });
        await new Promise((r) => setTimeout(r, 70));
      }
    });
    await page.getByLabel('Event name').fill('scroll_depth');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/name=scroll_depth/);
    await page.waitForFunction(() => document.querySelectorAll('.card table tbody tr').length === 50, null, WAIT);
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.card table tbody tr').length === 60, null, WAIT);
    await page.getByText('That is all.').waitFor(WAIT);
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => JSON.parse(tr.querySelector('.props').textContent).i));
    assert.deepEqual(shown, Array.from({ length: 60 }, (_, k) => 59 - k), 'newest first, no duplicate or gap across pages');

    // A time range that ended before anything happened shows the empty state.
    await page.getByLabel('To', { exact: true }).fill('2020-01-01T00:00');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('Nothing recorded for these filters').waitFor(WAIT);

    await page.getByLabel('Find a visitor by user id or visitor id').fill('user-7');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.locator(`.drawer[data-visitor="${visitorId}"]`).waitFor(WAIT);
    await page.keyboard.press('Escape');
  });

  test('stats show totals, a chart, top pages and referrers', async () => {
    await page.goto(`${server.url}/#/sites/${siteId}/stats`);
    await page.getByTestId('stat-pageviews').waitFor(WAIT);
    assert.ok(Number((await page.getByTestId('stat-pageviews').textContent()).replace(/\D/g, '')) >= 3);
    assert.ok(Number((await page.getByTestId('stat-visitors').textContent()).replace(/\D/g, '')) >= 1);
    await page.locator('.chart canvas').waitFor(WAIT);
    assert.match(await page.locator('#top-pages-h').locator('xpath=../..').innerText(), /\/p\/landing/);
    await shot(page, 'stats');
    await page.getByText('7 d', { exact: true }).click();
    await page.waitForURL(/range=7d/);
    await page.locator('.chart canvas').waitFor(WAIT);
    assert.equal(await page.getByText('Daily', { exact: true }).locator('xpath=..').getAttribute('class'), 'seg seg-on');
  });

  test('settings add a viewer, create and revoke an API key', async () => {
    await signup(server, viewerEmail, PASSWORD);
    await page.goto(`${server.url}/#/sites/${siteId}/settings`);
    await page.getByRole('heading', { name: 'Members' }).waitFor(WAIT);
    const members = page.locator('#members-h').locator('xpath=../..');
    await members.getByLabel('Email').fill(viewerEmail);
    await members.getByLabel('Role', { exact: true }).selectOption('viewer');
    await members.getByRole('button', { name: 'Add member' }).click();
    await page.locator(`tr[data-email="${viewerEmail}"]`).waitFor(WAIT);

    await page.getByLabel('Key name').fill('CRM sync');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByTestId('new-key').textContent({ timeout: 15_000 })).trim();
    assert.ok(key.length >= 16, 'the key is shown once');
    await shot(page, 'api-key');
    await page.getByRole('button', { name: 'Done' }).click();
    // The key works for this site's API.
    const res = await api(server, 'GET', `/api/sites/${siteId}/live`, { token: key });
    assert.equal(res.status, 200);
    await shot(page, 'settings', { fullPage: true });

    await page.getByRole('row', { name: /CRM sync/ }).getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.getByText('No keys yet.').waitFor(WAIT);
    assert.equal((await api(server, 'GET', `/api/sites/${siteId}/live`, { token: key })).status, 401);
  });

  test('a viewer reads but cannot send, and the server refuses them too', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const vp = await ctx.newPage();
    watch(vp, 'viewer');
    await vp.goto(server.url + '/');
    await vp.getByLabel('Email').fill(viewerEmail);
    await vp.getByLabel('Password').fill(PASSWORD);
    await vp.getByRole('button', { name: 'Sign in' }).click();
    await vp.locator('tr[data-visitor]').first().waitFor(WAIT);
    assert.equal(await vp.getByRole('link', { name: 'Send', exact: true }).count(), 0, 'no Send in the navigation');

    await vp.locator('tr[data-visitor] .visitor-link').first().click();
    await vp.locator('.drawer .timeline').first().waitFor(WAIT);
    assert.equal(await vp.getByRole('link', { name: 'Send a message' }).count(), 0);

    await vp.goto(`${server.url}/#/sites/${siteId}/send`);
    await vp.getByText('Viewers cannot send messages').waitFor(WAIT);
    await shot(vp, 'viewer-send');

    await vp.goto(`${server.url}/#/sites/${siteId}/settings`);
    await vp.getByRole('heading', { name: 'Members' }).waitFor(WAIT);
    assert.ok(await vp.getByLabel('Site name').isDisabled());
    assert.equal(await vp.getByRole('button', { name: 'Save changes' }).count(), 0);
    assert.equal(await vp.getByRole('button', { name: /Delete site/ }).count(), 0);
    await shot(vp, 'viewer-settings');

    // The server refuses a viewer's send on the admin socket and on the REST API.
    const reply = await vp.evaluate(
      (site) =>
        new Promise((resolve) => {
          const ws = new WebSocket(`ws://${location.host}/ws/admin?site=${site}`);
          const t = setTimeout(() => resolve({ timeout: true }), 10_000);
          ws.onmessage = (e) => {
            const f = JSON.parse(e.data);
            if (f.type === 'snapshot') {
              ws.send(JSON.stringify({ type: 'send', ref: 'v1', to: { all: true }, message: { title: 'x', body: 'y', style: 'toast', cta: null, data: {} } }));
            } else if (f.type === 'error' || f.type === 'sent') {
              clearTimeout(t);
              ws.close();
              resolve(f);
            }
          };
          ws.onclose = (e) => resolve({ closed: e.code });
        }),
      siteId,
    );
    assert.equal(reply.type, 'error', JSON.stringify(reply));
    assert.equal(reply.code, 'forbidden');
    assert.equal(reply.ref, 'v1');
    const rest = await vp.evaluate(async (site) => {
      const r = await fetch(`/api/sites/${site}/messages`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: { all: true }, message: { title: 'x', body: 'y', style: 'toast', cta: null, data: {} } }),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    }, siteId);
    assert.equal(rest.status, 403, JSON.stringify(rest));
    assert.equal(rest.body.error.code, 'forbidden');
    await ctx.close();
  });

  test('on a phone-sized screen the views fit and the menu opens', async () => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await adminCtx.storageState(), hasTouch: true, isMobile: true });
    const mp = await ctx.newPage();
    watch(mp, 'phone');
    for (const view of ['live', 'send', 'segments', 'campaigns', 'history', 'stats', 'settings']) {
      await mp.goto(`${server.url}/#/sites/${siteId}/${view}`);
      await mp.locator('main h1').first().waitFor(WAIT);
      await sleep(300);
      const overflow = await mp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${view} overflows the screen by ${overflow}px`);
      await shot(mp, `phone-${view}`);
    }
    await mp.goto(`${server.url}/#/sites/${siteId}/live`);
    await mp.locator('tr[data-visitor] .visitor-link').first().click();
    await mp.locator('.drawer .timeline').first().waitFor(WAIT);
    await shot(mp, 'phone-journey');
    await mp.getByRole('button', { name: 'Close journey' }).click();
    await mp.getByRole('button', { name: 'Open menu' }).click();
    await mp.getByRole('link', { name: 'History' }).click();
    await mp.getByRole('heading', { name: 'History' }).waitFor(WAIT);
    await ctx.close();
  });

  test('the live view reconnects by itself after the server restarts', async () => {
    await page.goto(`${server.url}/#/sites/${siteId}/live`);
    await page.locator(`tr[data-visitor="${visitorId}"]`).waitFor(WAIT);
    await page.evaluate(() => {
      window.__statuses = [];
      const el = document.querySelector('main .conn');
      new MutationObserver(() => window.__statuses.push(el.getAttribute('data-status'))).observe(el, { attributes: true, attributeFilter: ['data-status'] });
    });
    await server.restart();
    await page.waitForFunction(() => window.__statuses.includes('reconnecting') && window.__statuses.at(-1) === 'open', null, { timeout: 40_000 });
    await shot(page, 'reconnected');
    // A fresh snapshot: the visitor's page reconnected too.
    await page.locator(`tr[data-visitor="${visitorId}"]`).waitFor({ timeout: 40_000 });
  });

  test('an ended session leads back to sign-in, and a wrong password is explained', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, storageState: await adminCtx.storageState() });
    const p = await ctx.newPage();
    watch(p, 'expired');
    await p.goto(`${server.url}/#/sites/${siteId}/history`);
    await p.getByRole('heading', { name: 'History' }).waitFor(WAIT);
    await ctx.clearCookies();
    await p.getByRole('link', { name: 'Stats' }).click();
    await p.getByRole('heading', { name: 'Sign in to Lookout' }).waitFor(WAIT);
    assert.match(p.url(), /#\/login\?next=/);
    await p.getByLabel('Email').fill(adminEmail);
    await p.getByLabel('Password').fill('not the password');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('alert').getByText('That email and password do not match an account.').waitFor(WAIT);
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByRole('button', { name: 'Sign in' }).click();
    // Back where the session ended.
    await p.getByRole('heading', { name: 'Stats' }).waitFor(WAIT);
    await shot(p, 'after-relogin');
    await ctx.close();
  });

  test('a site is deleted only after typing its name', async () => {
    const other = await page.evaluate(async () => {
      const r = await fetch('/api/sites', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Old blog', domains: [] }),
      });
      return r.json();
    });
    await page.goto(`${server.url}/#/sites/${other.id}/settings`);
    await page.getByRole('button', { name: 'Delete site…' }).click();
    const dialog = page.getByRole('dialog');
    const confirm = dialog.getByRole('button', { name: 'Delete site' });
    assert.ok(await confirm.isDisabled());
    await dialog.getByLabel('Type “Old blog”').fill('Old blo');
    assert.ok(await confirm.isDisabled());
    await dialog.getByLabel('Type “Old blog”').fill('Old blog');
    await confirm.click();
    await page.waitForURL(new RegExp(`#/sites/${siteId}/live`));
    const sites = await page.evaluate(async () => (await (await fetch('/api/sites')).json()).items.map((x) => x.name));
    assert.deepEqual(sites, ['Acme shop']);
  });

  test('logging out ends the session', async () => {
    await page.goto(`${server.url}/#/sites/${siteId}/live`);
    await page.getByRole('button', { name: adminEmail }).click();
    await page.getByRole('menuitem', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Lookout' }).waitFor(WAIT);
    const me = await page.evaluate(async () => (await fetch('/api/me', { credentials: 'same-origin' })).status);
    assert.equal(me, 401);
  });

  test('no CSP violation or script error happened', () => {
    assert.deepEqual(problems, []);
  });
});
