// Everyone on the site now: a dense, keyed table updated in place from the admin socket, a
// "right now" panel grouping visitors by page, and a stream of what they do.
import { Component } from 'preact';
import { useLayoutEffect, useMemo, useState } from 'preact/hooks';
import { live } from '../lib/session.js';
import { link, route, setQuery } from '../lib/router.js';
import { clock, shortId, traitsSummary, titleCase, scalar, json, num } from '../lib/format.js';
import { ConnectionStatus } from '../components/Shell.jsx';
import { Since, Spinner, Empty, cx, useId, Bar } from '../components/ui.jsx';
import { SegmentBadges } from '../components/SegmentBadges.jsx';
import { useSegments, segmentName } from '../lib/segments.js';

const COLUMNS = [
  { key: 'visitor', label: 'Visitor' },
  { key: 'page', label: 'Current page' },
  { key: 'onpage', label: 'On page', num: true },
  { key: 'pages', label: 'Pages', num: true },
  { key: 'tabs', label: 'Tabs', num: true, minor: true },
  { key: 'source', label: 'Source' },
  { key: 'segments', label: 'Segments' },
  { key: 'device', label: 'Device · browser · OS', minor: true },
  { key: 'event', label: 'Last event', minor: true },
];

const SORTERS = {
  started: (a, b) => b.startedAt - a.startedAt,
  visitor: (a, b) => label(a).localeCompare(label(b)),
  page: (a, b) => a.path.localeCompare(b.path),
  onpage: (a, b) => a.since - b.since,
  pages: (a, b) => b.pageviews - a.pageviews,
  tabs: (a, b) => b.tabs.length - a.tabs.length,
  source: (a, b) => a.source.label.localeCompare(b.source.label),
  segments: (a, b) => b.segments.length - a.segments.length,
  device: (a, b) => [a.device, a.browser, a.os].join(' ').localeCompare([b.device, b.browser, b.os].join(' ')),
  event: (a, b) => ((b.lastEvent && b.lastEvent.at) || 0) - ((a.lastEvent && a.lastEvent.at) || 0),
};

function label(v) {
  return v.user_id ? String(v.user_id) : 'Visitor ' + shortId(v.id);
}

function matches(v, q, names) {
  if (!q) return true;
  const segs = v.segments.length ? v.segments.map((id) => segmentName(names, id)).join(' ') : '';
  const hay = [v.id, v.user_id, v.url, v.title, v.source.label, v.source.sub, segs, v.browser, v.os, v.device, traitsSummary(v.traits)]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
  return hay.includes(q);
}

/** One visitor. Re-renders only when its visitor object (replaced on change) or selection changes. */
class Row extends Component {
  shouldComponentUpdate(n) {
    const p = this.props;
    return n.v !== p.v || n.selected !== p.selected || n.href !== p.href || n.index !== p.index || (n.v.segments.length > 0 && n.names !== p.names);
  }
  render({ v, selected, href, index, names, siteId }) {
    const traits = traitsSummary(v.traits);
    return (
      <tr class={cx('row', selected && 'row-selected')} data-visitor={v.id} aria-rowindex={index + 2} onClick={(e) => {
        if (e.target.closest('a, button')) return;
        location.hash = href.slice(1);
      }}>
        <td class="c-visitor">
          <a href={href} class="visitor-link" title={v.id}>
            <span class={cx('who-dot', v.user_id && 'who-known')} aria-hidden="true" />
            <span class={cx('visitor-name', !v.user_id && 'mono anon')}>{v.user_id ? String(v.user_id) : shortId(v.id)}</span>
          </a>
          {traits ? (
            <div class="sub trunc" title={traits}>
              {traits}
            </div>
          ) : v.user_id ? (
            <div class="sub mono">{shortId(v.id)}</div>
          ) : null}
        </td>
        <td class="c-page">
          <div class="trunc page-title" title={v.title || v.path}>
            {v.title || v.path}
          </div>
          <div class="sub mono trunc" title={v.url}>
            {v.path}
          </div>
        </td>
        <td class="c-num c-onpage">
          <Since at={v.since} />
        </td>
        <td class="c-num c-pages" data-label="Pages">{v.pageviews}</td>
        <td class="c-num minor">{v.tabs.length || 1}</td>
        <td class="c-source" data-label="From">
          <span class={cx('src', 'src-' + v.source.kind)} title={v.source.detail}>
            {v.source.label}
          </span>
          {v.source.sub ? (
            <div class="sub trunc src-sub" title={v.source.detail}>
              {v.source.sub}
            </div>
          ) : null}
        </td>
        <td class="c-segs">
          <SegmentBadges ids={v.segments} names={names} siteId={siteId} max={2} />
        </td>
        <td class="minor c-device trunc">{[titleCase(v.device), v.browser, v.os].filter(Boolean).join(' · ') || '—'}</td>
        <td class="minor trunc">{v.lastEvent ? <span class="evt evt-trunc" title={v.lastEvent.name}>{v.lastEvent.name}</span> : <span class="muted">—</span>}</td>
      </tr>
    );
  }
}

const OVERSCAN = 8;

/**
 * Renders only the rows in (and near) the scroll container's viewport: with hundreds of
 * visitors, laying out and painting every row on every update is what costs frames, not the
 * diffing. Rows have a fixed height (CSS), measured from the first rendered row.
 */
function useRowWindow(el, count) {
  const [view, setView] = useState({ top: 0, height: 800, rowH: 50 });
  // DOM reads happen only in scroll and resize callbacks, where layout is already clean; a
  // change of the row count alone recomputes the window from these numbers, without forcing a
  // synchronous layout on every live update.
  useLayoutEffect(() => {
    if (!el) return;
    const measure = () => {
      const row = el.querySelector('tr.row');
      const h = row ? row.offsetHeight : 0;
      const head = el.querySelector('thead');
      const next = {
        top: Math.max(0, el.scrollTop - (head ? head.offsetHeight : 0)),
        height: el.clientHeight || 800,
        rowH: h > 4 ? h : 50,
      };
      setView((v) => (v.top === next.top && v.height === next.height && v.rowH === next.rowH ? v : next));
    };
    let raf = 0;
    const onScroll = () => {
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(measure);
    };
    el.addEventListener('scroll', onScroll, { passive: true });
    const ro = new ResizeObserver(onScroll);
    ro.observe(el);
    return () => {
      cancelAnimationFrame(raf);
      el.removeEventListener('scroll', onScroll);
      ro.disconnect();
    };
  }, [el]);
  const start = Math.max(0, Math.min(Math.floor(view.top / view.rowH) - OVERSCAN, count - 1));
  const end = Math.min(count, Math.max(start + 1, Math.ceil((view.top + view.height) / view.rowH) + OVERSCAN));
  return { start, end, rowH: view.rowH };
}

function Spacer({ height, cols }) {
  if (height <= 0) return null;
  return (
    <tr class="spacer" aria-hidden="true">
      <td colSpan={cols} style={{ height: height + 'px' }} />
    </tr>
  );
}

function SortHeader({ col, sort, dir, onSort }) {
  const on = sort === col.key;
  return (
    <th
      scope="col"
      class={cx(col.num && 'c-num', col.minor && 'minor')}
      aria-sort={on ? (dir > 0 ? 'ascending' : 'descending') : 'none'}
    >
      <button type="button" class="th-btn" onClick={() => onSort(col.key)}>
        {col.label}
        <span class="sort-mark" aria-hidden="true">
          {on ? (dir > 0 ? '▲' : '▼') : ''}
        </span>
      </button>
    </th>
  );
}

function RightNow({ list, total, page, onPage }) {
  const groups = useMemo(() => {
    const m = new Map();
    for (const v of list) {
      const k = v.pathname || '/';
      const g = m.get(k);
      if (g) {
        g.count++;
        if (!g.title && v.title) g.title = v.title;
      } else m.set(k, { path: k, title: v.title, count: 1 });
    }
    return [...m.values()].sort((a, b) => b.count - a.count || a.path.localeCompare(b.path));
  }, [list]);
  const max = groups.length ? groups[0].count : 0;
  const shown = groups.slice(0, 12);
  return (
    <section class="card panel" aria-labelledby="rn-h">
      <div class="card-head">
        <h2 id="rn-h">Right now</h2>
        <span class="muted small">{num(total)} on {groups.length} {groups.length === 1 ? 'page' : 'pages'}</span>
      </div>
      {shown.length ? (
        <ul class="rn-list">
          {shown.map((g) => (
            <li key={g.path}>
              <button
                type="button"
                class={cx('rn-item', page === g.path && 'rn-on')}
                aria-pressed={page === g.path}
                onClick={() => onPage(page === g.path ? '' : g.path)}
                title={g.title ? `${g.title} — ${g.path}` : g.path}
              >
                <span class="rn-text">
                  <span class="trunc rn-title">{g.title || g.path}</span>
                  <span class="trunc sub mono">{g.path}</span>
                </span>
                <span class="rn-count">{g.count}</span>
                <Bar value={g.count} max={max} />
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted small pad">No one yet.</p>
      )}
      {groups.length > shown.length ? <p class="muted small pad">and {groups.length - shown.length} more pages</p> : null}
    </section>
  );
}

const ACT_LABEL = { joined: 'arrived', pageview: 'viewed', left: 'left', event: 'event', identify: 'identified', message: 'message', segment: 'entered' };

function Activity({ items, siteId, names }) {
  return (
    <section class="card panel" aria-labelledby="act-h">
      <div class="card-head">
        <h2 id="act-h">Activity</h2>
      </div>
      {items.length ? (
        <ol class="act-list">
          {items.slice(0, 40).map((a) => (
            <li key={a.id} class={'act act-' + a.kind}>
              <span class="act-time mono">{clock(a.at)}</span>
              <span class="act-body">
                <a href={link(`/sites/${siteId}/live`, { ...route.value.query, visitor: a.visitor })} class="act-who">
                  {a.label ? String(a.label) : 'Visitor ' + shortId(a.visitor)}
                </a>{' '}
                <span class="act-kind">{ACT_LABEL[a.kind]}</span>{' '}
                {a.kind === 'event' ? (
                  <span class="evt" title={json(a.props)}>
                    {a.name}
                  </span>
                ) : a.kind === 'message' ? (
                  <span>{a.status}</span>
                ) : a.kind === 'segment' ? (
                  <span>{a.segments.map((id) => segmentName(names, id)).join(', ')}</span>
                ) : a.kind === 'pageview' || a.kind === 'joined' ? (
                  <span class="trunc-inline" title={a.url}>
                    {a.title || scalar(a.url)}
                  </span>
                ) : null}
              </span>
            </li>
          ))}
        </ol>
      ) : (
        <p class="muted small pad">Page views, events and message outcomes appear here as they happen.</p>
      )}
    </section>
  );
}

export function Live({ site }) {
  const l = live.value;
  const r = route.value;
  const version = l ? l.version.value : 0;
  const status = l ? l.status.value : 'closed';
  const hadSnapshot = l ? l.hadSnapshot.value : false;
  const activity = l ? l.activity.value : [];
  const [sort, setSort] = useState('started');
  const [dir, setDir] = useState(-1);
  const [q, setQ] = useState('');
  const page = r.query.page || '';
  const searchId = useId('live-q');
  const { names } = useSegments(site.id);

  const all = useMemo(() => (l ? [...l.visitors.values()] : []), [l, version]);
  const list = useMemo(() => {
    const needle = q.trim().toLowerCase();
    const out = all.filter((v) => (!page || v.pathname === page) && matches(v, needle, names));
    const f = SORTERS[sort] || SORTERS.started;
    // Default direction of each sorter is the useful one; the header flips it.
    out.sort(sort === 'started' || dir < 0 ? f : (a, b) => f(b, a));
    return out;
  }, [all, sort, dir, q, page, names]);

  const identified = useMemo(() => all.reduce((n, v) => n + (v.user_id ? 1 : 0), 0), [all]);
  const mobile = useMemo(() => all.reduce((n, v) => n + (/mobile|phone|tablet/i.test(v.device || '') ? 1 : 0), 0), [all]);
  const tabs = useMemo(() => all.reduce((n, v) => n + (v.tabs.length || 1), 0), [all]);

  function onSort(key) {
    if (sort === key) setDir(-dir);
    else {
      setSort(key);
      setDir(-1);
    }
  }

  const selected = r.query.visitor;
  const base = `/sites/${site.id}/live`;
  const [scrollEl, setScrollEl] = useState(null);
  const win = useRowWindow(scrollEl, list.length);

  return (
    <div class="page page-wide live">
      <header class="page-header">
        <div>
          <h1>Live</h1>
          <p class="page-sub">Everyone on {site.name} right now.</p>
        </div>
        <div class="page-actions">
          <ConnectionStatus />
        </div>
      </header>
      <div class="strip" role="group" aria-label="Summary">
        <div class={cx('strip-item', all.length && 'strip-live')}>
          <span class="strip-value" data-testid="live-count">{num(all.length)}</span>
          <span class="strip-label">{all.length === 1 ? 'visitor now' : 'visitors now'}</span>
        </div>
        <div class="strip-item">
          <span class="strip-value">{num(tabs)}</span>
          <span class="strip-label">open tabs</span>
        </div>
        <div class="strip-item">
          <span class="strip-value">{num(identified)}</span>
          <span class="strip-label">identified</span>
        </div>
        <div class="strip-item">
          <span class="strip-value">{all.length ? Math.round((100 * mobile) / all.length) + '%' : '—'}</span>
          <span class="strip-label">on mobile</span>
        </div>
      </div>
      <div class="live-grid">
        <section class="card live-table-card" aria-labelledby="lt-h">
          <div class="card-head">
            <h2 id="lt-h">Visitors</h2>
            <div class="table-tools">
              {page ? (
                <button type="button" class="chip" onClick={() => setQuery({ page: '' }, { replace: true })} aria-label={`Remove page filter ${page}`}>
                  {page} ×
                </button>
              ) : null}
              <label for={searchId} class="sr-only">
                Filter visitors
              </label>
              <input
                id={searchId}
                type="search"
                class="input-sm"
                placeholder="Filter by page, user, source, segment…"
                value={q}
                onInput={(e) => setQ(e.currentTarget.value)}
              />
            </div>
          </div>
          {!hadSnapshot && status !== 'forbidden' ? (
            <Spinner label="Connecting to the live feed…" />
          ) : status === 'forbidden' ? (
            <Empty title="No access" icon="⊘">
              You are not a member of this site.
            </Empty>
          ) : !all.length ? (
            <Empty title="Nobody is on the site right now" icon="◌">
              Visitors appear here the moment a page with the snippet loads.{' '}
              <a href={link(`/sites/${site.id}/setup`)}>Check the installation</a>
            </Empty>
          ) : (
            <div class="table-scroll" ref={setScrollEl}>
              <table class="table table-live" aria-describedby="lt-h" aria-rowcount={list.length + 1}>
                <colgroup>
                  {COLUMNS.map((c) => (
                    <col key={c.key} class={cx('col-' + c.key, c.minor && 'minor')} />
                  ))}
                </colgroup>
                <thead>
                  <tr>
                    {COLUMNS.map((c) => (
                      <SortHeader col={c} key={c.key} sort={sort} dir={dir} onSort={onSort} />
                    ))}
                  </tr>
                </thead>
                <tbody>
                  <Spacer height={win.start * win.rowH} cols={COLUMNS.length} />
                  {list.slice(win.start, win.end).map((v, i) => (
                    <Row key={v.id} v={v} index={win.start + i} selected={selected === v.id} href={link(base, { page, visitor: v.id })} names={names} siteId={site.id} />
                  ))}
                  <Spacer height={(list.length - win.end) * win.rowH} cols={COLUMNS.length} />
                </tbody>
              </table>
              {!list.length ? <p class="muted pad">No visitor matches this filter.</p> : null}
            </div>
          )}
        </section>
        <div class="live-side">
          <RightNow list={all} total={all.length} page={page} onPage={(p) => setQuery({ page: p }, { replace: true })} />
          <Activity items={activity} siteId={site.id} names={names} />
        </div>
      </div>
    </div>
  );
}
