// The segments of the site being looked at, for the names on segment badges (the live table,
// the journey, the activity stream) and for the pickers of the composer and campaign forms.
// Loaded once per site, reloaded when a frame names a segment we do not know yet (created
// elsewhere), and replaced by the segment pages after each change.
import { signal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { api, sitePath } from './api.js';
import { shortId } from './format.js';

/** {site, items: [segment…] | null, names: Map(id → name), error} */
export const segmentStore = signal({ site: null, items: null, names: new Map(), error: null });

const NO_NAMES = new Map();
let inflight = null;
let inflightSite = null;
let lastUnknownReload = 0;
let trailing = 0;

function put(site, items, error = null) {
  const list = Array.isArray(items) ? items : [];
  segmentStore.value = { site, items: items ? list : null, names: new Map(list.map((s) => [s.id, s.name || s.id])), error };
}

/** Loads (or reloads) the site's segments; resolves with the list. */
export function loadSegments(site) {
  if (inflight && inflightSite === site) return inflight;
  inflightSite = site;
  inflight = api
    .get(sitePath(site, '/segments'))
    .then(
      (r) => {
        if (inflightSite === site) put(site, (r && r.items) || []);
        return (r && r.items) || [];
      },
      (e) => {
        const cur = segmentStore.value;
        if (cur.site !== site) put(site, null, e);
        else segmentStore.value = { ...cur, error: e };
        throw e;
      },
    )
    .finally(() => {
      if (inflightSite === site) inflight = null;
    });
  return inflight;
}

/** After a create, edit or delete on the segment pages. */
export function setSegmentItems(site, items) {
  put(site, items);
}

/** A frame named a segment we have no name for: reload, at most every few seconds. */
export function noteUnknownSegment(site) {
  if (trailing) return;
  const wait = lastUnknownReload + 3000 - Date.now();
  trailing = setTimeout(
    () => {
      trailing = 0;
      lastUnknownReload = Date.now();
      if (segmentStore.value.site === site) loadSegments(site).catch(() => {});
    },
    Math.max(0, wait),
  );
}

/**
 * The site's segments, loading them on first use (`fresh`: also once when the component
 * mounts, for pickers that must list a segment created a moment ago): {items, names, error}.
 */
export function useSegments(site, { fresh = false } = {}) {
  const s = segmentStore.value;
  const mine = s.site === site;
  useEffect(() => {
    if (site && (fresh || !mine)) loadSegments(site).catch(() => {});
  }, [site]);
  return mine ? s : { site, items: null, names: NO_NAMES, error: null };
}

export function segmentName(names, id) {
  return (names && names.get(id)) || 'Segment ' + shortId(id);
}
