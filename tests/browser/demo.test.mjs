// The demo car-dealer shop (demo/): its files on their own, then as `lookout serve --demo`
// serves it, with the snippet reporting a visit through the car finder's pushState navigation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { AdminSocket, LookoutServer, REPO, api, browserSkipReason, eventually, launchBrowser } from './lib/server.mjs';

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
});
