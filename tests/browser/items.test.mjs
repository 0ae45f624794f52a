// Interest profiles without configuration: the snippet reads the schema.org data of a page
// (JSON-LD Product/Car/Vehicle/Offer, data-lookout-* attributes) and sends it as `item` with each
// page view. Pages of many shapes on another origin (http://localhost:PORT) in Chromium against
// the real server: the exact `item` the page sent (the socket's frames, seen by the browser),
// then what the server made of it (GET /live `interests`, the admin `segments` frame).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
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
  visitorFrames,
} from './lib/server.mjs';

const STUB = 'window.lookout=window.lookout||function(){(lookout.q=lookout.q||[]).push(arguments)}';
const ld = (value) => `<script type="application/ld+json">${typeof value == 'string' ? value : JSON.stringify(value, null, 2)}</script>`;

const TESLA_3 = {
  '@context': 'https://schema.org',
  '@type': 'Car',
  name: 'Tesla Model 3 Long Range',
  brand: { '@type': 'Brand', name: 'Tesla' },
  model: 'Model 3',
  bodyType: 'Sedan',
  vehicleModelDate: '2024',
  sku: 'TM3-LR',
  offers: [
    { '@type': 'Offer', price: '41990.00', priceCurrency: 'USD', availability: 'https://schema.org/InStock' },
    { '@type': 'Offer', price: 39990, priceCurrency: 'USD' },
  ],
};

/**
 * The pages: what goes into <head> after the snippet's tag (`head`), the <body>'s attributes and
 * content, and the item the snippet must send (null: no `item` at all).
 */
const CASES = {
  'car-brand-object-offers-array': {
    head: ld(TESLA_3),
    item: { type: 'Car', brand: 'Tesla', model: 'Model 3', name: 'Tesla Model 3 Long Range', category: 'Sedan', sku: 'TM3-LR', price: 41990, currency: 'USD' },
  },
  graph: {
    head: ld({
      '@context': 'https://schema.org',
      '@graph': [
        { '@type': 'WebPage', '@id': 'https://shop.test/bmw-i4#page', name: 'BMW i4 · Shop' },
        { '@type': 'BreadcrumbList', itemListElement: [{ '@type': 'ListItem', position: 1, name: 'BMW' }] },
        {
          '@type': ['Product', 'Vehicle'],
          name: 'BMW i4 eDrive40',
          brand: 'BMW',
          model: { '@type': 'ProductModel', name: 'i4' },
          category: 'Electric cars',
          sku: 4711,
          offers: { '@type': 'Offer', price: 57900, priceCurrency: 'EUR' },
        },
      ],
    }),
    item: { type: 'Product', brand: 'BMW', model: 'i4', name: 'BMW i4 eDrive40', category: 'Electric cars', sku: '4711', price: 57900, currency: 'EUR' },
  },
  'web-page-main-entity': {
    head: ld({
      '@context': 'https://schema.org',
      '@type': 'ItemPage',
      name: 'Tesla Model Y · Northgate Motors',
      mainEntity: { '@type': 'Car', name: 'Tesla Model Y Long Range', brand: 'Tesla', model: 'Model Y', bodyType: 'SUV', offers: { '@type': 'Offer', price: '47490', priceCurrency: 'USD' } },
    }),
    item: { type: 'Car', brand: 'Tesla', model: 'Model Y', name: 'Tesla Model Y Long Range', category: 'SUV', price: 47490, currency: 'USD' },
  },
  'product-low-price-top-level-array': {
    head: ld([
      { '@context': 'https://schema.org', '@type': 'Organization', name: 'Northgate Motors', brand: 'Not this one' },
      {
        '@context': 'https://schema.org',
        '@type': 'Product',
        name: 'Toyota RAV4 Hybrid',
        brand: { '@type': 'Brand', name: 'Toyota' },
        offers: { '@type': 'AggregateOffer', lowPrice: '34350', highPrice: '41000', priceCurrency: 'USD', offerCount: 4 },
      },
    ]),
    item: { type: 'Product', brand: 'Toyota', name: 'Toyota RAV4 Hybrid', price: 34350, currency: 'USD' },
  },
  'offer-item-offered': {
    head:
      ld({ '@context': 'https://schema.org', '@type': 'WebSite', name: 'Shop', url: 'https://shop.test/' }) +
      ld({
        '@context': 'https://schema.org',
        '@type': 'Offer',
        price: 23500,
        priceCurrency: 'USD',
        itemOffered: { '@type': 'https://schema.org/Car', name: 'Toyota Corolla', brand: 'Toyota', model: 'Corolla' },
      }),
    item: { type: 'Car', brand: 'Toyota', model: 'Corolla', name: 'Toyota Corolla', price: 23500, currency: 'USD' },
  },
  'data-lookout-override': {
    head: ld({ '@context': 'https://schema.org', '@type': 'Product', name: 'Demo listing', brand: 'Generic', model: 'Old model', offers: { price: 1, priceCurrency: 'USD' } }),
    bodyAttrs: 'data-lookout-brand="Tesla"',
    body: '<div data-lookout-item data-lookout-model="Model Y" data-lookout-price="47490" data-lookout-currency="EUR"><h1>Model Y</h1></div>',
    item: { type: 'Product', brand: 'Tesla', model: 'Model Y', name: 'Demo listing', price: 47490, currency: 'EUR' },
  },
  'data-lookout-only': {
    bodyAttrs: 'data-lookout-brand="Tesla" data-lookout-category="SUV"',
    body: '<p data-lookout-sku="TMY-2024">A page with attributes and no JSON-LD.</p>',
    item: { brand: 'Tesla', category: 'SUV', sku: 'TMY-2024' },
  },
  'malformed-then-valid': {
    head:
      ld('{ "@context": "https://schema.org", "@type": "Car", "brand": ') +
      ld({ '@context': 'https://schema.org', '@type': 'Car', brand: 'BMW', model: 'X5', offers: { '@type': 'Offer', price: -5, priceCurrency: 'USD' } }),
    item: { type: 'Car', brand: 'BMW', model: 'X5', currency: 'USD' },
  },
  'malformed-only': {
    head:
      ld('not json at all') +
      ld('null') +
      ld('"a string"') +
      ld({ '@type': 'Offer', price: 5, priceCurrency: 'USD' }) +
      ld({ '@type': 'WebSite', name: 'Shop' }),
    body: '<div data-lookout-price="free">No usable item here.</div>',
    item: null,
  },
  'long-texts': {
    head: ld({ '@type': 'Product', name: 'é'.repeat(300), brand: 'B'.repeat(250), model: '🚗'.repeat(120), sku: 'x'.repeat(199) + '€' }),
    // 200 characters and at most 200 UTF-8 bytes (the server's limit), whole characters only.
    item: { type: 'Product', brand: 'B'.repeat(200), model: '🚗'.repeat(50), name: 'é'.repeat(100), sku: 'x'.repeat(199) },
  },
  nothing: {
    body: '<p>No schema.org data on this page.</p>',
    item: null,
  },
};

function casePage(name, snippetOrigin, key) {
  const c = CASES[name];
  if (!c) return null;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Item ${name}</title>
<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); });
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + String(e.reason)); });
${STUB}
</script>
<script async src="${snippetOrigin}/snippet.js" data-site="${key}"></script>
${c.head || ''}
</head><body ${c.bodyAttrs || ''}>
<h1>${name}</h1>
${c.body || ''}
</body></html>`;
}

const skip = browserSkipReason();
if (skip) console.log(`# skipping the item browser tests: ${skip}`);

describe('schema.org items sent with page views', { skip: skip || false }, () => {
  let server;
  let pages;
  let browser;
  let admin;
  let token;
  let site;

  before(async () => {
    server = await LookoutServer.start();
    ({ token } = await signup(server));
    site = await createSite(server, token, { name: 'Items e2e', domains: ['localhost'] });
    pages = await PageServer.start((url) => {
      const [, kind, name] = url.pathname.split('/');
      if (kind === 'items') {
        const html = casePage(name, server.url, site.key);
        return html && { body: html };
      }
      if (kind === 'late') {
        // The snippet's tag first; the JSON-LD and the <body> only after a pause: the async
        // snippet has loaded and runs while the page is still being parsed.
        return {
          chunks: [
            `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Late</title><script async src="${server.url}/snippet.js" data-site="${site.key}"></script>`,
            // (Whether the snippet has already run, recorded before the JSON-LD is parsed.)
            `<script>window.__ranFirst = !!(window.lookout && window.lookout.lk)</script>` +
            `${ld({ '@context': 'https://schema.org', '@type': 'Car', brand: { '@type': 'Brand', name: 'Tesla' }, model: 'Model S', name: 'Tesla Model S' })}</head><body data-lookout-category="Sedan"><p>late</p></body></html>`,
          ],
          pauseMs: 1000,
        };
      }
      if (kind === 'spa') {
        return {
          body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SPA</title>
<script async src="${server.url}/snippet.js" data-site="${site.key}"></script>
<script type="application/ld+json" id="ld">${JSON.stringify(TESLA_3)}</script></head><body><div id="app">Model 3</div></body></html>`,
        };
      }
      return null;
    });
    browser = await launchBrowser();
    admin = await AdminSocket.connect(server, site.id, token);
  });

  after(async () => {
    admin?.close();
    await browser?.close();
    await pages?.close();
    await server?.dispose();
  });

  const at = (path) => `${pages.origin}${path}`;
  const pageviewOf = (url, visitor) => (f) => f.type === 'pageview' && f.url === url && (!visitor || f.visitor === visitor);
  const liveVisitor = async (visitor) => {
    const res = await api(server, 'GET', `/api/sites/${site.id}/live`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.visitors.find((v) => v.visitor === visitor);
  };

  /** Opens `path` in `context` (a new one when absent) and waits for its page view. */
  const open = async (path, context) => {
    context = context || (await browser.newContext());
    const page = await context.newPage();
    const frames = visitorFrames(page);
    const from = admin.mark();
    await page.goto(at(path));
    const pv = await admin.waitFor(pageviewOf(at(path)), { from, what: `pageview of ${path}` });
    // (The browser may report the frames it sent a little after the server has seen them.)
    await eventually(() => frames.sent.some((f) => f.type === 'hello'), { what: `the hello of ${path}` });
    return { context, page, frames, visitor: pv.visitor, session: pv.session };
  };

  for (const [name, c] of Object.entries(CASES)) {
    test(`${name}: the hello carries ${c.item ? 'the item' : 'no item'}`, async () => {
      const { context, page, frames, visitor } = await open(`/items/${name}`);
      const hello = frames.sent.find((f) => f.type === 'hello');
      assert.ok(hello, JSON.stringify(frames.sent));
      assert.equal(hello.resume, false);
      if (c.item) assert.deepEqual(hello.item, c.item);
      else assert.ok(!('item' in hello), `no item expected, got ${JSON.stringify(hello.item)}`);
      // The server took it (an item it refused would close the socket with 4400, and the
      // snippet would say hello again).
      await sleep(300);
      assert.equal(frames.sockets, 1, 'one socket: nothing was refused');
      assert.deepEqual(frames.closes, []);
      assert.deepEqual(await page.evaluate(() => window.__errors), []);
      const me = await liveVisitor(visitor);
      assert.ok(me, 'live');
      assert.equal(me.pageviews, 1);
      assert.equal(me.interests.items, c.item ? 1 : 0, JSON.stringify(me.interests));
      if (c.item?.brand) assert.deepEqual(me.interests.brands, { [c.item.brand]: 1 });
      if (c.item?.model) assert.deepEqual(me.interests.models, { [c.item.model]: 1 });
      if (c.item?.price != null) assert.deepEqual([me.interests.min_price, me.interests.max_price], [c.item.price, c.item.price]);
      await context.close();
    });
  }

  test('an async snippet that runs before the JSON-LD is parsed still reads it', async () => {
    const { context, page, frames } = await open('/late/page');
    assert.equal(await page.evaluate(() => window.__ranFirst), true, 'the snippet ran while the page was parsed');
    const hello = frames.sent.find((f) => f.type === 'hello');
    assert.deepEqual(hello.item, { type: 'Car', brand: 'Tesla', model: 'Model S', name: 'Tesla Model S', category: 'Sedan' });
    await context.close();
  });

  test('single-page app navigations send the item rendered for the new view, or none', async () => {
    const { context, page, frames, visitor } = await open('/spa/cars/model-3');
    assert.equal(frames.sent.find((f) => f.type === 'hello').item.model, 'Model 3');
    let from = admin.mark();
    // The router changes the URL, then renders the new view and its JSON-LD right after.
    await page.evaluate(() => {
      history.pushState({}, '', '/spa/cars/model-y');
      document.title = 'Model Y';
      document.getElementById('ld').textContent = JSON.stringify({
        '@context': 'https://schema.org',
        '@type': 'Car',
        brand: { '@type': 'Brand', name: 'Tesla' },
        model: 'Model Y',
        offers: { '@type': 'Offer', price: 47490, priceCurrency: 'USD' },
      });
    });
    await admin.waitFor(pageviewOf(at('/spa/cars/model-y'), visitor), { from, what: 'pushState pageview' });
    await eventually(() => frames.sent.some((f) => f.type === 'page' && f.url === at('/spa/cars/model-y')), { what: 'page frame' });
    const modelY = frames.sent.find((f) => f.type === 'page' && f.url === at('/spa/cars/model-y'));
    assert.deepEqual(modelY.item, { type: 'Car', brand: 'Tesla', model: 'Model Y', price: 47490, currency: 'USD' });

    from = admin.mark();
    await page.evaluate(() => {
      history.pushState({}, '', '/spa/cars');
      document.getElementById('ld').remove();
    });
    await admin.waitFor(pageviewOf(at('/spa/cars'), visitor), { from, what: 'list pageview' });
    await eventually(() => frames.sent.some((f) => f.type === 'page' && f.url === at('/spa/cars')), { what: 'list page frame' });
    assert.ok(!('item' in frames.sent.find((f) => f.type === 'page' && f.url === at('/spa/cars'))), 'the list has no item');

    const me = await eventually(async () => {
      const v = await liveVisitor(visitor);
      return v?.pageviews === 3 && v;
    }, { what: 'three page views live' });
    assert.deepEqual(me.interests.models, { 'Model 3': 1, 'Model Y': 1 });
    assert.deepEqual(me.interests.brands, { Tesla: 2 });
    assert.deepEqual([me.interests.min_price, me.interests.max_price, me.interests.items], [41990, 47490, 2]);
    await context.close();
  });

  test("a visitor's interests add up over its page views and a segment on items follows them", async () => {
    const seg = await api(server, 'POST', `/api/sites/${site.id}/segments`, {
      token,
      body: { name: 'Tesla fans', conditions: [{ type: 'item', brand: 'Tesla', min: 2 }] },
    });
    assert.equal(seg.status, 201, JSON.stringify(seg.body));
    const from = admin.mark();
    const first = await open('/items/car-brand-object-offers-array');
    const { visitor, context } = first;
    await first.page.close();
    const second = await open('/items/graph', context);
    assert.equal(second.visitor, visitor, 'the same visitor');
    await second.page.close();
    const third = await open('/items/data-lookout-override', context);
    assert.equal(third.visitor, visitor, 'the same visitor');
    const interests = {
      brands: { Tesla: 2, BMW: 1 },
      models: { 'Model 3': 1, i4: 1, 'Model Y': 1 },
      categories: { Sedan: 1, 'Electric cars': 1 },
      min_price: 41990,
      max_price: 57900,
      items: 3,
    };
    // The second Tesla: the admins see the visitor enter the segment, with its interests.
    const entered = await admin.waitFor((f) => f.type === 'segments' && f.visitor === visitor && f.segments.includes(seg.body.id), {
      from,
      what: 'segments frame',
    });
    assert.deepEqual(entered.interests, interests);
    const me = await liveVisitor(visitor);
    assert.deepEqual(me.interests, interests);
    assert.deepEqual(me.segments, [seg.body.id]);
    assert.equal(me.pageviews, 3);
    await context.close();
  });
});
