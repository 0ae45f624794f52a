// Formatting helpers. Everything that comes from visitors is shown as plain text by Preact;
// these helpers only shorten and describe it.

export function ms(t) {
  if (t === null || t === undefined || t === '') return NaN;
  if (typeof t === 'number') return t;
  return Date.parse(t);
}

export function duration(msv) {
  if (!isFinite(msv)) return '—';
  let s = Math.max(0, Math.floor(msv / 1000));
  if (s < 60) return s + 's';
  let m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  m %= 60;
  if (h < 48) return `${h}h ${String(m).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function ago(t, now = Date.now()) {
  const v = ms(t);
  if (!isFinite(v)) return '—';
  const d = Math.max(0, now - v);
  if (d < 10_000) return 'just now';
  if (d < 60_000) return Math.floor(d / 1000) + 's ago';
  if (d < 3_600_000) return Math.floor(d / 60_000) + 'm ago';
  if (d < 86_400_000) return Math.floor(d / 3_600_000) + 'h ago';
  return Math.floor(d / 86_400_000) + 'd ago';
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function clock(t) {
  const v = ms(t);
  return isFinite(v) ? timeFmt.format(v) : '—';
}
export function when(t) {
  const v = ms(t);
  if (!isFinite(v)) return '—';
  const today = new Date();
  const d = new Date(v);
  if (d.toDateString() === today.toDateString()) return timeFmt.format(v);
  return dateTimeFmt.format(v);
}
export function fullDate(t) {
  const v = ms(t);
  return isFinite(v) ? fullFmt.format(v) : '';
}

export function num(n) {
  if (n === null || n === undefined || !isFinite(n)) return '0';
  return Number(n).toLocaleString();
}

export function pct(a, b) {
  if (!b) return '—';
  return Math.round((100 * a) / b) + '%';
}

/** Splits a URL into what a human wants to see: the path (with query) and the host. */
export function urlParts(u) {
  if (!u) return { path: '', host: '' };
  try {
    const x = new URL(u);
    return { path: x.pathname + x.search + x.hash, host: x.host, pathname: x.pathname, params: x.searchParams };
  } catch {
    return { path: String(u), host: '', pathname: String(u) };
  }
}

export function hostOf(u) {
  if (!u) return '';
  try {
    return new URL(u).host.replace(/^www\./, '');
  } catch {
    return String(u);
  }
}

export function shortId(id) {
  if (!id) return '';
  return String(id).slice(0, 8);
}

export function visitorLabel(v) {
  if (!v) return '';
  if (v.user_id) return String(v.user_id);
  return 'Visitor ' + shortId(v.visitor || v.id);
}

/** A one-line summary of traits: the friendliest keys first. */
export function traitsSummary(traits) {
  if (!traits || typeof traits !== 'object') return '';
  const keys = Object.keys(traits);
  if (!keys.length) return '';
  const pref = ['name', 'email', 'plan', 'company'];
  keys.sort((a, b) => {
    const ia = pref.indexOf(a);
    const ib = pref.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  return keys
    .slice(0, 3)
    .map((k) => `${k}: ${scalar(traits[k])}`)
    .join(' · ');
}

export function scalar(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') {
    try {
      return JSON.stringify(v);
    } catch {
      return '[object]';
    }
  }
  return String(v);
}

export function json(v) {
  if (v === null || v === undefined) return '';
  try {
    const s = JSON.stringify(v);
    return s === '{}' ? '' : s;
  } catch {
    return '';
  }
}

export function titleCase(s) {
  if (!s) return '';
  return String(s).charAt(0).toUpperCase() + String(s).slice(1);
}

/**
 * Where the session came from: the `utm_source` (with `utm_medium` / `utm_campaign`) of its
 * landing page, else the referrer's host, else direct.
 */
export function sourceOf(landingUrl, referrer) {
  const p = urlParts(landingUrl).params;
  const utm = p && p.get('utm_source');
  if (utm) {
    const sub = [p.get('utm_medium'), p.get('utm_campaign')].filter(Boolean).join(' · ');
    return { label: utm, kind: 'utm', sub, detail: 'utm: ' + [utm, p.get('utm_medium'), p.get('utm_campaign')].filter(Boolean).join(' / ') };
  }
  if (referrer) return { label: hostOf(referrer), kind: 'ref', sub: '', detail: referrer };
  return { label: 'Direct', kind: 'direct', sub: '', detail: 'No referrer' };
}

export function describeTarget(to) {
  if (!to || typeof to !== 'object') return 'Unknown';
  if (to.all) return 'Everyone';
  if (to.visitor) return 'Visitor ' + shortId(to.visitor);
  if (to.session) return 'Session ' + shortId(to.session);
  if (to.tab) return 'Tab ' + shortId(to.tab);
  if (to.segment) return 'Segment ' + shortId(to.segment);
  return 'Unknown';
}

/** `datetime-local` value <-> RFC 3339 UTC. */
export function localInputToIso(v) {
  if (!v) return '';
  const t = new Date(v);
  return isFinite(t) ? t.toISOString() : '';
}
export function isoToLocalInput(iso) {
  const t = ms(iso);
  if (!isFinite(t)) return '';
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}
