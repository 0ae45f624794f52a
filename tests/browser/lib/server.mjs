// Helpers shared by the browser end-to-end tests.
//
// - `LookoutServer`: spawns the real `lookout` binary (LOOKOUT_BIN, or target/debug/lookout of this
//   repository) on a free port of 127.0.0.1 with a fresh SQLite database in a temporary
//   directory, waits for /healthz, and can stop (SIGTERM) and restart it on the same port and
//   database.
// - REST helpers: `api`, `signup`, `createSite`.
// - `AdminSocket`: a /ws/admin client that authenticates, collects every frame and waits for a
//   frame matching a predicate.
// - `PageServer`: a small HTTP server for test pages on another origin (http://localhost:PORT),
//   optionally streaming a page in chunks with pauses.
// - `visitorFrames`: the frames a page sends and receives on its /ws/visitor sockets.
// - `launchBrowser` / `browserSkipReason`: Debian's Chromium through playwright-core; never
//   downloads a browser.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Why the browser tests cannot run here, or null. With CI set, a missing browser is an error. */
export function browserSkipReason() {
  if (existsSync(CHROMIUM)) return null;
  const reason = `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI && process.env.CI !== 'false') throw new Error(`${reason}; CI is set, so this is a failure`);
  return reason;
}

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

export function lookoutBin() {
  return process.env.LOOKOUT_BIN || join(REPO, 'target', 'debug', 'lookout');
}

export class LookoutServer {
  constructor({ bin = lookoutBin(), port, dir, extraArgs = [], env = {} }) {
    this.bin = bin;
    this.port = port;
    this.dir = dir;
    this.extraArgs = extraArgs;
    this.env = env;
    this.child = null;
    this.log = '';
  }

  /** Starts a server on a free port with a new database; `options.extraArgs` go after `serve`. */
  static async start(options = {}) {
    const bin = options.bin || lookoutBin();
    if (!existsSync(bin)) throw new Error(`lookout binary not found at ${bin}: run \`cargo build\` or set LOOKOUT_BIN`);
    const dir = mkdtempSync(join(tmpdir(), 'lookout-e2e-'));
    const server = new LookoutServer({ ...options, bin, dir, port: options.port || (await freePort()) });
    await server.spawn();
    return server;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  get databaseUrl() {
    return `sqlite://${join(this.dir, 'lookout.db')}`;
  }

  async spawn() {
    const args = ['serve', '--addr', `127.0.0.1:${this.port}`, '--database-url', this.databaseUrl, ...this.extraArgs];
    const env = { ...process.env, ...this.env };
    // The flags decide; stray settings of the developer's shell must not.
    for (const name of ['LOOKOUT_ADDR', 'DATABASE_URL', 'REDIS_URL', 'LOOKOUT_PUBLIC_URL']) {
      if (!(name in this.env)) delete env[name];
    }
    const child = spawn(this.bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const append = (chunk) => {
      this.log += chunk.toString();
      if (this.log.length > 200_000) this.log = this.log.slice(-100_000);
      if (process.env.LOOKOUT_E2E_LOG) process.stderr.write(chunk);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    await this.waitHealthy();
  }

  async waitHealthy(timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    let exited = null;
    this.exited.then((e) => (exited = e));
    while (Date.now() < deadline) {
      if (exited) throw new Error(`lookout exited (${JSON.stringify(exited)}) before /healthz answered:\n${this.log}`);
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) return;
      } catch {}
      await sleep(100);
    }
    throw new Error(`lookout did not answer /healthz within ${timeoutMs} ms:\n${this.log}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process is gone. */
  async stop(graceMs = 10_000) {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Stops the server and starts it again on the same port and database. */
  async restart() {
    await this.stop();
    await this.spawn();
  }

  /** Stops the server and removes its database. */
  async dispose() {
    await this.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One REST call: JSON in and out. Resolves to { status, body, headers }; never throws on 4xx/5xx. */
export async function api(server, method, path, { token, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(server.url + path, init);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

function expectStatus(res, status, what) {
  if (res.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** POST /api/auth/signup → { token, account }. */
export async function signup(server, email = `e2e-${Date.now()}-${Math.random().toString(36).slice(2)}@example.test`, password = 'correct horse battery staple') {
  return expectStatus(await api(server, 'POST', '/api/auth/signup', { body: { email, password } }), 201, 'signup');
}

/** POST /api/sites → { id, key, name, domains, created_at }. */
export async function createSite(server, token, { name = 'E2E site', domains = ['localhost'] } = {}) {
  return expectStatus(await api(server, 'POST', '/api/sites', { token, body: { name, domains } }), 201, 'create site');
}

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs` with the last value. */
export async function eventually(fn, { timeoutMs = 10_000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (true) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.stack : JSON.stringify(last)}`);
    await sleep(intervalMs);
  }
}

/** A /ws/admin client: authenticates with `token`, keeps every frame it receives in `frames`. */
export class AdminSocket {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.closed = null;
    ws.on('message', (data) => {
      let frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        frame = { type: '_unparsable', raw: data.toString() };
      }
      this.frames.push(frame);
      for (const w of [...this.waiters]) w.check(frame);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of [...this.waiters]) w.fail(new Error(`admin socket closed (${code} ${reason}) while waiting for ${w.what}`));
    });
  }

  static async connect(server, siteId, token, { timeoutMs = 10_000 } = {}) {
    const ws = new WebSocket(`${server.wsUrl}/ws/admin?site=${encodeURIComponent(siteId)}`);
    const socket = new AdminSocket(ws);
    await new Promise((res, rej) => {
      ws.once('open', res);
      ws.once('error', rej);
      ws.once('unexpected-response', (_req, r) => rej(new Error(`admin socket upgrade refused: HTTP ${r.statusCode}`)));
    });
    if (token) socket.send({ type: 'auth', token });
    await socket.waitFor((f) => f.type === 'snapshot', { timeoutMs, what: 'snapshot' });
    return socket;
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  /**
   * Resolves with the first frame (already received, or arriving within `timeoutMs`) for which
   * `predicate` is true. `from` skips frames received before that index (see `mark()`).
   */
  waitFor(predicate, { timeoutMs = 10_000, from = 0, what = predicate.toString() } = {}) {
    for (let i = from; i < this.frames.length; i++) if (predicate(this.frames[i])) return Promise.resolve(this.frames[i]);
    if (this.closed) return Promise.reject(new Error(`admin socket closed (${this.closed.code}) before ${what}`));
    return new Promise((res, rej) => {
      const waiter = {
        what,
        check: (frame) => {
          let ok = false;
          try {
            ok = predicate(frame);
          } catch {}
          if (ok) done(null, frame);
        },
        fail: (err) => done(err),
      };
      const timer = setTimeout(
        () => done(new Error(`timed out after ${timeoutMs} ms waiting for admin frame ${what}; frames: ${JSON.stringify(this.frames.slice(-20))}`)),
        timeoutMs,
      );
      const done = (err, frame) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        if (err) rej(err);
        else res(frame);
      };
      this.waiters.push(waiter);
    });
  }

  /** The index of the next frame: pass it as `from` to wait only for later frames. */
  mark() {
    return this.frames.length;
  }

  matching(predicate, from = 0) {
    return this.frames.slice(from).filter(predicate);
  }

  close() {
    try {
      this.ws.close();
    } catch {}
  }
}

/**
 * Serves test pages on http://localhost:PORT (a different origin from the lookout server).
 * `handler(url, req)` returns { status?, type?, body } or null for a 404; `{ chunks, pauseMs }`
 * in place of `body` sends the chunks one by one with a pause (default 500 ms) between them.
 */
export class PageServer {
  static async start(handler) {
    const server = new PageServer();
    server.http = createServer(async (req, res) => {
      try {
        const url = new URL(req.url, `http://localhost`);
        const out = await handler(url, req);
        if (!out) {
          res.writeHead(404, { 'content-type': 'text/plain' });
          return res.end('not found');
        }
        res.writeHead(out.status || 200, { 'content-type': out.type || 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        if (!out.chunks) return res.end(out.body);
        for (const [i, chunk] of out.chunks.entries()) {
          if (i) await sleep(out.pauseMs ?? 500);
          res.write(chunk);
        }
        res.end();
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e && e.stack));
      }
    });
    await new Promise((r) => server.http.listen(0, '127.0.0.1', r));
    server.port = server.http.address().port;
    return server;
  }

  get origin() {
    return `http://localhost:${this.port}`;
  }

  close() {
    return new Promise((r) => {
      this.http.closeAllConnections?.();
      this.http.close(() => r());
    });
  }
}

/**
 * Records what `page` sends and receives on its visitor sockets (/ws/visitor), parsed: call it
 * before the page loads. `sent` and `received` keep every frame of every socket in order;
 * `sockets` counts the sockets opened and `closes` lists them as they close.
 */
export function visitorFrames(page) {
  const out = { sent: [], received: [], sockets: 0, closes: [] };
  const parse = (payload) => {
    try {
      return JSON.parse(String(payload));
    } catch {
      return { type: '_unparsable', raw: String(payload) };
    }
  };
  page.on('websocket', (ws) => {
    if (!ws.url().includes('/ws/visitor')) return;
    out.sockets++;
    ws.on('framesent', (f) => out.sent.push(parse(f.payload)));
    ws.on('framereceived', (f) => out.received.push(parse(f.payload)));
    ws.on('close', () => out.closes.push(ws.url()));
  });
  return out;
}
