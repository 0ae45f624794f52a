// Measures how smoothly the Live view keeps up with a busy site: a real lookout server, N visitor
// sockets (default 500) and a stream of page views, events and identifies (default 50/s), with
// the dashboard open in Chromium. Prints frame timings taken inside the page
// (requestAnimationFrame gaps and Long Tasks). A measurement, not a pass/fail test.
//
//   node dashboard/bench/live-table.mjs [--visitors 500] [--rate 50] [--seconds 20]
//
// Needs target/debug/lookout (or LOOKOUT_BIN), Chromium at /usr/bin/chromium, and
// `npm ci` in tests/browser/ (for ws and playwright-core).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(new URL('../../tests/browser/package.json', import.meta.url));
const WebSocket = require('ws');
const { LookoutServer, signup, createSite, launchBrowser, sleep } = await import(new URL('../../tests/browser/lib/server.mjs', import.meta.url));

const { values: opt } = parseArgs({
  options: {
    visitors: { type: 'string', default: '500' },
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
  },
});
const VISITORS = Number(opt.visitors);
const RATE = Number(opt.rate);
const SECONDS = Number(opt.seconds);

const rid = (n = 16) => Array.from({ length: n }, () => 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'[Math.floor(Math.random() * 62)]).join('');
const PAGES = ['/', '/cars/tesla-model-3', '/cars/vw-id3', '/finder/', '/finder/electric', '/pricing', '/contact', '/blog/ev-range'];
const UAS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0',
];
const pick = (a) => a[Math.floor(Math.random() * a.length)];

function stats(gaps) {
  const s = [...gaps].sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : 0);
  return { frames: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.length ? s[s.length - 1] : 0, over33: s.filter((g) => g > 33.4).length, over50: s.filter((g) => g > 50).length };
}

/** Stops a CDP CPU profile and prints the page's self time by function (PROFILE=1|arrive). */
async function summarise(cdp) {
  const { profile } = await cdp.send('Profiler.stop');
  const self = new Map();
  const dt = profile.timeDeltas;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
    self.set(key, (self.get(key) || 0) + (dt[i] || 0) / 1000);
  });
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${v.toFixed(0).padStart(7)} ms  ${k}`);
}

const server = await LookoutServer.start();
const sockets = [];
let browser;
try {
  const { token } = await signup(server);
  // No domains: the bench's visitor sockets come from Node, without an Origin header.
  const site = await createSite(server, token, { name: 'Bench', domains: [] });

  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.addCookies([{ name: 'lk_session', value: token, url: server.url, httpOnly: true, sameSite: 'Strict' }]);
  const page = await ctx.newPage();
  await page.goto(`${server.url}/#/sites/${site.id}/live`);
  await page.locator('main .conn[data-status="open"]').waitFor({ timeout: 20_000 });

  // Frame recorder inside the page: every rAF gap and every long task.
  await page.evaluate(() => {
    const w = window;
    w.__bench = { gaps: [], long: [], on: false };
    let last = performance.now();
    const loop = (t) => {
      if (w.__bench.on) w.__bench.gaps.push(t - last);
      last = t;
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
    try {
      new PerformanceObserver((l) => {
        if (w.__bench.on) for (const e of l.getEntries()) w.__bench.long.push(e.duration);
      }).observe({ type: 'longtask', buffered: false });
    } catch {}
  });
  const phase = async (fn) => {
    await page.evaluate(() => {
      window.__bench.gaps = [];
      window.__bench.long = [];
      window.__bench.on = true;
    });
    const t0 = Date.now();
    await fn();
    const ms = Date.now() - t0;
    const r = await page.evaluate(() => {
      window.__bench.on = false;
      return { gaps: window.__bench.gaps, long: window.__bench.long };
    });
    return { ms, ...stats(r.gaps), longTasks: r.long.length, longTaskMs: Math.round(r.long.reduce((a, b) => a + b, 0)), longestTask: Math.round(Math.max(0, ...r.long)) };
  };

  const cdpA = process.env.PROFILE === 'arrive' ? await ctx.newCDPSession(page) : null;
  if (cdpA) {
    await cdpA.send('Profiler.enable');
    await cdpA.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdpA.send('Profiler.start');
  }
  // 1. N visitors arrive (in bursts of 25 every 50 ms).
  const visitors = [];
  const arrive = await phase(async () => {
    for (let i = 0; i < VISITORS; i++) {
      const v = { visitor: rid(), session: rid(), tab: rid(12), path: pick(PAGES) };
      const ws = new WebSocket(`${server.wsUrl}/ws/visitor?site=${site.key}`, {
        headers: { 'user-agent': pick(UAS) },
        localAddress: `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`,
      });
      v.ws = ws;
      sockets.push(ws);
      visitors.push(v);
      ws.on('open', () =>
        ws.send(
          JSON.stringify({
            type: 'hello', visitor: v.visitor, session: v.session, tab: v.tab,
            url: `https://bench.example${v.path}${i % 5 === 0 ? '?utm_source=newsletter' : ''}`,
            title: `Page ${v.path}`, referrer: i % 3 ? 'https://www.google.com/' : '', lang: 'en', screen: '1280x720', tz: 'UTC', resume: false,
          }),
        ),
      );
      ws.on('error', () => {});
      if (i % 25 === 24) await sleep(50);
    }
    await page.waitForFunction((n) => document.querySelector('[data-testid="live-count"]')?.textContent.replace(/\D/g, '') === String(n), VISITORS, { timeout: 60_000 });
  });
  const rows = await page.locator('tr[data-visitor]').count();

  if (cdpA) await summarise(cdpA);
  const cdp = process.env.PROFILE && !cdpA ? await ctx.newCDPSession(page) : null;
  if (cdp) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
  }
  // 2. RATE frames a second for SECONDS: page views (60%), events (30%), identifies (10%).
  let sent = 0;
  const stream = await phase(async () => {
    const end = Date.now() + SECONDS * 1000;
    const every = 1000 / RATE;
    let next = Date.now();
    while (Date.now() < end) {
      const v = pick(visitors);
      const r = Math.random();
      if (v.ws.readyState === 1) {
        if (r < 0.6) {
          v.path = pick(PAGES);
          v.ws.send(JSON.stringify({ type: 'page', url: `https://bench.example${v.path}`, title: `Page ${v.path}`, referrer: '' }));
        } else if (r < 0.9) {
          v.ws.send(JSON.stringify({ type: 'event', name: pick(['viewed_gallery', 'added_to_cart', 'started_finance']), props: { n: sent } }));
        } else {
          v.ws.send(JSON.stringify({ type: 'identify', user_id: 'user-' + v.visitor.slice(0, 5), traits: { plan: pick(['free', 'pro']) } }));
        }
        sent++;
      }
      next += every;
      await sleep(Math.max(0, next - Date.now()));
    }
    await sleep(500);
  });
  if (cdp) await summarise(cdp);
  const heap = await page.evaluate(() => (performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : null));

  const fmt = (p) =>
    `${p.frames} frames in ${(p.ms / 1000).toFixed(1)} s (${((p.frames * 1000) / p.ms).toFixed(1)} fps); rAF gap p50 ${p.p50.toFixed(1)} ms, p95 ${p.p95.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms, max ${p.max.toFixed(1)} ms; ` +
    `${p.over33} gaps > 33 ms, ${p.over50} > 50 ms; ${p.longTasks} long tasks (${p.longTaskMs} ms total, longest ${p.longestTask} ms)`;
  console.log(`Live view, ${VISITORS} visitors, Chromium ${browser.version()} headless, 1280x800`);
  console.log(`  arrival of ${VISITORS} visitors (${rows} rows in the DOM, the rest virtualised): ${fmt(arrive)}`);
  console.log(`  ${RATE} frames/s for ${SECONDS} s (${sent} sent): ${fmt(stream)}`);
  if (heap) console.log(`  JS heap used after the run: ${heap} MB`);
  console.log(JSON.stringify({ visitors: VISITORS, rate: RATE, seconds: SECONDS, arrive, stream, heapMB: heap }));
} finally {
  for (const ws of sockets) ws.terminate();
  await browser?.close();
  await server.dispose();
}
