// A stand-in for the lookout server, for working on the dashboard without building the Rust
// binary: serves dist/ under the real CSP and fakes the REST API and the admin socket with
// simulated visitors. Not a test oracle: the end-to-end tests run against the real binary.
//
//   npm run build && node dev/mock-server.mjs [port] [visitors]
import { createServer } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const PORT = Number(process.argv[2] || 8090);
const N = Number(process.argv[3] || 40);
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const id = (n = 12) => randomBytes(n).toString('base64url').slice(0, n);
const now = () => new Date().toISOString();
const pick = (a) => a[Math.floor(Math.random() * a.length)];

const accounts = new Map([['demo@lookout.test', { id: 'acc_demo', email: 'demo@lookout.test', password: 'lookout-demo', created_at: now() }]]);
const sessions = new Map();
const site = { id: 'site_demo', name: 'Demo car shop', key: 'key_demo_123', domains: [], created_at: now() };
const members = [{ account: 'acc_demo', email: 'demo@lookout.test', role: 'admin' }];
const keys = [];
const messages = [];
const pageviews = [];
const events = [];
const admins = new Set();

const PAGES = [
  ['/demo/', 'Demo car shop — Home'],
  ['/demo/cars/tesla-model-3', 'Tesla Model 3 · Demo car shop'],
  ['/demo/cars/vw-id3', 'Volkswagen ID.3 · Demo car shop'],
  ['/demo/finder/', 'Find your car'],
  ['/demo/finder/electric', 'Electric cars'],
  ['/demo/pricing', 'Financing and prices'],
  ['/demo/contact', 'Contact a dealer'],
];
const REFS = ['', '', 'https://www.google.com/', 'https://news.ycombinator.com/', 'https://duckduckgo.com/'];
const DEV = [
  ['desktop', 'Chrome', 'macOS'],
  ['desktop', 'Firefox', 'Windows'],
  ['mobile', 'Safari', 'iOS'],
  ['mobile', 'Chrome', 'Android'],
  ['tablet', 'Safari', 'iPadOS'],
];
const live = new Map();

function broadcast(f) {
  const s = JSON.stringify(f);
  for (const ws of admins) if (ws.readyState === 1) ws.send(s);
}
function newVisitor() {
  const [path, title] = pick(PAGES);
  const [device, browser, os] = pick(DEV);
  const utm = Math.random() < 0.2 ? '?utm_source=newsletter&utm_campaign=spring' : '';
  const t = new Date(Date.now() - Math.random() * 600e3).toISOString();
  const v = {
    visitor: id(16), session: id(16), user_id: Math.random() < 0.25 ? 'user-' + Math.floor(Math.random() * 900 + 100) : null,
    traits: {}, url: 'https://shop.example.com' + path + utm, title, referrer: pick(REFS),
    tabs: [], first_seen: t, session_started: t, pageviews: 1 + Math.floor(Math.random() * 6), device, browser, os,
  };
  if (v.user_id) v.traits = { name: pick(['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Linus T.']), plan: pick(['free', 'pro']) };
  v.tabs = [{ tab: id(10), url: v.url, title, since: new Date(Date.now() - Math.random() * 120e3).toISOString() }];
  live.set(v.visitor, v);
  pageviews.unshift({ id: id(), visitor: v.visitor, session: v.session, tab: v.tabs[0].tab, url: v.url, title, referrer: v.referrer, at: v.tabs[0].since });
  return v;
}
for (let i = 0; i < N; i++) newVisitor();

setInterval(() => {
  const r = Math.random();
  const vs = [...live.values()];
  if (r < 0.1 || !vs.length) broadcast({ type: 'joined', visitor: newVisitor() });
  else if (r < 0.17 && vs.length > 5) {
    const v = pick(vs);
    live.delete(v.visitor);
    broadcast({ type: 'left', visitor: v.visitor });
  } else if (r < 0.75) {
    const v = pick(vs);
    const [path, title] = pick(PAGES);
    const tab = v.tabs[0].tab;
    v.url = 'https://shop.example.com' + path;
    v.title = title;
    v.pageviews++;
    v.tabs = [{ tab, url: v.url, title, since: now() }];
    const pv = { id: id(), visitor: v.visitor, session: v.session, tab, url: v.url, title, referrer: '', at: now() };
    pageviews.unshift(pv);
    broadcast({ type: 'pageview', ...pv });
  } else {
    const v = pick(vs);
    const e = { id: id(), visitor: v.visitor, name: pick(['viewed_gallery', 'added_to_cart', 'started_finance', 'clicked_phone']), props: { car: pick(['model-3', 'id3']) }, at: now() };
    events.unshift(e);
    broadcast({ type: 'event', ...e });
  }
}, 400);

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
const err = (res, status, code, message) => send(res, status, { error: { code, message } });
function cookieAccount(req) {
  const m = /(?:^|;\s*)lk_session=([^;]+)/.exec(req.headers.cookie || '');
  return m ? sessions.get(m[1]) : null;
}
async function body(req) {
  let s = '';
  for await (const c of req) s += c;
  try {
    return s ? JSON.parse(s) : {};
  } catch {
    return null;
  }
}
function page(list, url) {
  const limit = Number(url.searchParams.get('limit') || 100);
  const start = Number(url.searchParams.get('cursor') || 0);
  const items = list.slice(start, start + limit);
  return { items, next_cursor: start + limit < list.length ? String(start + limit) : null };
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (!p.startsWith('/api/')) {
    let f = join(dist, p === '/' ? 'index.html' : p);
    if (!f.startsWith(dist) || !existsSync(f) || extname(f) === '') f = join(dist, 'index.html');
    const type = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' }[extname(f)] || 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-security-policy': CSP });
    return res.end(readFileSync(f));
  }
  await new Promise((r) => setTimeout(r, 80));
  if (p === '/api/auth/signup' || p === '/api/auth/login') {
    const b = await body(req);
    if (!b || !b.email) return err(res, 400, 'invalid_json', 'Malformed body.');
    let acc = accounts.get(b.email);
    if (p.endsWith('signup')) {
      if (acc) return err(res, 422, 'email_taken', 'An account with this email exists.');
      acc = { id: 'acc_' + id(6), email: b.email, password: b.password, created_at: now() };
      accounts.set(b.email, acc);
    } else if (!acc || acc.password !== b.password) return err(res, 401, 'invalid_credentials', 'Wrong email or password.');
    const tok = id(24);
    sessions.set(tok, acc);
    return send(res, p.endsWith('signup') ? 201 : 200, { token: tok, account: { id: acc.id, email: acc.email, created_at: acc.created_at } }, { 'set-cookie': `lk_session=${tok}; HttpOnly; SameSite=Strict; Path=/` });
  }
  const acc = cookieAccount(req);
  if (!acc) return err(res, 401, 'unauthorized', 'Sign in first.');
  if (p === '/api/auth/logout') return send(res, 204, undefined, { 'set-cookie': 'lk_session=; Max-Age=0; Path=/' });
  if (p === '/api/me') return send(res, 200, { id: acc.id, email: acc.email, created_at: acc.created_at });
  const mem = members.find((m) => m.account === acc.id);
  if (p === '/api/sites' && req.method === 'GET') return send(res, 200, { items: mem ? [{ ...site, role: mem.role }] : [] });
  if (p === '/api/sites' && req.method === 'POST') return err(res, 422, 'not_in_mock', 'The mock has one site.');
  const base = '/api/sites/' + site.id;
  if (!p.startsWith(base) || !mem) return err(res, 404, 'not_found', 'No such site.');
  const rest = p.slice(base.length);
  const admin = mem.role === 'admin';
  const visitorF = url.searchParams.get('visitor');
  if (rest === '' && req.method === 'PATCH') {
    if (!admin) return err(res, 403, 'forbidden', 'Viewers cannot change settings.');
    Object.assign(site, await body(req));
    return send(res, 200, site);
  }
  if (rest === '/members' && req.method === 'GET') return send(res, 200, { items: members });
  if (rest === '/members' && req.method === 'POST') {
    const b = await body(req);
    const a = accounts.get(b.email);
    if (!a) return err(res, 404, 'account_not_found', 'No account has this email.');
    members.push({ account: a.id, email: a.email, role: b.role });
    return send(res, 201, members.at(-1));
  }
  if (rest === '/api-keys' && req.method === 'GET') return send(res, 200, { items: keys });
  if (rest === '/api-keys' && req.method === 'POST') {
    const k = { id: id(8), name: (await body(req)).name, created_at: now() };
    keys.push(k);
    return send(res, 201, { ...k, key: 'lk_' + id(32) });
  }
  if (rest.startsWith('/api-keys/') && req.method === 'DELETE') {
    keys.splice(keys.findIndex((k) => k.id === rest.slice(10)), 1);
    return send(res, 204);
  }
  // Targeting: read-only look-alikes (the real rules engine is the server's).
  const SEGMENT = {
    id: 'seg_1', name: 'Electric car shoppers', description: 'Viewed two electric cars this session', match: 'all',
    conditions: [{ type: 'item', brand: null, model: null, category: 'Electric cars', name: null, min_price: null, max_price: null, min: 2 }],
    live_members: 0, created_at: site.created_at, updated_at: site.created_at,
  };
  if (rest === '/segments' && req.method === 'GET') return send(res, 200, { items: [SEGMENT] });
  if (rest === '/segments/seg_1' && req.method === 'GET') return send(res, 200, SEGMENT);
  if (rest === '/segments/seg_1/members') return send(res, 200, { visitors: [] });
  if (rest === '/campaigns' && req.method === 'GET') return send(res, 200, { items: [] });
  if (rest.startsWith('/segments') || rest.startsWith('/campaigns')) return err(res, 422, 'not_in_mock', 'The mock does not keep targeting rules; use the real server.');
  if (rest === '/pageviews') {
    const u = url.searchParams.get('url');
    return send(res, 200, page(pageviews.filter((x) => (!visitorF || x.visitor === visitorF) && (!u || x.url.startsWith(u))), url));
  }
  if (rest === '/events') {
    const n = url.searchParams.get('name');
    return send(res, 200, page(events.filter((x) => (!visitorF || x.visitor === visitorF) && (!n || x.name === n)), url));
  }
  if (rest === '/visitors') {
    const u = url.searchParams.get('user_id');
    const list = [...live.values()].filter((v) => !u || v.user_id === u).map((v) => ({ visitor: v.visitor, user_id: v.user_id, traits: v.traits, first_seen: v.first_seen, last_seen: now(), sessions: 2, pageviews: v.pageviews, device: v.device, browser: v.browser, os: v.os }));
    return send(res, 200, page(list, url));
  }
  if (rest.startsWith('/visitors/')) {
    const v = live.get(decodeURIComponent(rest.slice(10)));
    if (!v) return err(res, 404, 'not_found', 'No such visitor.');
    return send(res, 200, {
      visitor: v.visitor, user_id: v.user_id, traits: v.traits, first_seen: v.first_seen, last_seen: now(), sessions: 3, pageviews: v.pageviews + 7, device: v.device, browser: v.browser, os: v.os,
      recent_sessions: [
        { session: v.session, started_at: v.session_started, last_seen: now(), pageviews: v.pageviews, referrer: v.referrer },
        { session: 'old1', started_at: new Date(Date.now() - 86400e3 * 2).toISOString(), last_seen: new Date(Date.now() - 86400e3 * 2 + 540e3).toISOString(), pageviews: 5, referrer: 'https://www.google.com/' },
        { session: 'old2', started_at: new Date(Date.now() - 86400e3 * 6).toISOString(), last_seen: new Date(Date.now() - 86400e3 * 6 + 120e3).toISOString(), pageviews: 2, referrer: '' },
      ],
    });
  }
  if (rest === '/stats') {
    const interval = url.searchParams.get('interval');
    const from = Date.parse(url.searchParams.get('from'));
    const to = Date.parse(url.searchParams.get('to'));
    const step = interval === 'day' ? 86400e3 : 3600e3;
    const series = [];
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
      const h = new Date(t).getUTCHours();
      const pv = Math.round((interval === 'day' ? 900 : 40) * (0.6 + Math.random() * 0.5) * (interval === 'day' ? 1 : 0.4 + Math.sin(((h - 6) / 24) * Math.PI * 2) * 0.4 + 0.4));
      series.push({ t: new Date(t).toISOString(), pageviews: pv, visitors: Math.round(pv * 0.38) });
    }
    const tot = series.reduce((a, s) => a + s.pageviews, 0);
    return send(res, 200, {
      pageviews: tot, visitors: Math.round(tot * 0.38), sessions: Math.round(tot * 0.45),
      top_pages: PAGES.map(([p], i) => ({ url: 'https://shop.example.com' + p, count: Math.round(tot / (i + 2)) })),
      top_referrers: [{ referrer: 'https://www.google.com/', count: 320 }, { referrer: 'https://news.ycombinator.com/item?id=1', count: 84 }, { referrer: 'https://duckduckgo.com/', count: 21 }],
      series,
    });
  }
  if (rest === '/messages' && req.method === 'GET') {
    const items = messages.filter((m) => !visitorF || (m.to.visitor === visitorF));
    return send(res, 200, { items: visitorF ? items.map((m) => ({ ...m, statuses: m.statuses })) : items });
  }
  if (rest === '/messages' && req.method === 'POST') {
    if (!admin) return err(res, 403, 'forbidden', 'Viewers cannot send messages.');
    const b = await body(req);
    return send(res, 202, deliver(b.to, b.message));
  }
  return err(res, 404, 'not_found', 'No such route in the mock.');
});

function deliver(to, message) {
  const targets = to.all ? [...live.values()] : to.visitor ? [live.get(to.visitor)].filter(Boolean) : [...live.values()].slice(0, 3);
  const m = { id: 'msg_' + id(8), to, message, created_at: now(), delivered: targets.length, shown: 0, clicked: 0, dismissed: 0, statuses: [] };
  messages.unshift(m);
  for (const v of targets) {
    setTimeout(() => {
      m.shown++;
      m.statuses.push({ status: 'shown', at: now() });
      broadcast({ type: 'message_status', message: m.id, visitor: v.visitor, status: 'shown', at: now() });
    }, 500 + Math.random() * 1500);
    setTimeout(() => {
      const s = Math.random() < 0.4 ? 'clicked' : 'dismissed';
      m[s]++;
      m.statuses.push({ status: s, at: now() });
      broadcast({ type: 'message_status', message: m.id, visitor: v.visitor, status: s, at: now() });
    }, 3000 + Math.random() * 4000);
  }
  return { id: m.id, delivered: targets.length };
}

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, sock, head) => {
  const acc = cookieAccount(req);
  wss.handleUpgrade(req, sock, head, (ws) => {
    if (!acc) return ws.close(4401, 'unauthorized');
    const mem = members.find((m) => m.account === acc.id);
    admins.add(ws);
    ws.send(JSON.stringify({ type: 'snapshot', visitors: [...live.values()] }));
    ws.on('message', (d) => {
      const f = JSON.parse(d);
      if (f.type !== 'send') return;
      if (mem.role !== 'admin') return ws.send(JSON.stringify({ type: 'error', ref: f.ref, code: 'forbidden', message: 'Viewers cannot send messages.' }));
      const r = deliver(f.to, f.message);
      ws.send(JSON.stringify({ type: 'sent', ref: f.ref, message: r.id, delivered: r.delivered }));
    });
    ws.on('close', () => admins.delete(ws));
  });
});
server.listen(PORT, '127.0.0.1', () => console.log(`mock lookout on http://127.0.0.1:${PORT} (demo@lookout.test / lookout-demo)`));
