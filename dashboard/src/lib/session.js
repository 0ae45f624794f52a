// Who is signed in, their sites, and the live connection of the site being looked at.
import { signal, computed } from '@preact/signals';
import { api, onUnauthorized } from './api.js';
import { navigate, route } from './router.js';
import { LiveSite } from './live.js';

/** undefined while loading, null when signed out, else the account. */
export const me = signal(undefined);
export const bootError = signal(null);
/** null until loaded, then the list of sites with the caller's `role`. */
export const sites = signal(null);
export const live = signal(null);

const LAST_SITE = 'lookout.lastSite';

export function rememberSite(id) {
  try {
    localStorage.setItem(LAST_SITE, id);
  } catch {
    /* private mode */
  }
}
export function lastSite() {
  try {
    return localStorage.getItem(LAST_SITE);
  } catch {
    return null;
  }
}

function signedOut() {
  if (live.value) live.value.close();
  live.value = null;
  sites.value = null;
  me.value = null;
  const r = route.value;
  if (r.parts[0] !== 'login' && r.parts[0] !== 'signup') {
    navigate('/login', r.path !== '/' ? { next: r.path } : undefined, { replace: true });
  }
}

onUnauthorized(signedOut);

export async function boot() {
  bootError.value = null;
  try {
    const acc = await api.get('/me');
    await loadSites();
    me.value = acc;
  } catch (e) {
    if (e.status === 401) signedOut();
    else bootError.value = e;
  }
}

export async function loadSites() {
  const r = await api.get('/sites');
  sites.value = (r && r.items) || [];
  return sites.value;
}

export async function signedIn(account) {
  await loadSites();
  me.value = account;
}

export async function logout() {
  try {
    await api.post('/auth/logout');
  } catch {
    /* the cookie may already be gone */
  }
  signedOut();
  navigate('/login', undefined, { replace: true });
}

export const currentSiteId = computed(() => {
  const p = route.value.parts;
  return p[0] === 'sites' && p[1] && p[1] !== 'new' ? p[1] : null;
});

export const currentSite = computed(() => {
  const id = currentSiteId.value;
  const list = sites.value;
  if (!id || !list) return null;
  return list.find((s) => String(s.id) === id) || null;
});

/** Viewers read; admins (and API keys, whose role is null) also send and configure. */
export const canWrite = computed(() => {
  const s = currentSite.value;
  return !!s && s.role !== 'viewer';
});

/** Opens (or keeps) the admin socket of the site being looked at. */
export function ensureLive(siteId) {
  const cur = live.value;
  if (cur && cur.siteId === siteId) return cur;
  if (cur) cur.close();
  if (!siteId) {
    live.value = null;
    return null;
  }
  const l = new LiveSite(siteId, {
    onUnauthorized: () => {
      // A failed upgrade says nothing about why; ask the API whether the session still holds.
      api.get('/me').catch(() => {});
    },
  });
  live.value = l;
  l.connect();
  return l;
}

export function replaceSite(site) {
  const list = sites.value || [];
  const i = list.findIndex((s) => s.id === site.id);
  const merged = i >= 0 ? { ...list[i], ...site } : site;
  sites.value = i >= 0 ? list.map((s, j) => (j === i ? merged : s)) : list.concat([merged]);
}
