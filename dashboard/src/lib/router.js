// Hash routing: #/sites/ID/live?visitor=V. The query part carries view state (filters, the open
// journey) so that every screen can be linked to and survives a reload.
import { signal } from '@preact/signals';

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const query = Object.fromEntries(new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)));
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path: '/' + parts.join('/'), parts, query };
}

export const route = signal(parse());
addEventListener('hashchange', () => {
  route.value = parse();
});

export function link(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return '#' + path + (s ? '?' + s : '');
}

export function navigate(path, query, { replace = false } = {}) {
  const h = link(path, query);
  if (h === location.hash) return;
  if (replace) {
    history.replaceState(null, '', h);
    route.value = parse();
  } else {
    location.hash = h.slice(1);
  }
}

/** Changes some query values of the current route, keeping the rest. */
export function setQuery(changes, opts) {
  const r = route.value;
  navigate(r.path, { ...r.query, ...changes }, opts);
}
