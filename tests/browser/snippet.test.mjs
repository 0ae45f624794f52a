// End-to-end tests of the snippet (snippet/dist/snippet.js and ui.js, as served by the real
// lookout binary) in Debian's Chromium. Test pages come from a small Node server on
// http://localhost:PORT, a different origin from the lookout server on 127.0.0.1, like a
// customer's site; what the snippet reports is checked on the admin socket and the REST API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  REPO,
  AdminSocket,
  LookoutServer,
  PageServer,
  api,
  browserSkipReason,
  createSite,
  eventually,
  launchBrowser,
  signup,
  sleep,
} from './lib/server.mjs';

const ID = /^[A-Za-z0-9_-]{8,64}$/;
const STUB = 'window.lookout=window.lookout||function(){(lookout.q=lookout.q||[]).push(arguments)}';

const headScripts = {
  // Calls made through the stub before the snippet has loaded.
  queue: `<script>lookout('track', 'before_load', { n: 1, kind: 'queued' }); lookout('identify', 'user-42', { plan: 'pro' });</script>`,
  // A page that shows messages itself.
  handler: `<script>window.__got = []; lookout('on', 'message', function (m) { window.__got.push(m); return false; });</script>`,
};

/**
 * A test page: /p/<anything>, titled after its path, linking to /p/next. `?site=` overrides the
 * key (an empty value drops the attribute), `?attrs=` adds attributes to the snippet's tag and
 * `?with=` adds one of `headScripts`. It records errors and the globals it had before the snippet.
 */
function testPage(url, snippetOrigin, defaultKey) {
  const key = url.searchParams.has('site') ? url.searchParams.get('site') : defaultKey;
  const attrs = url.searchParams.get('attrs') || '';
  const extra = headScripts[url.searchParams.get('with')] || '';
  const tag = `<script async src="${snippetOrigin}/snippet.js"${key ? ` data-site="${key}"` : ''} ${attrs}></script>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Page ${url.pathname}</title>
<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); });
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + String(e.reason)); });
${STUB}
window.__keys = Object.keys(window);
</script>
${extra}
${tag}
</head><body>
<h1>${url.pathname}</h1>
<p><a id="next" href="/p/next">Next page</a></p>
<button id="focus-me">A button of the page</button>
</body></html>`;
}

const skip = browserSkipReason();
if (skip) console.log(`# skipping the snippet browser tests: ${skip}`);

describe('snippet in a browser', { skip: skip || false }, () => {
  let server;
  let pages;
  let browser;
  let admin;
  let token;
  let site;

  before(async () => {
    server = await LookoutServer.start();
    ({ token } = await signup(server));
    site = await createSite(server, token, { name: 'Snippet e2e', domains: ['localhost'] });
    pages = await PageServer.start((url) => (url.pathname.startsWith('/p/') ? { body: testPage(url, server.url, site.key) } : null));
    browser = await launchBrowser();
    admin = await AdminSocket.connect(server, site.id, token);
  });

  after(async () => {
    admin?.close();
    await browser?.close();
    await pages?.close();
    if (server) {
      if (process.env.LOOKOUT_E2E_LOG_ON_END) console.log(server.log);
      await server.dispose();
    }
  });

  const newPage = async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    p.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
    return { context, page: p };
  };
  const at = (path) => `${pages.origin}${path}`;
  const pageviewOf = (url, visitor) => (f) => f.type === 'pageview' && f.url === url && (!visitor || f.visitor === visitor);
  const pageviews = async (visitor) => {
    const res = await api(server, 'GET', `/api/sites/${site.id}/pageviews?visitor=${encodeURIComponent(visitor)}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  };
  const cookieMap = async (context) => Object.fromEntries((await context.cookies(pages.origin)).map((c) => [c.name, c]));
  const send = async (visitor, message, ref) => {
    const from = admin.mark();
    admin.send({ type: 'send', ref, to: { visitor }, message });
    const sent = await admin.waitFor((f) => (f.type === 'sent' || f.type === 'error') && f.ref === ref, { from, what: `sent ${ref}` });
    assert.equal(sent.type, 'sent', JSON.stringify(sent));
    assert.ok(sent.delivered >= 1, `message ${ref} reached no tab: ${JSON.stringify(sent)}`);
    return sent;
  };
  const statusOf = (message, status) => (f) => f.type === 'message_status' && f.message === message && f.status === status;
  /** Opens a page and waits until its page view is on the admin socket; returns its visitor. */
  const open = async (path) => {
    const { context, page: p } = await newPage();
    const from = admin.mark();
    await p.goto(at(path));
    const url = at(path);
    const pv = await admin.waitFor(pageviewOf(url), { from, what: `pageview of ${url}` });
    return { context, page: p, visitor: pv.visitor, session: pv.session, tab: pv.tab, url };
  };

  test('sets lk_vid and lk_sid on the page origin and reports the first page view', async () => {
    const { context, page: p, visitor, session, tab, url } = await open('/p/first');
    const cookies = await cookieMap(context);
    assert.ok(cookies.lk_vid && cookies.lk_sid, `cookies: ${JSON.stringify(cookies)}`);
    for (const c of [cookies.lk_vid, cookies.lk_sid]) {
      assert.match(c.value, ID);
      assert.equal(c.domain, 'localhost', 'host-only cookie of the page, not of the lookout server');
      assert.equal(c.path, '/');
      assert.equal(c.sameSite, 'Lax');
      assert.equal(c.httpOnly, false);
    }
    const now = Date.now() / 1000;
    // Asked for two years; Chromium caps every cookie at 400 days.
    assert.ok(cookies.lk_vid.expires > now + 390 * 86400, 'lk_vid is long-lived');
    assert.ok(cookies.lk_sid.expires > now + 25 * 60 && cookies.lk_sid.expires < now + 31 * 60, 'lk_sid lives 30 minutes');
    assert.equal(visitor, cookies.lk_vid.value);
    assert.equal(session, cookies.lk_sid.value);
    assert.equal(tab, await p.evaluate(() => sessionStorage.getItem('lk_tid')));
    assert.match(tab, ID);
    // Nothing is set on the lookout server's origin.
    assert.deepEqual(await context.cookies(server.url), []);

    const pv = admin.frames.find(pageviewOf(url, visitor));
    assert.equal(pv.title, 'Page /p/first');
    await eventually(async () => (await pageviews(visitor)).some((v) => v.url === url), { what: 'stored page view' });
    assert.deepEqual(await p.evaluate(() => window.__errors), []);
    await context.close();
  });

  test('a full navigation keeps one visitor: joined once, no left, both page views stored', async () => {
    const from = admin.mark();
    const { context, page: p, visitor, session, url } = await open('/p/landing');
    const joined = await admin.waitFor((f) => f.type === 'joined' && f.visitor?.visitor === visitor, { from, what: 'joined' });
    assert.equal(joined.visitor.session, session);

    await Promise.all([p.waitForURL(at('/p/next')), p.click('#next')]);
    const pv = await admin.waitFor(pageviewOf(at('/p/next'), visitor), { from, what: 'pageview of /p/next' });
    assert.equal(pv.session, session, 'same session across a navigation');
    assert.equal(pv.referrer, url);
    // Let any grace period for the closed socket of the first page run out.
    await sleep(4000);
    assert.equal(admin.matching((f) => f.type === 'joined' && f.visitor?.visitor === visitor, from).length, 1, 'joined exactly once');
    assert.equal(admin.matching((f) => f.type === 'left' && f.visitor === visitor, from).length, 0, 'no left while navigating');

    const live = await api(server, 'GET', `/api/sites/${site.id}/live`, { token });
    assert.equal(live.status, 200);
    const me = live.body.visitors.filter((v) => v.visitor === visitor);
    assert.equal(me.length, 1, JSON.stringify(live.body));
    assert.equal(me[0].url, at('/p/next'));

    const items = await eventually(async () => {
      const items = await pageviews(visitor);
      return items.length >= 2 && items;
    }, { what: 'two stored page views' });
    assert.deepEqual(items.map((i) => i.url), [at('/p/next'), url], 'newest first, nothing else');
    assert.ok(items.every((i) => i.visitor === visitor && i.session === session));

    // Once the tab is gone for good, the visitor leaves.
    await context.close();
    await admin.waitFor((f) => f.type === 'left' && f.visitor === visitor, { from, timeoutMs: 45_000, what: 'left after closing' });
  });

  test('history navigations of a single-page app are reported once each', async () => {
    const { context, page: p, visitor, url } = await open('/p/spa');
    const from = admin.mark();
    await p.evaluate(() => {
      history.pushState({}, '', '/p/spa/cars?brand=tesla');
      document.title = 'Tesla cars';
    });
    const pv = await admin.waitFor(pageviewOf(at('/p/spa/cars?brand=tesla'), visitor), { from, what: 'pushState pageview' });
    assert.equal(pv.title, 'Tesla cars', 'the title set right after pushState');
    assert.equal(pv.referrer, url, 'referrer is the previous URL of the app');

    // Same URL again, or only the hash: no page view (the site did not ask for hash tracking).
    await p.evaluate(() => {
      history.replaceState({ x: 1 }, '', location.href);
      location.hash = 'specs';
    });
    await p.evaluate(() => history.back()); // back from #specs: the same page
    await p.evaluate(() => history.back()); // back to /p/spa: a popstate navigation
    await admin.waitFor(pageviewOf(url, visitor), { from, what: 'popstate pageview' });
    await sleep(500);
    assert.deepEqual(
      admin.matching((f) => f.type === 'pageview' && f.visitor === visitor, from).map((f) => f.url),
      [at('/p/spa/cars?brand=tesla'), url],
    );
    const items = await eventually(async () => {
      const items = await pageviews(visitor);
      return items.length >= 3 && items;
    }, { what: 'three stored page views' });
    assert.deepEqual(items.map((i) => i.url), [url, at('/p/spa/cars?brand=tesla'), url]);
    await context.close();
  });

  test('a frame that JSON cannot say is dropped without holding up the frames after it', async () => {
    const { context, page: p, visitor } = await open('/p/unsendable');
    const from = admin.mark();
    await p.evaluate(() => {
      lookout('track', 'unsendable', { n: 1n }); // a BigInt: JSON.stringify throws
      lookout('track', 'after_unsendable', { ok: true });
    });
    await admin.waitFor((f) => f.type === 'event' && f.visitor === visitor && f.name === 'after_unsendable', { from, what: 'the event after it' });
    assert.equal(admin.matching((f) => f.type === 'event' && f.name === 'unsendable', from).length, 0);
    assert.equal((await p.evaluate(() => lookout('_stats'))).queued, 0);
    assert.deepEqual(await p.evaluate(() => window.__errors), []);
    await context.close();
  });

  test('data-track-hash counts hash changes as page views', async () => {
    const { context, page: p, visitor } = await open('/p/hash?attrs=data-track-hash');
    const from = admin.mark();
    await p.evaluate(() => (location.hash = 'gallery'));
    await admin.waitFor(pageviewOf(at('/p/hash?attrs=data-track-hash#gallery'), visitor), { from, what: 'hash pageview' });
    await context.close();
  });

  test('a message is shown as text, never as HTML, and its call to action reports clicked', async () => {
    const { context, page: p, visitor } = await open('/p/message');
    await context.route('https://example.com/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>CTA target</title><p>target</p>' }),
    );
    const message = {
      title: '<img src=x onerror=window.__pwned=1>',
      body: '<b>x</b>',
      style: 'modal',
      cta: { label: 'Go', url: 'https://example.com/' },
      data: {},
    };
    const from = admin.mark();
    const sent = await send(visitor, message, 'r1');
    const dialog = p.getByRole('dialog');
    await dialog.waitFor({ timeout: 10_000 });
    await admin.waitFor(statusOf(sent.message, 'shown'), { from, what: 'shown' });

    const seen = await p.evaluate(() => {
      const host = document.querySelector('lookout-ui');
      const root = host && host.shadowRoot;
      const dialog = root && root.querySelector('[role=dialog]');
      const a = root && root.querySelector('a');
      return {
        host: !!host,
        shadowImgOrB: root ? root.querySelectorAll('img,b').length : -1,
        documentImgOrB: document.querySelectorAll('img,b').length,
        title: root && root.querySelector('h2')?.textContent,
        body: dialog && dialog.querySelector('p')?.textContent,
        ariaModal: dialog && dialog.getAttribute('aria-modal'),
        focusInside: !!(dialog && root.activeElement && dialog.contains(root.activeElement)) || root.activeElement === dialog,
        href: a && a.getAttribute('href'),
        rel: a && a.getAttribute('rel'),
        target: a && a.getAttribute('target'),
        closeLabel: root && root.querySelector('button')?.getAttribute('aria-label'),
      };
    });
    await sleep(300); // an injected <img src=x> would have errored by now
    assert.equal(await p.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(seen, {
      host: true,
      shadowImgOrB: 0,
      documentImgOrB: 0,
      title: message.title,
      body: message.body,
      ariaModal: 'true',
      focusInside: true,
      href: 'https://example.com/',
      rel: 'noopener',
      target: null,
      closeLabel: 'Close',
    });
    assert.equal(await dialog.getByText(message.title, { exact: true }).count(), 1);

    if (process.env.SCREENSHOT_DIR) await p.screenshot({ path: `${process.env.SCREENSHOT_DIR}/lookout-modal.png`, animations: 'disabled' });

    await Promise.all([p.waitForURL('https://example.com/'), dialog.getByRole('link', { name: 'Go' }).click()]);
    await admin.waitFor(statusOf(sent.message, 'clicked'), { from, what: 'clicked' });
    await context.close();
  });

  test('the display is keyboard accessible and reports dismissed', async () => {
    const { context, page: p, visitor } = await open('/p/keyboard');
    const from = admin.mark();
    await p.focus('#focus-me');
    const modal = await send(visitor, { title: 'Spring offer', body: 'Line one\nLine two', style: 'modal', cta: { label: 'See the offer', url: 'https://example.com/offer' }, data: {} }, 'k1');
    await p.getByRole('dialog').waitFor();
    const focused = () => p.evaluate(() => {
      const a = document.querySelector('lookout-ui').shadowRoot.activeElement;
      return a && (a.getAttribute('aria-label') || a.textContent);
    });
    // Tab goes round the dialog's two controls and never leaves it.
    const seen = [];
    for (let i = 0; i < 4; i++) {
      await p.keyboard.press('Tab');
      seen.push(await focused());
    }
    assert.deepEqual(seen, ['See the offer', 'Close', 'See the offer', 'Close']);
    await p.keyboard.press('Shift+Tab');
    assert.equal(await focused(), 'See the offer');
    await p.keyboard.press('Escape');
    await p.getByRole('dialog').waitFor({ state: 'detached' });
    await admin.waitFor(statusOf(modal.message, 'dismissed'), { from, what: 'dismissed by Escape' });
    assert.equal(await p.evaluate(() => document.activeElement?.id), 'focus-me', 'focus goes back where it was');

    const toast = await send(visitor, { title: 'Hello there', body: 'Need help choosing?', style: 'toast', cta: { label: 'Chat with us', url: at('/p/help') }, data: { k: 1 } }, 'k2');
    const status = p.getByRole('status');
    await status.waitFor();
    assert.equal(await status.getByRole('link', { name: 'Chat with us' }).getAttribute('href'), at('/p/help'));
    const banner = await send(visitor, { title: 'Free delivery this week', body: 'On every car ordered online.', style: 'banner', cta: null, data: {} }, 'k3');
    await p.getByText('Free delivery this week').waitFor();
    if (process.env.SCREENSHOT_DIR) await p.screenshot({ path: `${process.env.SCREENSHOT_DIR}/lookout-toast-banner.png`, animations: 'disabled' });
    await status.filter({ hasText: 'Hello there' }).getByRole('button', { name: 'Close' }).click();
    await admin.waitFor(statusOf(toast.message, 'dismissed'), { from, what: 'toast dismissed' });
    await admin.waitFor(statusOf(banner.message, 'shown'), { from, what: 'banner shown' });
    assert.equal(await p.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(await p.evaluate(() => window.__errors), []);
    await context.close();
  });

  test("a page's message handler returning false gets the message and nothing is displayed", async () => {
    const { context, page: p, visitor } = await open('/p/custom?with=handler');
    const from = admin.mark();
    const message = { title: 'Custom', body: 'Shown by the page', style: 'toast', cta: { label: 'See', url: 'https://example.com/x' }, data: { coupon: 'SPRING' } };
    const sent = await send(visitor, message, 'h1');
    const got = await eventually(() => p.evaluate(() => window.__got.length && window.__got), { what: 'handler call' });
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], { id: sent.message, ...message });
    await sleep(1000);
    assert.equal(await p.evaluate(() => document.querySelectorAll('lookout-ui').length), 0, 'nothing displayed');
    assert.equal(await p.evaluate(() => [...document.scripts].filter((s) => s.src.endsWith('/snippet/ui.js')).length), 0, 'display not even loaded');
    assert.equal(admin.matching(statusOf(sent.message, 'shown'), from).length, 0);
    // The page can still report what it did with it.
    await p.evaluate((id) => lookout('ack', id, 'shown'), sent.message);
    await admin.waitFor(statusOf(sent.message, 'shown'), { from, what: 'shown reported by the page' });
    await context.close();
  });

  test('calls made through the queue stub before the script loads are replayed in order', async () => {
    const from = admin.mark();
    const { context, page: p, visitor } = await open('/p/queued?with=queue');
    const event = await admin.waitFor((f) => f.type === 'event' && f.visitor === visitor && f.name === 'before_load', { from, what: 'queued event' });
    assert.deepEqual(event.props, { n: 1, kind: 'queued' });
    const identify = await admin.waitFor((f) => f.type === 'identify' && f.visitor === visitor, { from, what: 'queued identify' });
    assert.equal(identify.user_id, 'user-42');
    assert.deepEqual(identify.traits, { plan: 'pro' });
    assert.ok(admin.frames.indexOf(event) < admin.frames.indexOf(identify), 'replayed in order');
    assert.equal(await p.evaluate(() => typeof window.lookout === 'function' && window.lookout.q === undefined), true, 'the stub was replaced');

    await p.evaluate(() => lookout('track', 'add_to_favorites', { sku: 'TES-M3-2024' }));
    await admin.waitFor((f) => f.type === 'event' && f.visitor === visitor && f.name === 'add_to_favorites' && f.props?.sku === 'TES-M3-2024', { from, what: 'live event' });
    const events = await eventually(async () => {
      const res = await api(server, 'GET', `/api/sites/${site.id}/events?visitor=${encodeURIComponent(visitor)}`, { token });
      return res.status === 200 && res.body.items.length >= 2 && res.body.items;
    }, { what: 'stored events' });
    assert.deepEqual(events.map((e) => e.name).sort(), ['add_to_favorites', 'before_load']);
    await context.close();
  });

  test('with data-respect-dnt and Global Privacy Control the snippet does nothing', async () => {
    const { context, page: p } = await newPage();
    await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }));
    const from = admin.mark();
    const url = at('/p/private?attrs=data-respect-dnt');
    await p.goto(url);
    await p.waitForFunction(() => typeof window.lookout === 'function' && !window.lookout.q);
    await p.evaluate(() => lookout('track', 'should_not_arrive'));
    await sleep(1500);
    assert.deepEqual((await context.cookies(pages.origin)).map((c) => c.name), []);
    assert.equal(admin.matching((f) => f.url === url || f.name === 'should_not_arrive', from).length, 0);
    assert.deepEqual(await p.evaluate(() => window.__errors), []);
    await context.close();
  });

  test('never throws into the page, whatever the key or the calls', async () => {
    for (const query of ['?site=not%20a%20key!', '?site=', '?site=unknownkey123456', '?attrs=data-respect-dnt']) {
      const { context, page: p } = await newPage();
      await p.goto(at(`/p/errors${query}`));
      await p.waitForFunction(() => typeof window.lookout === 'function' && !window.lookout.q);
      await p.evaluate(() => {
        lookout();
        lookout('track');
        lookout('identify', null, 'x');
        lookout('on', 'message', 'not a function');
        lookout('page', { url: 'http://[bad' });
        lookout('nonsense', 1, 2, 3);
        lookout('_ui', null);
        history.pushState(null, '', '/p/errors/next');
      });
      await sleep(1500);
      assert.deepEqual(await p.evaluate(() => window.__errors), [], `errors with ${query}`);
      assert.deepEqual(await p.evaluate(() => Object.keys(window).filter((k) => k !== '__keys' && !window.__keys.includes(k))), [], 'no new globals');
      await context.close();
    }
  });

  // Last: it restarts the server.
  test('reconnects after a server restart and reports what happened meanwhile', async () => {
    const { context, page: p, visitor, url } = await open('/p/outage');
    await server.stop();
    admin.close();
    await sleep(1000);
    await p.evaluate(() => history.pushState({}, '', '/p/outage/during'));
    await sleep(500);
    await server.restart();
    admin = await AdminSocket.connect(server, site.id, token);
    await p.evaluate(() => history.pushState({}, '', '/p/outage/after'));
    // The back-off may wait up to a few seconds before trying again.
    const items = await eventually(async () => {
      const items = await pageviews(visitor);
      return items.some((i) => i.url === at('/p/outage/after')) && items;
    }, { timeoutMs: 45_000, intervalMs: 500, what: 'page view after the restart' });
    assert.deepEqual(items.map((i) => i.url), [at('/p/outage/after'), at('/p/outage/during'), url], 'nothing lost, nothing counted twice');
    const live = await api(server, 'GET', `/api/sites/${site.id}/live`, { token });
    assert.ok(live.body.visitors.some((v) => v.visitor === visitor && v.url === at('/p/outage/after')), JSON.stringify(live.body));
    assert.deepEqual(await p.evaluate(() => window.__errors), []);
    await context.close();
  });
});

// The same snippet against a socket scripted by the test (Playwright's routeWebSocket), for what
// the real server cannot be made to do on demand: replace ids, refuse or drop connections, send
// unsafe links. snippet.js and ui.js come from snippet/dist/ through a routed origin, so these
// tests need no lookout binary.
describe('snippet against a scripted socket', { skip: skip || false }, () => {
  const ORIGIN = 'http://lookout.test';
  const KEY = 'scriptedkey1';
  let pages;
  let browser;

  before(async () => {
    pages = await PageServer.start((url) => (url.pathname.startsWith('/p/') ? { body: testPage(url, ORIGIN, KEY) } : null));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await pages?.close();
  });

  /** A browser context whose lookout origin is scripted; `sock` records every connection. */
  const scripted = async () => {
    const context = await browser.newContext();
    await context.route(`${ORIGIN}/**`, async (route) => {
      const { pathname } = new URL(route.request().url());
      const file = { '/snippet.js': 'snippet.js', '/snippet/ui.js': 'ui.js' }[pathname];
      if (!file) return route.fulfill({ status: 404, body: 'not found' });
      route.fulfill({ status: 200, contentType: 'text/javascript', body: await readFile(join(REPO, 'snippet', 'dist', file)) });
    });
    const sock = {
      connections: [],
      refuse: false,
      ids: null, // ids the welcome answers with (default: the hello's own)
      get frames() {
        return this.connections.flatMap((c) => c.frames);
      },
      send(frame) {
        this.connections.at(-1).ws.send(JSON.stringify(frame));
      },
    };
    await context.routeWebSocket(/\/ws\/visitor/, (ws) => {
      const conn = { ws, url: ws.url(), frames: [] };
      sock.connections.push(conn);
      ws.onMessage((text) => {
        const frame = JSON.parse(text);
        conn.frames.push(frame);
        if (frame.type !== 'hello') return;
        if (sock.refuse) return ws.close({ code: 1013, reason: 'try again later' });
        ws.send(JSON.stringify({ type: 'welcome', ...(sock.ids || { visitor: frame.visitor, session: frame.session, tab: frame.tab }) }));
      });
    });
    const page = await context.newPage();
    return { context, page, sock };
  };

  const waitUntil = (fn, what, timeoutMs = 10_000) => eventually(fn, { what, timeoutMs, intervalMs: 50 });

  test('connects to ws(s)://ORIGIN/ws/visitor?site=KEY and says hello with the page', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/hello?x=1#top`);
    const hello = await waitUntil(() => sock.frames.find((f) => f.type === 'hello'), 'hello');
    assert.equal(sock.connections[0].url, `ws://lookout.test/ws/visitor?site=${KEY}`);
    assert.deepEqual(Object.keys(hello).sort(), ['lang', 'referrer', 'resume', 'screen', 'session', 'tab', 'title', 'type', 'tz', 'url', 'visitor']);
    assert.equal(hello.url, `${pages.origin}/p/hello?x=1`, 'without the hash');
    assert.equal(hello.title, 'Page /p/hello');
    assert.equal(hello.resume, false);
    assert.match(hello.screen, /^\d+x\d+$/);
    for (const id of [hello.visitor, hello.session, hello.tab]) assert.match(id, ID);
    assert.equal(new Set([hello.visitor, hello.session, hello.tab]).size, 3);
    await context.close();
  });

  test('adopts the ids of the welcome', async () => {
    const { context, page: p, sock } = await scripted();
    sock.ids = { visitor: 'serverVisitor_0001', session: 'serverSession_0001', tab: 'serverTab_0001' };
    await p.goto(`${pages.origin}/p/ids`);
    await waitUntil(() => sock.frames.length, 'hello');
    await waitUntil(async () => (await p.evaluate(() => document.cookie)).includes('serverVisitor_0001'), 'adopted visitor cookie');
    const cookies = Object.fromEntries((await context.cookies(pages.origin)).map((c) => [c.name, c.value]));
    assert.equal(cookies.lk_vid, 'serverVisitor_0001');
    assert.equal(cookies.lk_sid, 'serverSession_0001');
    assert.equal(await p.evaluate(() => sessionStorage.getItem('lk_tid')), 'serverTab_0001');
    // The next page of the same tab says hello with them.
    await p.click('#next');
    await waitUntil(() => sock.connections.length === 2 && sock.connections[1].frames[0], 'second hello');
    const hello = sock.connections[1].frames[0];
    assert.deepEqual([hello.visitor, hello.session, hello.tab, hello.resume], ['serverVisitor_0001', 'serverSession_0001', 'serverTab_0001', false]);
    await context.close();
  });

  test('reconnects with resume, queues while disconnected and flushes in order after the welcome', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/drop`);
    await waitUntil(() => sock.frames.length, 'hello');
    await p.evaluate(() => lookout('_stats').connected || new Promise((r) => setTimeout(r, 300)));
    sock.refuse = true;
    sock.connections[0].ws.close({ code: 1001, reason: 'going away' });
    await waitUntil(() => sock.connections.length >= 2, 'a reconnection attempt');
    await p.evaluate(() => {
      lookout('track', 'during_outage', { n: 1 });
      history.pushState({}, '', '/p/drop/later');
      document.title = 'Later';
    });
    await sleep(200);
    await p.evaluate(() => {
      for (let i = 0; i < 250; i++) lookout('track', 'burst', { i });
    });
    const stats = await p.evaluate(() => lookout('_stats'));
    assert.equal(stats.connected, false);
    assert.equal(stats.queued, 200, 'the queue is bounded');
    assert.equal(stats.dropped, 52, 'the oldest frames went first');
    sock.refuse = false;
    // The connection that is welcomed: a new one, or one that opened just before and says hello
    // now (the refused ones carry only their hello).
    const conn = await waitUntil(() => sock.connections.slice(1).find((c) => c.frames.length >= 201), 'flush', 45_000);
    const [hello, ...rest] = conn.frames;
    assert.equal(hello.type, 'hello');
    assert.equal(hello.resume, true, 'a reconnection of the same page');
    assert.equal(hello.url, `${pages.origin}/p/drop`, 'the hello repeats what the server knew');
    assert.deepEqual(rest.map((f) => f.props.i), Array.from({ length: 200 }, (_, i) => i + 50));
    // The tab id survives; nothing was counted twice.
    assert.equal(hello.tab, sock.connections[0].frames[0].tab);
    assert.equal((await p.evaluate(() => lookout('_stats'))).queued, 0);
    await context.close();
  });

  test('a page view made while disconnected is sent after the hello of the reconnection', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/spa-drop`);
    await waitUntil(() => sock.frames.length, 'hello');
    sock.refuse = true;
    sock.connections[0].ws.close({ code: 1001 });
    await waitUntil(() => sock.connections.length >= 2, 'a reconnection attempt');
    await p.evaluate(() => history.pushState({}, '', '/p/spa-drop/next'));
    await sleep(200);
    sock.refuse = false;
    const conn = await waitUntil(() => sock.connections.at(-1).frames.length >= 2 && sock.connections.at(-1), 'flush', 45_000);
    assert.deepEqual(conn.frames.map((f) => [f.type, f.url, f.resume]), [
      ['hello', `${pages.origin}/p/spa-drop`, true],
      ['page', `${pages.origin}/p/spa-drop/next`, undefined],
    ]);
    assert.equal(conn.frames[1].referrer, `${pages.origin}/p/spa-drop`);
    await context.close();
  });

  test('stops trying after 4403 (this site may not connect)', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/forbidden`);
    await waitUntil(() => sock.frames.length, 'hello');
    sock.connections[0].ws.close({ code: 4403, reason: 'forbidden' });
    await sleep(2500);
    assert.equal(sock.connections.length, 1);
    assert.deepEqual(await p.evaluate(() => window.__errors), []);
    await context.close();
  });

  test('starts a new session once lk_sid has expired, and says hello again with it', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/session`);
    const first = await waitUntil(() => sock.frames.find((f) => f.type === 'hello'), 'hello');
    await sleep(200);
    // 30 minutes without activity: the browser drops the cookie.
    await context.clearCookies({ name: 'lk_sid' });
    await p.evaluate(() => lookout('track', 'back_again'));
    const conn = await waitUntil(() => sock.connections.length === 2 && sock.connections[1].frames.length >= 2 && sock.connections[1], 'new hello');
    const [hello, event] = conn.frames;
    assert.notEqual(hello.session, first.session);
    assert.match(hello.session, ID);
    assert.equal(hello.visitor, first.visitor);
    assert.equal(event.name, 'back_again');
    const cookies = Object.fromEntries((await context.cookies(pages.origin)).map((c) => [c.name, c.value]));
    assert.equal(cookies.lk_sid, hello.session);
    await context.close();
  });

  test('shows a message once, as text, with only http(s) links', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/links`);
    await waitUntil(() => sock.frames.length, 'hello');
    await sleep(100);
    const message = (id, url) => ({ type: 'message', id, title: `Title ${id}`, body: 'Body', style: 'toast', cta: { label: `Link ${id}`, url }, data: {} });
    sock.send(message('js', 'javascript:window.__pwned=1'));
    sock.send(message('data', 'data:text/html,<script>window.__pwned=1</script>'));
    sock.send(message('https', 'https://example.com/ok'));
    sock.send(message('https', 'https://example.com/ok')); // the same message again
    await p.getByText('Title https').waitFor();
    await waitUntil(() => sock.frames.filter((f) => f.type === 'ack' && f.status === 'shown').length === 3, 'three shown acks');
    assert.equal(await p.getByRole('status').count(), 3, 'one toast per message id');
    assert.deepEqual(await p.getByRole('link').evaluateAll((as) => as.map((a) => a.href)), [`${pages.origin}/p/next`, 'https://example.com/ok']);
    assert.equal(await p.evaluate(() => window.__pwned), undefined);
    if (process.env.SCREENSHOT_DIR) await p.screenshot({ path: `${process.env.SCREENSHOT_DIR}/lookout-toasts.png`, animations: 'disabled' });
    await context.close();
  });

  test('a host page that restyles everything does not reach into the display', async () => {
    const { context, page: p, sock } = await scripted();
    await p.goto(`${pages.origin}/p/hostile`);
    await p.addStyleTag({ content: '* { color: red !important; font-family: serif !important; display: inline !important; } lookout-ui { display: none !important; opacity: 0 !important; transform: scale(0) !important; }' });
    await waitUntil(() => sock.frames.length, 'hello');
    await sleep(100);
    sock.send({ type: 'message', id: 'm1', title: 'Styled by Lookout', body: 'Body', style: 'modal', cta: null, data: {} });
    const title = p.getByText('Styled by Lookout');
    await title.waitFor();
    assert.ok(await title.isVisible());
    const style = await title.evaluate((el) => {
      const s = getComputedStyle(el);
      return { color: s.color, font: s.fontFamily, display: s.display };
    });
    assert.notEqual(style.color, 'rgb(255, 0, 0)');
    assert.doesNotMatch(style.font, /^serif/);
    assert.equal(style.display, 'block');
    await context.close();
  });

  test('Do Not Track, with data-respect-dnt, means no socket and no cookie', async () => {
    const { context, page: p, sock } = await scripted();
    await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' }));
    await p.goto(`${pages.origin}/p/dnt?attrs=data-respect-dnt`);
    await p.waitForFunction(() => typeof window.lookout === 'function' && !window.lookout.q);
    await sleep(1000);
    assert.equal(sock.connections.length, 0);
    assert.deepEqual(await context.cookies(pages.origin), []);
    // Without the attribute the same browser is tracked.
    await p.goto(`${pages.origin}/p/dnt`);
    await waitUntil(() => sock.connections.length === 1, 'a connection without data-respect-dnt');
    await context.close();
  });
});
