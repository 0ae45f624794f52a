// The demo car-dealer shop (demo/): its files on their own, then as `lookout serve --demo`
// serves it, with the snippet reporting a visit through the car finder's pushState navigation,
// and the car dealer's targeting scenario: the third view of a Tesla Model 3 (the car's page, a
// deep link of the finder, a navigation inside it) brings a financing offer, and the financing
// page counts as its conversion.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { runInNewContext } from 'node:vm';
import { AdminSocket, LookoutServer, REPO, api, browserSkipReason, eventually, launchBrowser, sleep, visitorFrames } from './lib/server.mjs';

const DEMO = join(REPO, 'demo');
const TAG = '<script async src="/snippet.js" data-site="__LOOKOUT_SITE_KEY__"></script>';
const STUB = '<script>window.lookout=window.lookout||function(){(lookout.q=lookout.q||[]).push(arguments)}</script>';

async function files(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else out.push(path);
  }
  return out;
}

const jsonLd = (html) =>
  [...html.matchAll(/<script type="application\/ld\+json">([\s\S]*?)<\/script>/g)].map((m) => JSON.parse(m[1]));

describe('demo shop files', () => {
  let all;
  let html;
  before(async () => {
    all = await files(DEMO);
    html = await Promise.all(all.filter((f) => f.endsWith('.html')).map(async (f) => [relative(DEMO, f), await readFile(f, 'utf8')]));
  });

  test('has the pages the demo needs', () => {
    const names = html.map(([name]) => name);
    for (const name of ['index.html', 'tesla.html', 'bmw.html', 'toyota.html', 'financing.html', 'finder/index.html',
      'cars/tesla-model-3.html', 'cars/tesla-model-y.html', 'cars/bmw-i4.html', 'cars/toyota-corolla.html']) {
      assert.ok(names.includes(name), `demo/${name} is missing`);
    }
    assert.ok(all.some((f) => f.endsWith('style.css')));
  });

  test("the finder's stock (cars.js) agrees with the JSON-LD of each car's page, and loads before the app", async () => {
    const window = {};
    runInNewContext(await readFile(join(DEMO, 'cars.js'), 'utf8'), { window });
    const stock = window.northgateStock;
    assert.ok(stock && stock.cars.length >= 9, 'window.northgateStock');
    const pages = Object.fromEntries(html);
    for (const car of stock.cars) {
      const text = pages[`cars/${car.slug}.html`];
      assert.ok(text, `demo/cars/${car.slug}.html`);
      const [ld] = jsonLd(text);
      assert.equal(car.url, `/demo/cars/${car.slug}.html`);
      assert.deepEqual(
        [ld.brand.name, ld.model, ld.name, ld.sku, ld.offers.price, ld.bodyType],
        [car.brand_name, car.model, car.name, car.sku, car.price, car.body],
        car.slug,
      );
    }
    // A plain script before the app, so that the finder's first view (and its JSON-LD) is
    // rendered while the page is parsed, before the snippet reads it.
    const finder = pages['finder/index.html'];
    const scripts = [...finder.matchAll(/<script src="([^"]+)"><\/script>/g)].map((m) => m[1]);
    assert.ok(scripts.indexOf('/demo/cars.js') >= 0 && scripts.indexOf('/demo/cars.js') < scripts.indexOf('/demo/finder/finder.js'), scripts.join());
  });

  test('every page carries the queue stub and the snippet tag with the site key placeholder', () => {
    for (const [name, text] of html) {
      assert.ok(text.includes(STUB), `${name}: queue stub`);
      assert.ok(text.includes(TAG), `${name}: snippet tag`);
      assert.ok(text.indexOf(STUB) < text.indexOf(TAG), `${name}: stub before the snippet`);
    }
  });

  test('detail pages describe their car with schema.org JSON-LD', () => {
    const details = html.filter(([name]) => name.startsWith('cars/'));
    assert.ok(details.length >= 4);
    const skus = new Set();
    for (const [name, text] of details) {
      const [car, ...more] = jsonLd(text);
      assert.equal(more.length, 0, name);
      assert.equal(car['@context'], 'https://schema.org');
      assert.equal(car['@type'], 'Car');
      for (const field of ['name', 'brand', 'model', 'vehicleModelDate', 'sku', 'offers']) assert.ok(car[field], `${name}: ${field}`);
      assert.equal(typeof car.offers.price, 'number');
      assert.equal(car.offers.priceCurrency, 'USD');
      assert.ok(text.includes(`data-sku="${car.sku}"`), `${name}: a button tracks the sku`);
      skus.add(car.sku);
    }
    assert.equal(skus.size, details.length, 'skus are unique');
  });

  test('loads nothing from another host', async () => {
    for (const file of all.filter((f) => /\.(html|css|js)$/.test(f))) {
      const text = (await readFile(file, 'utf8')).replace(/<script type="application\/ld\+json">[\s\S]*?<\/script>/g, '');
      // Only the namespace of inline SVG may name another host.
      const external = [...text.matchAll(/(?:src|href)\s*=\s*["']?(?:https?:)?\/\/[^"'\s>]+|url\(\s*["']?(?:https?:)?\/\/[^)]+\)|@import/g)];
      assert.deepEqual(external.map((m) => m[0]), [], relative(DEMO, file));
    }
  });
});

const skip = browserSkipReason();
if (skip) console.log(`# skipping the demo browser test: ${skip}`);

describe('demo shop served by lookout serve --demo', { skip: skip || false }, () => {
  let server;
  let browser;
  let token;
  let site;

  before(async () => {
    server = await LookoutServer.start({ extraArgs: ['--demo'] });
    const login = await api(server, 'POST', '/api/auth/login', { body: { email: 'demo@lookout.test', password: 'lookout-demo' } });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    token = login.body.token;
    const sites = await api(server, 'GET', '/api/sites', { token });
    site = sites.body.items.find((s) => s.name === 'Demo car shop') || sites.body.items[0];
    assert.ok(site, JSON.stringify(sites.body));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  test('serves the pages with the demo key and deep links of the finder', async () => {
    for (const path of ['/demo/', '/demo/tesla.html', '/demo/cars/tesla-model-3.html', '/demo/financing.html', '/demo/finder/tesla-model-3']) {
      const res = await fetch(server.url + path);
      assert.equal(res.status, 200, path);
      const text = await res.text();
      assert.ok(!text.includes('__LOOKOUT_SITE_KEY__'), `${path}: placeholder replaced`);
      assert.ok(text.includes(`data-site="${site.key}"`), `${path}: the demo site's key`);
      if (path.startsWith('/demo/finder/')) assert.ok(text.includes('/demo/finder/finder.js'), 'the finder app answers its deep links');
    }
    const css = await fetch(`${server.url}/demo/style.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type'), /text\/css/);
  });

  test('a visit through the finder is reported live, pushState navigations included', async () => {
    const admin = await AdminSocket.connect(server, site.id, token);
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${server.url}/demo/finder/`);
      const first = await admin.waitFor((f) => f.type === 'pageview' && f.url === `${server.url}/demo/finder/`, { what: 'finder pageview' });
      await page.getByRole('heading', { name: 'Tesla Model 3' }).getByRole('link').click();
      await page.waitForURL(`${server.url}/demo/finder/tesla-model-3`);
      const pv = await admin.waitFor((f) => f.type === 'pageview' && f.url === `${server.url}/demo/finder/tesla-model-3`, { what: 'pushState pageview' });
      assert.equal(pv.visitor, first.visitor);
      assert.match(pv.title, /Tesla Model 3/);
      await page.getByRole('button', { name: 'Add to favorites' }).click();
      await admin.waitFor((f) => f.type === 'event' && f.name === 'add_to_favorites' && f.props?.sku === 'TES-M3-2024', { what: 'favorite event' });
      await page.goBack();
      await admin.waitFor((f) => f.type === 'pageview' && f.url === `${server.url}/demo/finder/` && f !== first, { what: 'popstate pageview' });
      const items = await eventually(async () => {
        const res = await api(server, 'GET', `/api/sites/${site.id}/pageviews?visitor=${first.visitor}`, { token });
        return res.body?.items?.length >= 3 && res.body.items;
      }, { what: 'three stored page views' });
      assert.deepEqual(items.map((i) => new URL(i.url).pathname), ['/demo/finder/', '/demo/finder/tesla-model-3', '/demo/finder/']);
      assert.deepEqual(errors, []);
    } finally {
      admin.close();
      await context.close();
    }
  });

  test('car dealer: the third Tesla Model 3 view brings the financing modal, and the financing page converts', async () => {
    const seg = await api(server, 'POST', `/api/sites/${site.id}/segments`, {
      token,
      body: { name: 'Model 3 shoppers', conditions: [{ type: 'item', brand: 'Tesla', model: 'Model 3', min: 3 }] },
    });
    assert.equal(seg.status, 201, JSON.stringify(seg.body));
    const camp = await api(server, 'POST', `/api/sites/${site.id}/campaigns`, {
      token,
      body: {
        name: 'Model 3 financing',
        enabled: true,
        priority: 10,
        trigger: { type: 'segment_entered', segment: seg.body.id },
        message: {
          title: 'Financing for your {{model}}',
          body: 'The {{brand}} {{model}} from {{price}} {{currency}}: 0.9% APR over 72 months.',
          style: 'modal',
          cta: { label: 'See my rate', url: `${server.url}/demo/financing.html?sku=TES-M3-2024` },
        },
        frequency: { per_visitor: 1 },
        goal: { type: 'pageview', match: 'prefix', value: '/demo/financing' },
        goal_window_seconds: 3600,
      },
    });
    assert.equal(camp.status, 201, JSON.stringify(camp.body));

    const admin = await AdminSocket.connect(server, site.id, token);
    const context = await browser.newContext();
    const page = await context.newPage();
    const frames = visitorFrames(page);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const url = (path) => `${server.url}${path}`;
    const view = async (path, go) => {
      const from = admin.mark();
      await go();
      return admin.waitFor((f) => f.type === 'pageview' && f.url === url(path), { from, what: `pageview of ${path}` });
    };
    const noOfferYet = async (what) => {
      await sleep(1000); // what the server does on a page view, it does at once
      assert.deepEqual(frames.received.filter((f) => f.type === 'message'), [], `no message after ${what}`);
      assert.equal(await page.getByRole('dialog').count(), 0, `no dialog after ${what}`);
    };
    try {
      // 1: the car's own page.
      const first = await view('/demo/cars/tesla-model-3.html', () => page.goto(url('/demo/cars/tesla-model-3.html')));
      const visitor = first.visitor;
      await noOfferYet('the first view');
      // 2: a deep link of the finder (a full page load; the app renders while the page is parsed).
      await view('/demo/finder/tesla-model-3', () => page.goto(url('/demo/finder/tesla-model-3')));
      await noOfferYet('the second view');
      // The finder's list of Teslas is not a view of the car.
      await view('/demo/finder/?brand=tesla', () => page.goto(url('/demo/finder/?brand=tesla')));
      await noOfferYet('the list');
      // 3: a pushState navigation of the finder to the car.
      await view('/demo/finder/tesla-model-3', () => page.getByRole('heading', { name: 'Tesla Model 3' }).getByRole('link').click());

      const dialog = page.getByRole('dialog', { name: 'Financing for your Model 3' });
      await dialog.waitFor({ timeout: 10_000 });
      assert.equal(await dialog.getByText('The Tesla Model 3 from 42490 USD: 0.9% APR over 72 months.').count(), 1);
      assert.equal(frames.received.filter((f) => f.type === 'message').length, 1);
      if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/lookout-demo-financing.png`, animations: 'disabled' });

      // Each view of the car sent the same item, read from the page's JSON-LD.
      const model3 = { type: 'Car', brand: 'Tesla', model: 'Model 3', name: 'Tesla Model 3', category: 'Sedan', sku: 'TES-M3-2024', price: 42490, currency: 'USD' };
      const views = frames.sent.filter((f) => (f.type === 'hello' && !f.resume) || f.type === 'page');
      assert.deepEqual(
        views.map((f) => [new URL(f.url).pathname + new URL(f.url).search, f.item || null]),
        [
          ['/demo/cars/tesla-model-3.html', model3],
          ['/demo/finder/tesla-model-3', model3],
          ['/demo/finder/?brand=tesla', null],
          ['/demo/finder/tesla-model-3', model3],
        ],
      );
      const live = await api(server, 'GET', `/api/sites/${site.id}/live`, { token });
      const me = live.body.visitors.find((v) => v.visitor === visitor);
      assert.deepEqual(me.segments, [seg.body.id]);
      assert.deepEqual(me.interests, {
        brands: { Tesla: 3 },
        models: { 'Model 3': 3 },
        categories: { Sedan: 3 },
        min_price: 42490,
        max_price: 42490,
        items: 3,
      });

      // The call to action leads to the financing page: the campaign's goal.
      await view('/demo/financing.html?sku=TES-M3-2024', () => dialog.getByRole('link', { name: 'See my rate' }).click());
      const stats = await eventually(async () => {
        const res = await api(server, 'GET', `/api/sites/${site.id}/campaigns/${camp.body.id}`, { token });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.stats.converted === 1 && res.body.stats.clicked === 1 && res.body.stats;
      }, { what: 'the conversion in the campaign stats' });
      assert.equal(stats.triggered, 1);
      assert.equal(stats.sent, 1);
      assert.ok(stats.shown >= 1, JSON.stringify(stats));
      assert.deepEqual(errors, []);
    } finally {
      admin.close();
      await context.close();
    }
  });
});
