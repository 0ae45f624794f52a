// The admin socket of one site and the live state built from it.
//
// Frames are queued as they arrive and applied once per animation frame (or every 250 ms when
// the tab is hidden and animation frames stop), so that 50 events a second cost one render per
// frame, not fifty. Visitor objects are replaced, never mutated, so rows that did not change are
// skipped by identity. The socket reconnects by itself with exponential back-off and jitter and
// takes a fresh snapshot every time.
import { signal } from '@preact/signals';
import { ms, sourceOf, urlParts } from './format.js';

const MAX_ACTIVITY = 80;
const EMPTY = Object.freeze([]);
let activitySeq = 0;

function sinceOf(v) {
  const tabs = Array.isArray(v.tabs) ? v.tabs : [];
  let best = NaN;
  for (const t of tabs) {
    const s = ms(t.since);
    if (t.url === v.url && isFinite(s) && !(s < best)) best = s;
  }
  if (!isFinite(best)) for (const t of tabs) {
    const s = ms(t.since);
    if (isFinite(s) && !(s < best)) best = s;
  }
  if (!isFinite(best)) best = ms(v.session_started);
  return isFinite(best) ? best : Date.now();
}

/** Normalises a VISITOR of the contract into the row the table shows. */
export function normalise(raw, prev) {
  const v = { ...raw };
  v.id = raw.visitor;
  // One entry per tab id: during a navigation the next page's socket can open before the
  // previous one closed.
  const byTab = new Map();
  for (const t of Array.isArray(raw.tabs) ? raw.tabs : []) {
    const seen = byTab.get(t.tab);
    if (!seen || !(ms(seen.since) > ms(t.since))) byTab.set(t.tab, t);
  }
  v.tabs = [...byTab.values()];
  v.traits = raw.traits && typeof raw.traits === 'object' ? raw.traits : {};
  v.pageviews = Number(raw.pageviews) || 0;
  const u = urlParts(raw.url);
  v.path = u.path || '/';
  v.pathname = u.pathname || v.path;
  v.since = sinceOf(v);
  v.startedAt = ms(raw.session_started);
  if (!isFinite(v.startedAt)) v.startedAt = prev ? prev.startedAt : Date.now();
  const same = !!prev && prev.session === v.session;
  // The source of the session is decided by its landing page (its utm_* parameters) or the
  // session's referrer. Servers that do not send `landing_url` leave the first URL we saw.
  v.landing_url = raw.landing_url || (same ? prev.landing_url : null) || null;
  v.source =
    same && prev.source && prev.landing_url === v.landing_url && prev.referrer === raw.referrer
      ? prev.source
      : sourceOf(v.landing_url || raw.url, raw.referrer);
  v.segments = Array.isArray(raw.segments)
    ? prev && raw.segments === prev.segments
      ? prev.segments
      : raw.segments.map(String)
    : same && prev.segments
      ? prev.segments
      : EMPTY;
  v.interests = raw.interests && typeof raw.interests === 'object' ? raw.interests : same ? prev.interests || null : null;
  v.lastEvent = same ? prev.lastEvent : null;
  return v;
}

export class LiveSite {
  constructor(siteId, { onUnauthorized } = {}) {
    this.siteId = siteId;
    this.onUnauthorized = onUnauthorized;
    this.visitors = new Map();
    /** Bumped once per applied batch that changed visitors. */
    this.version = signal(0);
    /** 'connecting' | 'open' | 'reconnecting' | 'forbidden' | 'closed' */
    this.status = signal('connecting');
    this.retryAt = signal(0);
    this.lastError = signal('');
    this.activity = signal([]);
    /** message id -> {delivered, shown, clicked, dismissed} counted from frames since load */
    this.messageStats = signal(new Map());
    this.sentDelivered = new Map();
    this.hadSnapshot = signal(false);
    this.listeners = new Set();
    this.pending = new Map();
    this.queue = [];
    this.scheduled = false;
    this.attempt = 0;
    this.refSeq = 0;
    this.stopped = false;
    this.ws = null;
    this.timer = 0;
    this.flush = this.flush.bind(this);
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws/admin?site=${encodeURIComponent(this.siteId)}`;
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.status.value = this.attempt ? 'reconnecting' : 'connecting';
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.lastError.value = String((e && e.message) || e);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!f || typeof f.type !== 'string') return;
      if (f.type === 'sent' || f.type === 'error') {
        this.reply(f);
        return;
      }
      this.queue.push(f);
      this.schedule();
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [, p] of this.pending) p.reject(new Error('The connection closed before the server answered.'));
      this.pending.clear();
      if (this.stopped) return;
      if (ev.code === 4403) {
        this.status.value = 'forbidden';
        this.lastError.value = 'You are not a member of this site.';
        return;
      }
      if (ev.code === 4401 || ev.code === 4408) {
        // The cookie did not authenticate the upgrade: the session probably ended.
        if (this.onUnauthorized) this.onUnauthorized();
      }
      this.scheduleReconnect();
    };
    ws.onerror = () => {};
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.attempt++;
    const base = Math.min(30_000, 500 * 2 ** Math.min(this.attempt - 1, 6));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.status.value = 'reconnecting';
    this.retryAt.value = Date.now() + delay;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnects now instead of waiting for the back-off. */
  retryNow() {
    if (this.ws || this.stopped) return;
    clearTimeout(this.timer);
    this.connect();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
    this.status.value = 'closed';
  }

  get open() {
    return !!this.ws && this.ws.readyState === 1 && this.status.value === 'open';
  }

  /** Sends a message through the socket; resolves with the `sent` reply. */
  sendMessage(to, message) {
    return new Promise((resolve, reject) => {
      if (!this.open) {
        reject(new Error('not_connected'));
        return;
      }
      const ref = 'r' + ++this.refSeq + '-' + Date.now().toString(36);
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new Error('The server did not answer in time.'));
      }, 15_000);
      this.pending.set(ref, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ type: 'send', ref, to, message }));
    });
  }

  reply(f) {
    const p = f.ref != null ? this.pending.get(f.ref) : null;
    if (f.type === 'sent' && f.message) {
      this.sentDelivered.set(f.message, Number(f.delivered) || 0);
      this.bumpStats(f.message, null);
    }
    if (!p) {
      if (f.type === 'error') this.lastError.value = f.message || f.code || 'error';
      return;
    }
    this.pending.delete(f.ref);
    if (f.type === 'sent') p.resolve(f);
    else {
      const e = new Error(f.message || 'The server refused the message.');
      e.code = f.code;
      p.reject(e);
    }
  }

  /** Subscribes to every applied frame (after the visitors map was updated). */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    // Animation frames stop in hidden tabs; the timeout keeps the queue bounded there.
    this.raf = requestAnimationFrame(this.flush);
    this.fallback = setTimeout(this.flush, 250);
  }

  flush() {
    if (!this.scheduled) return;
    this.scheduled = false;
    cancelAnimationFrame(this.raf);
    clearTimeout(this.fallback);
    const frames = this.queue;
    this.queue = [];
    let changed = false;
    const acts = [];
    let statsChanged = null;
    for (const f of frames) {
      try {
        const r = this.apply(f, acts);
        if (r === 'visitors') changed = true;
        else if (r) (statsChanged ||= []).push(r);
      } catch (e) {
        // A malformed frame must not stop the others.
        console.warn('lookout: bad frame', f.type, e);
      }
    }
    if (statsChanged) {
      const m = new Map(this.messageStats.value);
      for (const [id, status] of statsChanged) {
        const cur = { ...(m.get(id) || { delivered: 0, shown: 0, clicked: 0, dismissed: 0 }) };
        if (status in cur) cur[status]++;
        m.set(id, cur);
      }
      this.messageStats.value = m;
    }
    if (acts.length) {
      const list = acts.reverse().concat(this.activity.value);
      this.activity.value = list.length > MAX_ACTIVITY ? list.slice(0, MAX_ACTIVITY) : list;
    }
    if (changed) this.version.value++;
    if (this.listeners.size) for (const f of frames) for (const fn of this.listeners) fn(f);
  }

  bumpStats(id) {
    const m = new Map(this.messageStats.value);
    if (!m.has(id)) m.set(id, { delivered: 0, shown: 0, clicked: 0, dismissed: 0 });
    this.messageStats.value = m;
  }

  /** Delivered count of a message: the `sent` reply or the delivered frames, whichever is more. */
  stats(id) {
    const s = this.messageStats.value.get(id) || { delivered: 0, shown: 0, clicked: 0, dismissed: 0 };
    return { ...s, delivered: Math.max(s.delivered, this.sentDelivered.get(id) || 0) };
  }

  activityItem(kind, visitor, extra) {
    return { id: ++activitySeq, kind, visitor, at: Date.now(), ...extra };
  }

  apply(f, acts) {
    const V = this.visitors;
    switch (f.type) {
      case 'snapshot': {
        const next = new Map();
        for (const raw of Array.isArray(f.visitors) ? f.visitors : []) {
          if (raw && raw.visitor) next.set(raw.visitor, normalise(raw, V.get(raw.visitor)));
        }
        this.visitors = next;
        this.status.value = 'open';
        this.attempt = 0;
        this.lastError.value = '';
        this.hadSnapshot.value = true;
        return 'visitors';
      }
      case 'joined': {
        const raw = f.visitor;
        if (!raw || !raw.visitor) return null;
        const prev = V.get(raw.visitor);
        V.set(raw.visitor, normalise(raw, prev));
        if (!prev) acts.push(this.activityItem('joined', raw.visitor, { url: raw.url, title: raw.title, label: raw.user_id }));
        return 'visitors';
      }
      case 'pageview': {
        const id = f.visitor;
        if (!id) return null;
        const prev = V.get(id);
        const at = ms(f.at);
        const since = isFinite(at) ? f.at : new Date().toISOString();
        const base = prev || {
          visitor: id,
          session: f.session,
          user_id: null,
          traits: {},
          tabs: [],
          first_seen: since,
          session_started: since,
          pageviews: 0,
          referrer: f.referrer,
          landing_url: f.url,
        };
        const newSession = prev && f.session && prev.session !== f.session;
        // `joined` already counted the page view that opened the visitor's first tab.
        if (prev && !newSession && prev.tabs.some((t) => t.tab === f.tab && t.url === f.url && ms(t.since) === at)) return null;
        let tabs = (newSession ? [] : base.tabs || []).filter((t) => t.tab !== f.tab);
        tabs = tabs.concat([{ tab: f.tab, url: f.url, title: f.title, since }]);
        const raw = {
          ...base,
          session: f.session || base.session,
          url: f.url,
          title: f.title,
          tabs,
          pageviews: newSession ? 1 : (Number(base.pageviews) || 0) + 1,
          session_started: newSession ? since : base.session_started,
          referrer: newSession ? f.referrer : base.referrer,
          landing_url: newSession ? f.url : base.landing_url,
          interests: newSession ? null : base.interests,
        };
        const v = normalise(raw, newSession ? null : prev);
        V.set(id, v);
        acts.push(this.activityItem('pageview', id, { url: f.url, title: f.title, label: v.user_id }));
        return 'visitors';
      }
      case 'visitor': {
        // One of the visitor's tabs closed while others stay: their state now (tabs, page).
        const raw = f.visitor;
        if (!raw || !raw.visitor) return null;
        V.set(raw.visitor, normalise(raw, V.get(raw.visitor)));
        return 'visitors';
      }
      case 'segments': {
        const prev = V.get(f.visitor);
        if (!prev) return null;
        const segments = Array.isArray(f.segments) ? f.segments.map(String) : EMPTY;
        const entered = segments.filter((s) => !prev.segments.includes(s));
        const interests = f.interests && typeof f.interests === 'object' ? f.interests : prev.interests;
        V.set(f.visitor, { ...prev, segments, interests });
        if (entered.length) acts.push(this.activityItem('segment', f.visitor, { segments: entered, label: prev.user_id }));
        return 'visitors';
      }
      case 'left': {
        const prev = V.get(f.visitor);
        if (!prev) return null;
        V.delete(f.visitor);
        acts.push(this.activityItem('left', f.visitor, { label: prev.user_id, url: prev.url }));
        return 'visitors';
      }
      case 'event': {
        const prev = V.get(f.visitor);
        acts.push(this.activityItem('event', f.visitor, { name: f.name, props: f.props, label: prev && prev.user_id }));
        if (!prev) return null;
        V.set(f.visitor, { ...prev, lastEvent: { name: f.name, at: ms(f.at) || Date.now() } });
        return 'visitors';
      }
      case 'identify': {
        const prev = V.get(f.visitor);
        acts.push(this.activityItem('identify', f.visitor, { label: f.user_id }));
        if (!prev) return null;
        V.set(f.visitor, {
          ...prev,
          user_id: f.user_id ?? prev.user_id,
          traits: { ...(prev.traits || {}), ...(f.traits && typeof f.traits === 'object' ? f.traits : {}) },
        });
        return 'visitors';
      }
      case 'message_status': {
        if (!f.message) return null;
        if (f.status !== 'delivered') {
          const prev = V.get(f.visitor);
          acts.push(this.activityItem('message', f.visitor, { status: f.status, message: f.message, label: prev && prev.user_id }));
        }
        return [f.message, f.status];
      }
      default:
        return null;
    }
  }
}
