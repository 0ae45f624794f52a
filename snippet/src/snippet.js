/*
 * Lookout snippet: the one file every page of a site loads.
 *
 * One dependency-free ES2017 IIFE, configured by the data-* attributes of its own <script> tag.
 * It keeps the visitor (lk_vid) and session (lk_sid) cookies and a tab id, holds one WebSocket to
 * /ws/visitor on the origin it was loaded from, reports page views (including history
 * navigations of single-page apps), events and identities, and hands messages to the page's
 * handlers or to the lazily loaded display (ui.js). It never throws into the host page and
 * defines no global but `lookout`.
 *
 * Frames follow the visitor WebSocket of CONTRACT.md exactly; ui.js hands itself over by calling
 * lookout('_ui', render), where render(message, ack) shows a message and reports through ack.
 */
(function () {
  'use strict';
  try {
    const w = window;
    const d = document;
    const nav = navigator;
    // An earlier copy of the snippet on this page already runs: leave it alone.
    if (w.lookout && w.lookout.lk) return;

    const script = d.currentScript || d.querySelector('script[data-site]');
    const attr = (name) => script.getAttribute('data-' + name);
    const opt = (name) => attr(name) != null && attr(name) !== 'false';
    const site = attr('site');
    const stub = w.lookout;

    // Wraps a callback so that nothing of ours ever reaches the page's error handlers.
    const safe = (fn) => function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {}
    };
    const on = (target, type, fn, capture) => target.addEventListener(type, safe(fn), capture);

    if (
      !site ||
      (opt('respect-dnt') &&
        (nav.globalPrivacyControl || nav.doNotTrack == '1' || nav.doNotTrack == 'yes' || w.doNotTrack == '1'))
    ) {
      // Disabled: swallow the page's calls, queued or future, and keep nothing.
      w.lookout = () => {};
      return;
    }

    const trackHash = opt('track-hash');
    const base = new URL(script.src).origin;
    const socketUrl = base.replace(/^http/, 'ws') + '/ws/visitor?site=' + encodeURIComponent(site);
    const https = location.protocol == 'https:';
    const ID = /^[A-Za-z0-9_-]{8,64}$/;
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
    const VID = 'lk_vid';
    const SID = 'lk_sid';
    const TID = 'lk_tid';
    const SESSION_AGE = 1800;
    const QUEUE_MAX = 200;
    const RATE = 15;
    let tz;
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {}

    // 22 characters of 6 random bits each: 132 bits.
    const newId = () => {
      let id = '';
      crypto.getRandomValues(new Uint8Array(22)).forEach((b) => (id += ALPHABET[b & 63]));
      return id;
    };
    const valid = (id) => typeof id == 'string' && ID.test(id);
    const getCookie = (name) => {
      const m = d.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
      return m && valid(m[1]) ? m[1] : null;
    };
    // Host-only cookies (no Domain attribute): the page's own host.
    const setCookie = (name, value, age) => {
      d.cookie = name + '=' + value + ';path=/;max-age=' + age + ';samesite=lax' + (https ? ';secure' : '');
    };
    const storage = (value) => {
      try {
        if (value) sessionStorage.setItem(TID, value);
        else return sessionStorage.getItem(TID);
      } catch (e) {}
    };

    let visitor = getCookie(VID) || newId();
    let session = getCookie(SID) || newId();
    let tab = storage();
    if (!valid(tab)) storage((tab = newId()));
    setCookie(VID, visitor, 63072000);
    setCookie(SID, session, SESSION_AGE);

    // The server refuses (4400) URLs over 2048 bytes and titles over 1024 bytes: clip them, and
    // never leave half of a surrogate pair at the end.
    const clip = (text, max) => String(text || '').slice(0, max).replace(/[\ud800-\udbff]$/, '');
    const title = () => clip(d.title, 250);
    const here = () => clip(trackHash ? location.href : location.href.split('#')[0], 2048);
    // What the server knows about this page: the hello and every page frame sent update it, and
    // a reconnecting hello repeats it.
    let last = { url: here(), title: title(), referrer: clip(d.referrer, 2048) };
    // The URL most recently reported, sent or queued: SPA navigations are compared against it.
    let current = last.url;
    let socket = null;
    let ready = false; // welcomed on the current socket
    let resume = false; // a hello of this page was welcomed: later hellos only resume
    let attempt = 0;
    let timer = 0;
    let touched = 0;
    let stopped = false;
    let queue = [];
    let dropped = 0;
    let tokens = 0;
    let refilled = 0;
    let pumpTimer = 0;
    let ui = null;
    let uiLoading = false;
    const pending = [];
    const handlers = [];
    const seen = {};

    const transmit = (frame) => {
      socket.send(JSON.stringify(frame));
      if (frame.type == 'page') last = frame;
    };

    // Activity keeps the session alive; once it has lapsed (or another tab started a new one),
    // the socket says hello again with the current session.
    const touch = () => {
      const s = getCookie(SID);
      if (s != session) {
        session = s || newId();
        if (socket) restart();
      }
      setCookie(SID, session, SESSION_AGE);
      touched = Date.now();
    };

    // Every frame goes through the queue, sent as fast as the server's rate limit allows (it
    // closes with 4429 above 20 frames a second, bursts of 40): here at most 15 a second after a
    // burst of 30, so that flushing a backlog after an outage never trips it.
    const pump = () => {
      const now = Date.now();
      tokens = Math.min(RATE * 2, tokens + ((now - refilled) * RATE) / 1000);
      refilled = now;
      while (ready && queue.length && tokens >= 1) {
        transmit(queue[0]);
        queue.shift();
        tokens--;
      }
      clearTimeout(pumpTimer);
      if (ready && queue.length) pumpTimer = setTimeout(safe(pump), 1000 / RATE);
    };

    const send = (frame) => {
      touch();
      // Bounded: on a long outage the oldest frames go first.
      if (queue.push(frame) > QUEUE_MAX) {
        queue.shift();
        dropped++;
      }
      pump();
    };

    const schedule = () => {
      clearTimeout(timer);
      // Exponential back-off with full jitter: 0.5 s doubling up to 30 s.
      timer = setTimeout(safe(connect), Math.random() * Math.min(30000, 500 * 2 ** attempt++));
    };

    const disconnect = () => {
      clearTimeout(timer);
      if (socket) {
        socket.onclose = socket.onmessage = null;
        socket.close();
      }
      socket = null;
      ready = false;
    };

    function restart() {
      disconnect();
      connect();
    }

    function connect() {
      if (stopped || socket) return;
      const ws = (socket = new WebSocket(socketUrl));
      ws.onopen = safe(() => {
        tokens--;
        ws.send(
          JSON.stringify({
            type: 'hello',
            visitor,
            session,
            tab,
            url: last.url,
            title: last.title,
            referrer: last.referrer,
            lang: nav.language,
            screen: screen.width + 'x' + screen.height,
            tz,
            resume,
          })
        );
      });
      ws.onmessage = safe((event) => {
        const m = JSON.parse(event.data);
        if (m.type == 'welcome') {
          // The server may have replaced ids it found invalid.
          if (valid(m.visitor)) setCookie(VID, (visitor = m.visitor), 63072000);
          if (valid(m.session)) setCookie(SID, (session = m.session), SESSION_AGE);
          if (valid(m.tab)) storage((tab = m.tab));
          ready = resume = true;
          attempt = 0;
          if (d.visibilityState == 'hidden') send({ type: 'visibility', state: 'hidden' });
          pump();
        } else if (m.type == 'message' && !seen[m.id]) {
          seen[m.id] = 1;
          receive({ id: m.id, title: m.title, body: m.body, style: m.style, cta: m.cta, data: m.data });
        }
      });
      ws.onclose = safe((event) => {
        socket = null;
        ready = false;
        // 4403: this site may not use the service; asking again will not change that.
        if (event.code != 4403) schedule();
      });
    }

    const ack = (id, status) => send({ type: 'ack', message: id, status });

    function receive(message) {
      let show = true;
      handlers.forEach((fn) => {
        try {
          if (fn(message) === false) show = false;
        } catch (e) {}
      });
      if (!show) return;
      if (ui) return ui(message, ack);
      pending.push(message);
      if (uiLoading) return;
      uiLoading = true;
      const el = d.createElement('script');
      el.src = base + '/snippet/ui.js';
      el.async = true;
      el.onerror = () => (uiLoading = false);
      (d.head || d.documentElement).appendChild(el);
    }

    const page = (force, url, name) => {
      const now = url ? clip(url, 2048) : here();
      if (!force && now == current) return;
      send({ type: 'page', url: now, title: clip(name, 250) || title(), referrer: current });
      current = now;
    };

    let pageTimer = 0;
    // History navigations settle first (a router usually sets the title right after).
    const navigated = () => {
      clearTimeout(pageTimer);
      pageTimer = setTimeout(safe(() => page()), 50);
    };

    const obj = (x) => (x && typeof x == 'object' && !Array.isArray(x) ? x : {});
    const api = safe(function (command, a, b) {
      if (command == 'track' && a) send({ type: 'event', name: String(a), props: obj(b) });
      else if (command == 'identify' && a != null) send({ type: 'identify', user_id: String(a), traits: obj(b) });
      else if (command == 'page')
        page(1, a && a.url && new URL(a.url, location.href).href, a && a.title);
      else if (command == 'on' && a == 'message' && typeof b == 'function') handlers.push(b);
      else if (command == 'ack') ack(a, b);
      else if (command == '_ui') {
        ui = a;
        pending.splice(0).forEach((m) => safe(ui)(m, ack));
      } else if (command == '_stats')
        return { connected: ready, queued: queue.length, dropped, visitor, session, tab };
    });
    api.lk = 1;

    // Calls made through the queue stub, in order (including any they make themselves), then
    // the real function takes over.
    const early = (stub && stub.q) || [];
    for (let i = 0; i < early.length; i++) api.apply(null, early[i]);
    w.lookout = api;

    const H = history;
    ['pushState', 'replaceState'].forEach((name) => {
      const original = H[name];
      H[name] = function () {
        const result = original.apply(this, arguments);
        navigated();
        return result;
      };
    });
    on(w, 'popstate', navigated);
    if (trackHash) on(w, 'hashchange', navigated);
    on(d, 'visibilitychange', () => send({ type: 'visibility', state: d.visibilityState }));
    // Interaction keeps the session alive (at most one cookie write every 10 s).
    ['pointerdown', 'keydown', 'scroll'].forEach((type) =>
      on(w, type, () => Date.now() - touched > 1e4 && touch(), { capture: true, passive: true })
    );
    on(w, 'online', () => {
      attempt = 0;
      if (!socket) connect();
    });
    // Close before the page goes into the back/forward cache; coming back from it is a new view.
    on(w, 'pagehide', () => {
      stopped = true;
      disconnect();
    });
    on(w, 'pageshow', (event) => {
      if (!event.persisted) return;
      stopped = resume = false;
      last = { url: (current = here()), title: title(), referrer: clip(d.referrer, 2048) };
      connect();
    });

    const start = safe(connect);
    if (d.prerendering) on(d, 'prerenderingchange', start);
    else start();
  } catch (e) {}
})();
