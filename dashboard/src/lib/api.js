// REST client for /api. The dashboard never sees the login token: the server keeps it in the
// HttpOnly `lk_session` cookie, so every request is a same-origin fetch carrying that cookie.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};
/** Called whenever an authenticated request answers 401 (the session ended). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

const FALLBACK = {
  400: 'The request was malformed.',
  401: 'You are not signed in.',
  403: 'Your role on this site does not allow that.',
  404: 'Not found.',
  409: 'That conflicts with something that already exists.',
  413: 'That is too large.',
  422: 'Some values are not valid.',
  429: 'Too many requests; try again in a moment.',
};

export async function request(method, path, body, { signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' }, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api' + path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Cannot reach the Lookout server. Check your connection and try again.');
  }
  let data = null;
  const text = res.status === 204 ? '' : await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error;
    const e = new ApiError(
      res.status,
      (err && err.code) || 'http_' + res.status,
      (err && err.message) || FALLBACK[res.status] || `The server answered ${res.status}.`,
    );
    if (res.status === 401 && !path.startsWith('/auth/')) unauthorizedHandler(e);
    throw e;
  }
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, undefined, opts),
  post: (path, body, opts) => request('POST', path, body === undefined ? {} : body, opts),
  patch: (path, body, opts) => request('PATCH', path, body, opts),
  del: (path, opts) => request('DELETE', path, undefined, opts),
};

/** Builds `?a=1&b=2` from an object, skipping empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

export const sitePath = (site, rest = '') => `/sites/${encodeURIComponent(site)}${rest}`;
