// Shared by the segment and campaign pages: the rule vocabulary of docs/TARGETING.md, drafts of
// conditions as form state and back, one-line summaries, and where a server error points.
import { segmentName } from '../../lib/segments.js';

export const MATCH_KINDS = [
  { value: 'prefix', label: 'starts with' },
  { value: 'exact', label: 'is exactly' },
  { value: 'glob', label: 'matches the pattern' },
  { value: 'regex', label: 'matches the regex' },
];
const MATCH_LABEL = Object.fromEntries(MATCH_KINDS.map((m) => [m.value, m.label]));

export const CONDITION_TYPES = [
  { type: 'current_url', label: 'Is on a page now' },
  { type: 'pages', label: 'Viewed pages this session' },
  { type: 'item', label: 'Viewed items (products, cars…)' },
  { type: 'time_on_site', label: 'Time on the site' },
  { type: 'time_on_page', label: 'Time on the current page' },
  { type: 'sessions', label: 'Number of sessions' },
  { type: 'referrer', label: 'Came from (referrer)' },
  { type: 'utm', label: 'UTM parameter of the landing page' },
  { type: 'device', label: 'Device' },
  { type: 'trait', label: 'User trait' },
  { type: 'event', label: 'Did a custom event' },
];

export const UTM_PARAMS = ['source', 'medium', 'campaign', 'term', 'content'];
export const DEVICES = ['desktop', 'mobile', 'bot', 'appliance', 'other'];

export const UNITS = [
  { value: 1, label: 'seconds', short: 's' },
  { value: 60, label: 'minutes', short: 'min' },
  { value: 3600, label: 'hours', short: 'h' },
  { value: 86400, label: 'days', short: 'd' },
];

/** Seconds → {amount, unit} in the largest unit that divides them. */
export function toDuration(seconds, fallbackUnit = 1) {
  const s = Number(seconds);
  if (seconds === null || seconds === undefined || seconds === '' || !isFinite(s)) return { amount: '', unit: fallbackUnit };
  for (const u of [...UNITS].reverse()) if (s >= u.value && s % u.value === 0) return { amount: String(s / u.value), unit: u.value };
  return { amount: String(s), unit: 1 };
}

/** {amount, unit} → seconds, '' when empty, or the text when it is not a number (the server names it). */
export function fromDuration(d) {
  const t = String(d.amount ?? '').trim();
  if (!t) return '';
  const n = Number(t);
  return isFinite(n) ? Math.round(n * d.unit) : t;
}

export function fmtSeconds(s) {
  const d = toDuration(s);
  if (d.amount === '') return '—';
  const u = UNITS.find((x) => x.value === d.unit);
  return `${d.amount} ${u.short}`;
}

/** A number field's text → a number, nothing when empty, or the text itself (the server refuses it by name). */
export function numOrText(s) {
  const t = String(s ?? '').trim();
  if (!t) return undefined;
  const n = Number(t);
  return isFinite(n) ? n : t;
}

const str = (v) => (v === null || v === undefined ? '' : String(v));

/** A JSON value typed by hand: numbers, true/false/null and quoted or bracketed JSON parse; the rest is text. */
export function parseLoose(s) {
  const t = String(s).trim();
  if (/^(true|false|null)$/.test(t) || /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t) || /^["{[]/.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      /* plain text */
    }
  }
  return t;
}

export function formatLoose(v) {
  if (typeof v === 'string') return parseLoose(v) === v.trim() ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

let keySeq = 0;

/** A condition of the API → form state (strings). */
export function conditionDraft(c) {
  const x = c || { type: 'current_url' };
  const props = x.props && typeof x.props === 'object' ? Object.entries(x.props).map(([k, v]) => ({ k, v: formatLoose(v) })) : [];
  return {
    key: ++keySeq,
    type: x.type || 'current_url',
    match: x.match || 'prefix',
    value: x.type === 'trait' ? (x.value === undefined || x.value === null ? '' : formatLoose(x.value)) : str(x.value),
    min: x.type === 'pages' || x.type === 'item' || x.type === 'event' ? (x.min === 1 || x.min == null ? '' : str(x.min)) : str(x.min),
    max: str(x.max),
    brand: str(x.brand),
    model: str(x.model),
    category: str(x.category),
    name: str(x.name),
    min_price: str(x.min_price),
    max_price: str(x.max_price),
    duration: toDuration(x.min_seconds, 60),
    param: (x.param || 'source').replace(/^utm_/, ''),
    device: x.type === 'device' ? str(x.value) || 'mobile' : 'mobile',
    key_: str(x.key),
    props: props.length ? props : [],
  };
}

/** Form state → a condition of the API. Empty optional fields are left out. */
export function conditionOf(d) {
  const out = { type: d.type };
  const set = (k, v) => {
    if (v !== undefined && v !== '') out[k] = v;
  };
  switch (d.type) {
    case 'current_url':
    case 'referrer':
      out.match = d.match;
      out.value = d.value.trim();
      break;
    case 'pages':
      out.match = d.match;
      out.value = d.value.trim();
      set('min', numOrText(d.min));
      break;
    case 'item':
      for (const k of ['brand', 'model', 'category', 'name']) set(k, d[k].trim());
      set('min_price', numOrText(d.min_price));
      set('max_price', numOrText(d.max_price));
      set('min', numOrText(d.min));
      break;
    case 'time_on_site':
    case 'time_on_page':
      set('min_seconds', fromDuration(d.duration));
      break;
    case 'sessions':
      set('min', numOrText(d.min));
      set('max', numOrText(d.max));
      break;
    case 'utm':
      out.param = d.param;
      out.value = d.value.trim();
      break;
    case 'device':
      out.value = d.device;
      break;
    case 'trait':
      out.key = d.key_.trim();
      if (d.value.trim()) out.value = parseLoose(d.value);
      break;
    case 'event': {
      out.name = d.name.trim();
      const props = {};
      for (const p of d.props) if (p.k.trim()) props[p.k.trim()] = parseLoose(p.v);
      if (Object.keys(props).length) out.props = props;
      set('min', numOrText(d.min));
      break;
    }
    default:
      break;
  }
  return out;
}

const plural = (n, one, many) => `${n} ${Number(n) === 1 ? one : many}`;
const quote = (v) => `“${v}”`;

/** One line describing a condition. */
export function conditionSummary(c) {
  if (!c || typeof c !== 'object') return '';
  const m = MATCH_LABEL[c.match] || c.match;
  const min = c.min == null ? 1 : c.min;
  switch (c.type) {
    case 'current_url':
      return `Is on a page that ${m} ${c.value}`;
    case 'pages':
      return `Viewed ${min > 1 ? 'at least ' + plural(min, 'page', 'pages') : 'a page'} that ${m} ${c.value}`;
    case 'item': {
      const attrs = ['brand', 'model', 'category', 'name'].filter((k) => c[k]).map((k) => `${k} ${quote(c[k])}`);
      if (c.min_price != null && c.max_price != null) attrs.push(`price ${c.min_price}–${c.max_price}`);
      else if (c.min_price != null) attrs.push(`price ≥ ${c.min_price}`);
      else if (c.max_price != null) attrs.push(`price ≤ ${c.max_price}`);
      return `Viewed ${min > 1 ? 'at least ' + plural(min, 'item', 'items') : 'an item'} with ${attrs.join(', ') || 'any attributes'}`;
    }
    case 'time_on_site':
      return `On the site for at least ${fmtSeconds(c.min_seconds)}`;
    case 'time_on_page':
      return `On one page for at least ${fmtSeconds(c.min_seconds)}`;
    case 'sessions':
      if (c.min != null && c.max != null) return c.min === c.max ? `Exactly ${plural(c.min, 'session', 'sessions')}` : `${c.min} to ${c.max} sessions`;
      if (c.min != null) return `At least ${plural(c.min, 'session', 'sessions')}`;
      return c.max === 1 ? 'A new visitor (first session)' : `At most ${plural(c.max, 'session', 'sessions')}`;
    case 'referrer':
      return `Came from a referrer that ${m} ${c.value}`;
    case 'utm':
      return `utm_${c.param} is ${quote(c.value)}`;
    case 'device':
      return `Device is ${c.value}`;
    case 'trait':
      return c.value === undefined || c.value === null ? `Has the trait ${quote(c.key)}` : `Trait ${quote(c.key)} is ${JSON.stringify(c.value)}`;
    case 'event': {
      const props = c.props && Object.keys(c.props).length ? ` with ${Object.entries(c.props).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}` : '';
      return `Did ${quote(c.name)}${min > 1 ? ' at least ' + plural(min, 'time', 'times') : ''}${props}`;
    }
    default:
      return c.type;
  }
}

/** One line describing a campaign's trigger. */
export function triggerSummary(t, names) {
  if (!t) return '';
  switch (t.type) {
    case 'segment_entered':
      return `Enters ${quote(segmentName(names, t.segment))}`;
    case 'pageview':
      return `Views a page that ${MATCH_LABEL[t.match] || t.match} ${t.value}`;
    case 'event':
      return `Does the event ${quote(t.name)}`;
    case 'time_on_page':
      return `Stays ${fmtSeconds(t.seconds)} on a page`;
    default:
      return t.type;
  }
}

export function goalSummary(g) {
  if (!g) return 'No goal';
  if (g.type === 'pageview') return `Views a page that ${MATCH_LABEL[g.match] || g.match} ${g.value}`;
  if (g.type === 'event') return `Does the event ${quote(g.name)}`;
  return g.type;
}

const ROOTS = new Set([
  'name', 'description', 'match', 'conditions', 'trigger', 'segment', 'message', 'frequency', 'schedule', 'goal',
  'goal_window_seconds', 'control_percent', 'test_visitor', 'priority', 'enabled',
]);

/**
 * Where an `invalid_rule` message points: `conditions[2].min must be 1 to 10000` →
 * {root: 'conditions', index: 2, field: 'min', path}; null when it names no known field.
 */
export function errorTarget(message) {
  const m = /^([a-z_]+)(?:\[(\d+)\])?((?:\.[a-z_]+)*)/i.exec(String(message || ''));
  if (!m || !ROOTS.has(m[1])) return null;
  const rest = m[3] ? m[3].slice(1) : '';
  return { root: m[1], index: m[2] !== undefined ? Number(m[2]) : null, field: rest, path: m[0] };
}

export const pctText = (x) => (x === null || x === undefined || !isFinite(x) ? '—' : `${(Math.round(x * 1000) / 10).toLocaleString()}%`);
export const liftText = (x) => (x === null || x === undefined || !isFinite(x) ? '—' : `${x >= 0 ? '+' : '−'}${(Math.round(Math.abs(x) * 1000) / 10).toLocaleString()}%`);
