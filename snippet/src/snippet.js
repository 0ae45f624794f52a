/*
 * Lookout snippet: the one file every page of a site loads.
 *
 * One dependency-free ES2017 IIFE, configured by the data-* attributes of its own <script> tag.
 * It keeps the visitor (lk_vid) and session (lk_sid) cookies and a tab id, holds one WebSocket to
 * /ws/visitor on the origin it was loaded from, reports page views (including history
 * navigations of single-page apps, each with the schema.org item the page describes), events
 * and identities, and hands messages to the page's handlers or to the lazily loaded display
 * (ui.js). It never throws into the host page and defines no global but `lookout`.
 *
 * Frames follow the visitor WebSocket of CONTRACT.md exactly; ui.js hands itself over by calling
 * lookout('_ui', render), where render(message, ack) shows a message and reports through ack.
 */
(function () {
  try {
    const w = window;
    const d = document;
    const nav = navigator;
    const stub = w.lookout;
    // An earlier copy of the snippet on this page already runs: leave it alone.
    if (stub && stub.lk) return;

    const script = d.currentScript || d.querySelector('script[data-site]');
    const attr = (name) => script.getAttribute('data-' + name);
    const opt = (name) => attr(name) != null && attr(name) !== 'false';
    const site = attr('site');

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
        (nav.globalPrivacyControl || /1|yes/.test(nav.doNotTrack + w.doNotTrack)))
    ) {
      // Disabled: swallow the page's calls, queued or future, and keep nothing.
      w.lookout = () => {};
      return;
    }

    const trackHash = opt('track-hash');
    const base = new URL(script.src).origin;
    const socketUrl = base.replace(/^http/, 'ws') + '/ws/visitor?site=' + encodeURIComponent(site);
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;

    // 128 random bits: four 32-bit numbers, e.g. "3735928559-48879-2882400001-1952805748".
    const newId = () => crypto.getRandomValues(new Uint32Array(4)).join('-');
    // (Not "undefined": an absent id is tested as "0".)
    const valid = (id) => /^[\w-]{8,64}$/.test(id || 0);
    // A cookie's value when it is a valid id.
    const getCookie = (name) => (d.cookie.match('(^|; )' + name + '=([\\w-]{8,64})(;|$)') || [])[2];
    // Host-only cookies (no Domain attribute): the page's own host.
    const setCookie = (name, value, age) => {
      d.cookie = name + '=' + value + ';path=/;max-age=' + age + ';samesite=lax' + (location.protocol == 'https:' ? ';secure' : '');
    };
    // (sessionStorage may refuse access: then the tab id lasts as long as the page.)
    const storage = safe((value) => (value ? sessionStorage.setItem('lk_tid', value) : sessionStorage.getItem('lk_tid')));

    let visitor = getCookie('lk_vid') || newId();
    let session = getCookie('lk_sid') || newId();
    let tab = storage();
    if (!valid(tab)) tab = newId();
    // Writes the ids: the visitor for two years, the session for 30 minutes from now.
    const keep = () => {
      setCookie('lk_vid', visitor, 63072000);
      setCookie('lk_sid', session, 1800);
      storage(tab);
    };
    keep();

    // The server refuses (4400) URLs over 2048 bytes and cuts titles over 1024 bytes: clip them,
    // and never leave half of a surrogate pair at the end.
    const clip = (text, max) => String(text || '').slice(0, max).replace(/[\ud800-\udbff]$/, '');
    const title = () => clip(d.title, 250);
    const here = () => clip(location.href.split(trackHash ? undefined : '#')[0], 2048);
    // The URL most recently reported, sent or queued: SPA navigations are compared against it.
    let current = here();
    // What the server knows about this page: set once the page is parsed (see start), then
    // replaced by every page frame sent; a reconnecting hello repeats it.
    let last;
    let socket;
    let ready = false; // welcomed on the current socket
    let resume = false; // a hello of this page was welcomed: later hellos only resume
    let attempt = 0;
    let touched = 0;
    let stopped = true; // until the page is parsed (see start), and after pagehide
    let queue = [];
    let dropped = 0;
    let tokens = 0;
    let refilled = 0;
    let ui;
    let uiLoading;
    const pending = [];
    const handlers = [];
    const seen = {};

    // Runs fn after ms, in place of what was planned under the same name.
    const timers = [];
    const later = (name, fn, ms) => {
      clearTimeout(timers[name]);
      timers[name] = setTimeout(safe(fn), ms);
    };

    const transmit = (frame) => {
      socket.send(JSON.stringify(frame));
      if (frame.type == 'page') last = frame;
    };

    // Activity keeps the session alive; once it has lapsed (or another tab started a new one),
    // the socket says hello again with the current session.
    const touch = () => {
      const s = getCookie('lk_sid');
      if (s != session) {
        session = s || newId();
        if (socket) restart();
      }
      keep();
      touched = Date.now();
    };

    // Every frame goes through the queue, sent as fast as the server's rate limit allows (it
    // closes with 4429 above 20 frames a second, bursts of 40): here at most 15 a second (one
    // token every 1000/15 ms) after a burst of 30, so that flushing a backlog after an outage
    // never trips it.
    const pump = () => {
      const now = Date.now();
      tokens = Math.min(30, tokens + (now - refilled) * 0.015);
      refilled = now;
      while (ready && queue.length && tokens >= 1) {
        // Taken off first: a frame that cannot be sent (props JSON cannot say) must not block the rest.
        transmit(queue.shift());
        tokens--;
      }
      if (ready && queue.length) later(0, pump, 67);
    };

    const send = (frame) => {
      touch();
      // Bounded (200): on a long outage the oldest frames go first.
      if (queue.push(frame) > 200) {
        queue.shift();
        dropped++;
      }
      pump();
    };

    const schedule = () => {
      // Exponential back-off with full jitter: 0.5 s doubling up to 30 s.
      later(1, connect, Math.random() * Math.min(30000, 500 * 2 ** attempt++));
    };

    const disconnect = () => {
      clearTimeout(timers[1]);
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
        // The page as last reported (url, title, referrer, item), said again on a reconnection.
        ws.send(
          JSON.stringify(
            Object.assign({}, last, {
              type: 'hello',
              visitor,
              session,
              tab,
              lang: nav.language,
              screen: screen.width + 'x' + screen.height,
              tz,
              resume,
            })
          )
        );
      });
      ws.onmessage = safe((event) => {
        const m = JSON.parse(event.data);
        if (m.type == 'welcome') {
          // The server may have replaced ids it found invalid.
          if ([m.visitor, m.session, m.tab].every(valid)) ({ visitor, session, tab } = m);
          keep();
          ready = resume = true;
          attempt = 0;
          if (d.visibilityState == 'hidden') visibility();
          pump();
        } else if (m.type == 'message' && !seen[m.id]) {
          // What is left is the message: {id, title, body, style, cta, data}.
          seen[m.id] = 1;
          delete m.type;
          receive(m);
        }
      });
      ws.onclose = safe((event) => {
        disconnect();
        // 4403: this site may not use the service; asking again will not change that.
        if (event.code != 4403) schedule();
      });
    }

    const visibility = () => send({ type: 'visibility', state: d.visibilityState });
    const ack = (id, status) => send({ type: 'ack', message: id, status });

    function receive(message) {
      // Every handler sees it; any of them may keep the built-in display away.
      if (handlers.map((fn) => safe(fn)(message)).includes(false)) return;
      if (ui) return ui(message, ack);
      pending.push(message);
      if (uiLoading) return;
      uiLoading = true;
      const el = d.createElement('script');
      // Inserted scripts load asynchronously.
      el.src = base + '/snippet/ui.js';
      el.onerror = () => (uiLoading = false);
      d.documentElement.appendChild(el);
    }

    const page = (force, url, name) => {
      const now = url ? clip(url, 2048) : here();
      if (!force && now == current) return;
      send({ type: 'page', url: now, title: clip(name, 250) || title(), referrer: current, item: readItem() });
      current = now;
    };

    // Schema.org data of the page, sent with each page view as `item`: the first JSON-LD object
    // (in top-level arrays, @graph and a page's mainEntity too) whose @type is or includes Product,
    // Car or Vehicle, or the itemOffered of an Offer; then data-lookout-* attributes of any element add or override
    // fields (the last element in document order wins). Texts of at most 200 characters and 200
    // UTF-8 bytes (the server's limit), the price a non-negative number. Nothing found: no item.
    const FIELDS = ['type', 'brand', 'model', 'name', 'category', 'sku', 'price', 'currency'];
    // A text, or the name of a thing (a Brand, a ProductModel…).
    const text = (v) =>
      v && typeof v == 'object'
        ? text(v.name)
        : new Blob([(v = clip(v, 200))]).size > 200
        ? text(clip(v, v.length - 1))
        : v;
    const readItem = () => {
      let raw;
      let item;
      const scan = (v, offer) =>
        [].concat(v).map((o) => {
          if (raw || !o) return;
          // @type: one name or a list of them (exec sees "Product,Car"), also as schema.org IRIs.
          const type = (/\b(Product|Car|Vehicle|Offer)\b/.exec(o['@type']) || [])[1];
          if (offer || (type && type != 'Offer')) {
            // The first offer (object or list) gives the price: price, or the lowPrice of a range.
            offer = [].concat(offer || o.offers)[0] || {};
            // An itemOffered of another type keeps it; a vehicle's bodyType is its category
            // unless it has one.
            raw = Object.assign(o, {
              type: type || o['@type'],
              category: o.category || o.bodyType,
              price: offer.price || offer.lowPrice,
              currency: offer.priceCurrency,
            });
          } else scan(type ? o.itemOffered : o.mainEntity || o['@graph'], type && o);
        });
      d.querySelectorAll('[type$="ld+json"]').forEach(safe((el) => scan(JSON.parse(el.textContent))));
      raw = raw || {};
      FIELDS.forEach((f) => {
        d.querySelectorAll('[data-lookout-' + f + ']').forEach((el) => (raw[f] = el.getAttribute('data-lookout-' + f)));
        let v = raw[f];
        // A price: a number, or a text that starts with one ("42490.00"); never negative.
        if (f == 'price' ? (v = parseFloat(v)) >= 0 : (v = text(v))) (item = item || {})[f] = v;
      });
      return item;
    };

    // History navigations settle first (a router usually sets the title right after).
    const navigated = () => later(2, page, 50);

    const obj = (x) => (x && typeof x == 'object' && !Array.isArray(x) ? x : {});
    const api = safe((command, a, b) => {
      if (command == 'track' && a) send({ type: 'event', name: String(a), props: obj(b) });
      else if (command == 'identify' && a != null) send({ type: 'identify', user_id: String(a), traits: obj(b) });
      else if (command == 'page') page(1, (a = obj(a)).url && new URL(a.url, location.href).href, a.title);
      // (A handler that is not a function fails harmlessly when called.)
      else if (command == 'on' && a == 'message') handlers.push(b);
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
    for (const args of (stub && stub.q) || []) api(...args);
    w.lookout = api;

    const H = history;
    ['pushState', 'replaceState'].forEach((name) => {
      const original = H[name];
      // (The check runs later, so it may be scheduled first.)
      H[name] = function () {
        navigated();
        return original.apply(this, arguments);
      };
    });
    on(w, 'popstate', navigated);
    if (trackHash) on(w, 'hashchange', navigated);
    on(d, 'visibilitychange', visibility);
    // Interaction keeps the session alive (at most one cookie write every 10 s). Capturing
    // listeners that never cancel anything.
    ['pointerdown', 'keydown', 'scroll'].forEach((type) => on(w, type, () => Date.now() - touched > 1e4 && touch(), true));
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
      resume = false;
      current = here();
      fresh();
    });

    // The page's own item is read once its HTML is parsed (an async snippet may run before the
    // JSON-LD or the <body> with data-lookout-* attributes are there), then the socket opens.
    const fresh = () => {
      stopped = false;
      last = { url: current, title: title(), referrer: clip(d.referrer, 2048), item: readItem() };
      connect();
    };
    const start = safe(() => (d.readyState == 'loading' ? on(d, 'DOMContentLoaded', start) : fresh()));
    if (d.prerendering) on(d, 'prerenderingchange', start);
    else start();
  } catch (e) {}
})();
