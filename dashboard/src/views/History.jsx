// Page views, events and visitors from storage, with filters kept in the route and cursor
// pagination, plus a visitor search (by user id or by visitor id).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, qs, sitePath } from '../lib/api.js';
import { route, link, setQuery, navigate } from '../lib/router.js';
import { when, fullDate, urlParts, hostOf, shortId, json, titleCase, localInputToIso, isoToLocalInput, num } from '../lib/format.js';
import { PageHeader, Field, ErrorNote, Spinner, Empty, useId, cx } from '../components/ui.jsx';

const TABS = [
  { key: 'pageviews', label: 'Page views' },
  { key: 'events', label: 'Events' },
  { key: 'visitors', label: 'Visitors' },
];
const FILTERS = {
  pageviews: ['from', 'to', 'visitor', 'url'],
  events: ['from', 'to', 'visitor', 'name'],
  visitors: ['from', 'to', 'user_id'],
};
const PAGE = 50;

function VisitorLink({ site, id, label }) {
  return (
    <a class="mono" href={link(route.value.path, { ...route.value.query, visitor: id })} title={id}>
      {label || shortId(id)}
    </a>
  );
}

function PageviewRows({ items, site }) {
  return (
    <table class="table">
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Visitor</th>
          <th scope="col">Page</th>
          <th scope="col" class="minor">
            Referrer
          </th>
        </tr>
      </thead>
      <tbody>
        {items.map((p) => {
          const u = urlParts(p.url);
          return (
            <tr key={p.id}>
              <td class="nowrap mono" title={fullDate(p.at)}>
                {when(p.at)}
              </td>
              <td>
                <VisitorLink site={site} id={p.visitor} />
              </td>
              <td class="c-page">
                <div class="trunc" title={p.title || u.path}>
                  {p.title || u.path}
                </div>
                <div class="sub mono trunc" title={p.url}>
                  {u.path}
                </div>
              </td>
              <td class="minor trunc" title={p.referrer || ''}>
                {p.referrer ? hostOf(p.referrer) : <span class="muted">—</span>}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function EventRows({ items, site }) {
  return (
    <table class="table">
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Visitor</th>
          <th scope="col">Event</th>
          <th scope="col">Properties</th>
        </tr>
      </thead>
      <tbody>
        {items.map((e, i) => (
          <tr key={e.id || i}>
            <td class="nowrap mono" title={fullDate(e.at)}>
              {when(e.at)}
            </td>
            <td>
              <VisitorLink site={site} id={e.visitor} />
            </td>
            <td>
              <span class="evt">{e.name}</span>
            </td>
            <td class="mono sub trunc props" title={json(e.props)}>
              {json(e.props) || <span class="muted">—</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function VisitorRows({ items, site }) {
  return (
    <table class="table">
      <thead>
        <tr>
          <th scope="col">Visitor</th>
          <th scope="col">User</th>
          <th scope="col">First seen</th>
          <th scope="col">Last seen</th>
          <th scope="col" class="c-num">
            Sessions
          </th>
          <th scope="col" class="c-num">
            Pages
          </th>
          <th scope="col" class="minor">
            Device
          </th>
        </tr>
      </thead>
      <tbody>
        {items.map((v) => (
          <tr key={v.visitor}>
            <td>
              <VisitorLink site={site} id={v.visitor} />
            </td>
            <td class="trunc">{v.user_id ? String(v.user_id) : <span class="muted">—</span>}</td>
            <td class="nowrap" title={fullDate(v.first_seen)}>
              {when(v.first_seen)}
            </td>
            <td class="nowrap" title={fullDate(v.last_seen)}>
              {when(v.last_seen)}
            </td>
            <td class="c-num">{num(v.sessions)}</td>
            <td class="c-num">{num(v.pageviews)}</td>
            <td class="minor">{[titleCase(v.device), v.browser, v.os].filter(Boolean).join(' · ') || '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function VisitorSearch({ site }) {
  const [q, setQ] = useState('');
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState(null);
  const id = useId('find');
  async function submit(e) {
    e.preventDefault();
    const term = q.trim();
    setMsg(null);
    if (!term) return;
    setBusy(true);
    try {
      const base = sitePath(site.id);
      const [byId, byUser] = await Promise.all([
        /^[A-Za-z0-9_-]{8,64}$/.test(term)
          ? api.get(`${base}/visitors/${encodeURIComponent(term)}`).catch((err) => (err.status === 404 ? null : Promise.reject(err)))
          : null,
        api.get(`${base}/visitors` + qs({ user_id: term, limit: PAGE })).catch((err) => (err.status === 422 || err.status === 400 ? { items: [] } : Promise.reject(err))),
      ]);
      const users = (byUser && byUser.items) || [];
      if (byId) navigate(route.value.path, { ...route.value.query, visitor: byId.visitor || term });
      else if (users.length === 1) navigate(route.value.path, { tab: 'visitors', user_id: term, visitor: users[0].visitor });
      else if (users.length) setQuery({ tab: 'visitors', user_id: term, visitor: '' });
      else setMsg(`No visitor has the id or user id “${term}”.`);
    } catch (err) {
      setMsg(err.message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="search-form" onSubmit={submit} role="search">
      <label for={id} class="sr-only">
        Find a visitor by user id or visitor id
      </label>
      <input id={id} type="search" placeholder="User id or visitor id" value={q} onInput={(e) => setQ(e.currentTarget.value)} spellcheck={false} />
      <button type="submit" class="btn" disabled={busy || !q.trim()}>
        {busy ? 'Searching…' : 'Find'}
      </button>
      {msg ? (
        <span class="muted small" role="status">
          {msg}
        </span>
      ) : null}
    </form>
  );
}

function Filters({ tab, query }) {
  const keys = FILTERS[tab];
  const [vals, setVals] = useState({});
  useEffect(() => {
    setVals({
      from: isoToLocalInput(query.from),
      to: isoToLocalInput(query.to),
      visitor: query.visitor_f || '',
      url: query.url || '',
      name: query.name || '',
      user_id: query.user_id || '',
    });
  }, [tab, query.from, query.to, query.visitor_f, query.url, query.name, query.user_id]);
  const ids = { from: useId('from'), to: useId('to'), visitor: useId('vis'), url: useId('url'), name: useId('name'), user_id: useId('uid') };
  const set = (k) => (e) => setVals({ ...vals, [k]: e.currentTarget.value });
  function apply(e) {
    e.preventDefault();
    setQuery({
      from: localInputToIso(vals.from),
      to: localInputToIso(vals.to),
      visitor_f: keys.includes('visitor') ? vals.visitor.trim() : '',
      url: keys.includes('url') ? vals.url.trim() : '',
      name: keys.includes('name') ? vals.name.trim() : '',
      user_id: keys.includes('user_id') ? vals.user_id.trim() : '',
    });
  }
  function clear() {
    setQuery({ from: '', to: '', visitor_f: '', url: '', name: '', user_id: '' });
  }
  const any = ['from', 'to', 'visitor_f', 'url', 'name', 'user_id'].some((k) => query[k]);
  return (
    <form class="filters" onSubmit={apply} aria-label="Filters">
      <Field label="From" id={ids.from}>
        <input id={ids.from} type="datetime-local" value={vals.from} onInput={set('from')} />
      </Field>
      <Field label="To" id={ids.to}>
        <input id={ids.to} type="datetime-local" value={vals.to} onInput={set('to')} />
      </Field>
      {keys.includes('visitor') ? (
        <Field label="Visitor id" id={ids.visitor}>
          <input id={ids.visitor} value={vals.visitor} onInput={set('visitor')} spellcheck={false} placeholder="any" />
        </Field>
      ) : null}
      {keys.includes('url') ? (
        <Field label="URL starts with" id={ids.url}>
          <input id={ids.url} value={vals.url} onInput={set('url')} spellcheck={false} placeholder="https://example.com/pricing" />
        </Field>
      ) : null}
      {keys.includes('name') ? (
        <Field label="Event name" id={ids.name}>
          <input id={ids.name} value={vals.name} onInput={set('name')} spellcheck={false} placeholder="any" />
        </Field>
      ) : null}
      {keys.includes('user_id') ? (
        <Field label="User id" id={ids.user_id}>
          <input id={ids.user_id} value={vals.user_id} onInput={set('user_id')} spellcheck={false} placeholder="any" />
        </Field>
      ) : null}
      <div class="filters-actions">
        <button type="submit" class="btn btn-primary">
          Apply
        </button>
        {any ? (
          <button type="button" class="btn" onClick={clear}>
            Clear
          </button>
        ) : null}
      </div>
    </form>
  );
}

export function History({ site }) {
  const query = route.value.query;
  const tab = FILTERS[query.tab] ? query.tab : 'pageviews';
  const [state, setState] = useState({ items: [], next: null, loading: true, error: null, more: false });
  const seq = useRef(0);
  const params = {
    from: query.from,
    to: query.to,
    visitor: tab !== 'visitors' ? query.visitor_f : undefined,
    url: tab === 'pageviews' ? query.url : undefined,
    name: tab === 'events' ? query.name : undefined,
    user_id: tab === 'visitors' ? query.user_id : undefined,
  };
  const key = tab + JSON.stringify(params);

  async function load(cursor) {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: !cursor, more: !!cursor, error: null, items: cursor ? s.items : [] }));
    try {
      const r = await api.get(sitePath(site.id, '/' + tab) + qs({ ...params, limit: PAGE, cursor }));
      if (n !== seq.current) return;
      setState((s) => ({ items: cursor ? s.items.concat(r.items || []) : r.items || [], next: r.next_cursor || null, loading: false, more: false, error: null }));
    } catch (e) {
      if (n !== seq.current) return;
      setState((s) => ({ ...s, loading: false, more: false, error: e }));
    }
  }
  useEffect(() => {
    load(null);
  }, [site.id, key]);

  const Rows = tab === 'pageviews' ? PageviewRows : tab === 'events' ? EventRows : VisitorRows;
  return (
    <div class="page page-wide">
      <PageHeader title="History" sub="Everything recorded on the site, newest first.">
        <VisitorSearch site={site} />
      </PageHeader>
      <div class="tabs" role="tablist" aria-label="History">
        {TABS.map((t) => (
          <a
            key={t.key}
            role="tab"
            aria-selected={tab === t.key}
            class={cx('tab', tab === t.key && 'tab-on')}
            href={link(route.value.path, { tab: t.key, from: query.from, to: query.to })}
          >
            {t.label}
          </a>
        ))}
      </div>
      <section class="card" aria-label={TABS.find((t) => t.key === tab).label}>
        <Filters tab={tab} query={query} />
        {state.error ? <ErrorNote error={state.error} onRetry={() => load(null)} /> : null}
        {state.loading ? (
          <Spinner />
        ) : !state.items.length && !state.error ? (
          <Empty title="Nothing recorded for these filters" icon="∅">
            Widen the time range or clear the filters.
          </Empty>
        ) : (
          <div class="table-scroll">
            <Rows items={state.items} site={site} />
          </div>
        )}
        <div class="load-more">
          <span class="muted small" aria-live="polite">
            {state.items.length ? `${num(state.items.length)} shown` : ''}
          </span>
          {state.next ? (
            <button type="button" class="btn" onClick={() => load(state.next)} disabled={state.more}>
              {state.more ? 'Loading…' : 'Load more'}
            </button>
          ) : state.items.length ? (
            <span class="muted small">That is all.</span>
          ) : null}
        </div>
      </section>
    </div>
  );
}
