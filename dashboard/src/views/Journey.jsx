// A visitor's journey, in a side panel over any screen (?visitor=V in the route): this
// session's pages with durations, growing live, their events, the messages they received and
// their earlier sessions.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, qs, sitePath } from '../lib/api.js';
import { live, canWrite } from '../lib/session.js';
import { link, setQuery } from '../lib/router.js';
import {
  clock, when, fullDate, duration, ms, urlParts, hostOf, shortId, titleCase, scalar, json, ago, sourceOf,
} from '../lib/format.js';
import { Since, Spinner, ErrorNote, Badge, CopyButton, Bar, cx } from '../components/ui.jsx';
import { SegmentBadges } from '../components/SegmentBadges.jsx';
import { useSegments } from '../lib/segments.js';

const pvKey = (p) => `${p.tab || ''}|${p.url || ''}|${ms(p.at)}`;
const evKey = (e) => `${e.name || ''}|${ms(e.at)}`;

function mergeBy(list, add, key) {
  const seen = new Set(list.map(key));
  const extra = add.filter((x) => !seen.has(key(x)));
  return extra.length ? extra.concat(list) : list;
}

function Section({ title, count, children, actions }) {
  return (
    <section class="j-section">
      <div class="j-section-head">
        <h3>
          {title}
          {count !== undefined ? <span class="count">{count}</span> : null}
        </h3>
        {actions}
      </div>
      {children}
    </section>
  );
}

function Timeline({ pages, liveTabs }) {
  // Durations: until the next page view in the same tab; the open page of a live tab ticks.
  const tabIndex = new Map();
  for (const p of pages) if (!tabIndex.has(p.tab)) tabIndex.set(p.tab, tabIndex.size + 1);
  const multi = tabIndex.size > 1;
  const rows = pages.map((p, i) => {
    let next = null;
    for (let j = i + 1; j < pages.length; j++) if (pages[j].tab === p.tab) {
      next = pages[j];
      break;
    }
    const at = ms(p.at);
    const lt = liveTabs && liveTabs.get(p.tab);
    const current = !next && lt && lt.url === p.url;
    return { p, at, dur: next ? ms(next.at) - at : null, current };
  });
  return (
    <ol class="timeline" aria-label="Pages in this session">
      {rows.map(({ p, at, dur, current }, i) => {
        const u = urlParts(p.url);
        return (
          <li key={pvKey(p) + i} class={cx('tl-item', current && 'tl-current')} data-url={p.url}>
            <span class="tl-dot" aria-hidden="true" />
            <div class="tl-main">
              <div class="tl-title trunc" title={p.title || u.path}>
                {p.title || u.path || '(untitled)'}
              </div>
              <div class="sub mono trunc" title={p.url}>
                {u.path}
              </div>
              {i === 0 && p.referrer ? (
                <div class="sub trunc" title={p.referrer}>
                  from {hostOf(p.referrer)}
                </div>
              ) : null}
            </div>
            <div class="tl-meta">
              <span class="mono" title={fullDate(p.at)}>
                {clock(p.at)}
              </span>
              <span class="tl-dur">
                {current ? (
                  <>
                    <span class="live-dot" aria-hidden="true" />
                    <Since at={at} />
                  </>
                ) : dur !== null ? (
                  duration(dur)
                ) : (
                  '—'
                )}
              </span>
              {multi ? <span class="tab-tag">tab {tabIndex.get(p.tab)}</span> : null}
            </div>
          </li>
        );
      })}
    </ol>
  );
}

function SessionRow({ site, visitorId, s }) {
  const [open, setOpen] = useState(false);
  const [pages, setPages] = useState(null);
  const [error, setError] = useState(null);
  async function toggle() {
    const o = !open;
    setOpen(o);
    if (o && !pages) {
      try {
        const r = await api.get(sitePath(site.id, '/pageviews') + qs({ visitor: visitorId, session: s.session, limit: 200 }));
        setPages((r.items || []).slice().reverse());
      } catch (e) {
        setError(e);
      }
    }
  }
  const len = ms(s.last_seen) - ms(s.started_at);
  return (
    <li class="session">
      <button type="button" class="session-btn" aria-expanded={open} onClick={toggle}>
        <span class="caret-r" aria-hidden="true">
          {open ? '▾' : '▸'}
        </span>
        <span class="session-when" title={fullDate(s.started_at)}>
          {when(s.started_at)}
        </span>
        <span class="muted">
          {s.pageviews} {s.pageviews === 1 ? 'page' : 'pages'}
          {isFinite(len) && len > 0 ? ' · ' + duration(len) : ''}
        </span>
        <span class="muted trunc session-ref">{s.referrer ? 'from ' + hostOf(s.referrer) : 'direct'}</span>
      </button>
      {open ? (
        error ? (
          <ErrorNote error={error} />
        ) : pages ? (
          pages.length ? (
            <Timeline pages={pages} />
          ) : (
            <p class="muted small">No pages recorded.</p>
          )
        ) : (
          <Spinner inline />
        )
      ) : null}
    </li>
  );
}

const STATUS_ORDER = ['delivered', 'shown', 'clicked', 'dismissed'];

function MessageItem({ m }) {
  const msg = m.message || {};
  const st = Array.isArray(m.statuses) ? m.statuses : [];
  const have = new Map();
  for (const s of st) if (!have.has(s.status)) have.set(s.status, s.at);
  return (
    <li class="j-msg">
      <div class="j-msg-head">
        <span class={'style-tag style-' + msg.style}>{msg.style || 'toast'}</span>
        <strong class="trunc">{msg.title || msg.body || '(no text)'}</strong>
        <span class="muted small" title={fullDate(m.created_at)}>
          {when(m.created_at)}
        </span>
      </div>
      {msg.title && msg.body ? <div class="sub trunc">{msg.body}</div> : null}
      <div class="status-chips">
        {STATUS_ORDER.map((s) => (
          <span key={s} class={cx('status-chip', have.has(s) && 'status-' + s)} title={have.has(s) ? `${s} at ${fullDate(have.get(s))}` : `not ${s}`}>
            {have.has(s) ? '✓ ' : ''}
            {s}
          </span>
        ))}
      </div>
    </li>
  );
}

const priceFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** The top `n` keys of a {key: count} map, most viewed first. */
function top(counts, n = 3) {
  if (!counts || typeof counts !== 'object') return [];
  return Object.entries(counts)
    .filter(([, c]) => Number(c) > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n);
}

/** What the visitor looked at this session: top brands and models, categories, the price range. */
export function Interests({ interests }) {
  const i = interests || {};
  const items = Number(i.items) || 0;
  if (!items) return <p class="muted small">No product or listing pages viewed this session.</p>;
  const groups = [
    ['Brands', top(i.brands)],
    ['Models', top(i.models)],
    ['Categories', top(i.categories)],
  ].filter(([, list]) => list.length);
  const lo = Number(i.min_price);
  const hi = Number(i.max_price);
  const hasPrice = i.min_price != null && isFinite(lo);
  return (
    <div class="interests">
      {groups.map(([label, list]) => {
        const max = list[0][1];
        return (
          <div class="int-group" key={label} data-interest={label.toLowerCase()}>
            <h4>{label}</h4>
            <ul>
              {list.map(([k, c]) => (
                <li key={k}>
                  <span class="trunc int-name" title={k}>
                    {k}
                  </span>
                  <span class="int-count">{c}×</span>
                  <Bar value={c} max={max} />
                </li>
              ))}
            </ul>
          </div>
        );
      })}
      <dl class="int-facts">
        <div>
          <dt>Items viewed</dt>
          <dd>{items}</dd>
        </div>
        {hasPrice ? (
          <div>
            <dt>Price range</dt>
            <dd data-testid="price-range">{lo === hi || i.max_price == null ? priceFmt.format(lo) : `${priceFmt.format(lo)} – ${priceFmt.format(hi)}`}</dd>
          </div>
        ) : null}
      </dl>
    </div>
  );
}

export function Journey({ site, visitorId }) {
  const l = live.value;
  if (l) l.version.value;
  const liveV = l ? l.visitors.get(visitorId) : null;
  const [profile, setProfile] = useState(undefined);
  const [profileErr, setProfileErr] = useState(null);
  const [pvs, setPvs] = useState(null);
  const [pvErr, setPvErr] = useState(null);
  const [events, setEvents] = useState(null);
  const [msgs, setMsgs] = useState(null);
  const [msgErr, setMsgErr] = useState(null);
  const ref = useRef(null);
  const buffered = useRef({ pvs: [], events: [] });

  const close = () => setQuery({ visitor: '' });

  async function loadMessages() {
    try {
      const r = await api.get(sitePath(site.id, '/messages') + qs({ visitor: visitorId }));
      setMsgs(r.items || []);
      setMsgErr(null);
    } catch (e) {
      setMsgErr(e);
    }
  }

  useEffect(() => {
    const base = sitePath(site.id);
    api.get(`${base}/visitors/${encodeURIComponent(visitorId)}`).then(setProfile, (e) => {
      setProfile(null);
      if (e.status !== 404) setProfileErr(e);
    });
    api.get(`${base}/pageviews` + qs({ visitor: visitorId, limit: 500 })).then(
      (r) => setPvs(mergeBy(r.items || [], buffered.current.pvs, pvKey)),
      (e) => {
        setPvs([]);
        setPvErr(e);
      },
    );
    api.get(`${base}/events` + qs({ visitor: visitorId, limit: 200 })).then(
      (r) => setEvents(mergeBy(r.items || [], buffered.current.events, evKey)),
      () => setEvents([]),
    );
    loadMessages();
  }, [site.id, visitorId]);

  // The journey grows live: frames about this visitor are merged as they arrive.
  useEffect(() => {
    if (!l) return;
    let msgTimer = 0;
    return l.subscribe((f) => {
      if (f.visitor !== visitorId) return;
      if (f.type === 'pageview') {
        const p = { visitor: f.visitor, session: f.session, tab: f.tab, url: f.url, title: f.title, referrer: f.referrer, at: f.at };
        buffered.current.pvs.unshift(p);
        setPvs((cur) => (cur ? mergeBy(cur, [p], pvKey) : cur));
      } else if (f.type === 'event') {
        const e = { visitor: f.visitor, name: f.name, props: f.props, at: f.at };
        buffered.current.events.unshift(e);
        setEvents((cur) => (cur ? mergeBy(cur, [e], evKey) : cur));
      } else if (f.type === 'identify') {
        setProfile((p) => (p ? { ...p, user_id: f.user_id ?? p.user_id, traits: { ...(p.traits || {}), ...(f.traits || {}) } } : p));
      } else if (f.type === 'message_status') {
        setMsgs((cur) => {
          if (!cur || !cur.some((m) => m.id === f.message)) {
            clearTimeout(msgTimer);
            msgTimer = setTimeout(loadMessages, 300);
            return cur;
          }
          return cur.map((m) =>
            m.id === f.message ? { ...m, statuses: (m.statuses || []).concat([{ status: f.status, at: f.at }]) } : m,
          );
        });
      }
    });
  }, [l, visitorId]);

  useEffect(() => {
    const prev = document.activeElement;
    if (ref.current) ref.current.focus();
    const onKey = (e) => {
      if (e.key === 'Escape' && !document.querySelector('.modal')) close();
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      if (prev && prev.focus && document.contains(prev)) prev.focus();
    };
  }, [visitorId]);

  const currentSession =
    (liveV && liveV.session) ||
    (profile && profile.recent_sessions && profile.recent_sessions[0] && profile.recent_sessions[0].session) ||
    (pvs && pvs[0] && pvs[0].session);
  const sessionPages = useMemo(
    () => (pvs || []).filter((p) => !currentSession || p.session === currentSession).slice().sort((a, b) => ms(a.at) - ms(b.at)),
    [pvs, currentSession],
  );
  const liveTabs = useMemo(() => (liveV ? new Map(liveV.tabs.map((t) => [t.tab, t])) : null), [liveV]);
  // The session's source is decided by its landing page (UTM tags) or the session's referrer.
  const landing = sessionPages[0];
  const source = liveV && liveV.landing_url ? liveV.source : landing ? sourceOf(landing.url, landing.referrer || (liveV && liveV.referrer)) : liveV ? liveV.source : null;
  const { names } = useSegments(site.id);
  const earlier = ((profile && profile.recent_sessions) || []).filter((s) => s.session !== currentSession);
  const who = (liveV && liveV.user_id) || (profile && profile.user_id);
  const traits = { ...((profile && profile.traits) || {}), ...((liveV && liveV.traits) || {}) };
  const traitKeys = Object.keys(traits);
  const device = [titleCase((liveV && liveV.device) || (profile && profile.device)), (liveV || profile || {}).browser, (liveV || profile || {}).os]
    .filter(Boolean)
    .join(' · ');

  return (
    <>
      <div class="drawer-scrim" onClick={close} aria-hidden="true" />
      <aside class="drawer" role="dialog" aria-modal="false" aria-labelledby="j-title" tabIndex={-1} ref={ref} data-visitor={visitorId}>
        <div class="drawer-head">
          <div class="drawer-title">
            <h2 id="j-title" class="trunc">
              {who ? String(who) : 'Visitor ' + shortId(visitorId)}
            </h2>
            {liveV ? (
              <Badge kind="live">
                <span class="live-dot" aria-hidden="true" /> Live now
              </Badge>
            ) : (
              <Badge kind="neutral">{profile && profile.last_seen ? 'Seen ' + ago(profile.last_seen) : 'Offline'}</Badge>
            )}
          </div>
          <button type="button" class="icon-btn" aria-label="Close journey" onClick={close}>
            ×
          </button>
        </div>
        <div class="drawer-body">
          <dl class="facts">
            <div>
              <dt>Visitor id</dt>
              <dd class="mono">
                <span class="trunc">{visitorId}</span> <CopyButton text={visitorId} class="btn-xs" />
              </dd>
            </div>
            {device ? (
              <div>
                <dt>Device</dt>
                <dd>{device}</dd>
              </div>
            ) : null}
            {profile ? (
              <>
                <div>
                  <dt>First seen</dt>
                  <dd title={fullDate(profile.first_seen)}>{when(profile.first_seen)}</dd>
                </div>
                <div>
                  <dt>Sessions · page views</dt>
                  <dd>
                    {Math.max(Number(profile.sessions) || 0, 1)} · {Math.max(Number(profile.pageviews) || 0, pvs ? pvs.length : 0)}
                  </dd>
                </div>
              </>
            ) : null}
            {source ? (
              <div>
                <dt>Source</dt>
                <dd title={source.detail}>
                  {source.label}
                  {source.sub ? <span class="muted"> · {source.sub}</span> : null}
                </dd>
              </div>
            ) : null}
            {liveV ? (
              <div class="facts-wide">
                <dt>Segments</dt>
                <dd class="j-segments">
                  <SegmentBadges ids={liveV.segments} names={names} siteId={site.id} links empty={<span class="muted">None right now</span>} />
                </dd>
              </div>
            ) : null}
          </dl>
          {traitKeys.length ? (
            <dl class="traits" aria-label="Traits">
              {traitKeys.map((k) => (
                <div key={k}>
                  <dt>{k}</dt>
                  <dd class="trunc" title={scalar(traits[k])}>
                    {scalar(traits[k])}
                  </dd>
                </div>
              ))}
            </dl>
          ) : null}
          {canWrite.value ? (
            <a class="btn btn-primary btn-sm j-send" href={link(`/sites/${site.id}/send`, { target: visitorId })}>
              Send a message
            </a>
          ) : null}
          <ErrorNote error={profileErr} />

          {liveV ? (
            // Not a .j-section: those are the history below (and what tests count).
            <div class="j-interests" role="group" aria-labelledby="j-int-h">
              <div class="j-section-head">
                <h3 id="j-int-h">Interests this session</h3>
              </div>
              <Interests interests={liveV.interests} />
            </div>
          ) : null}

          <Section title="This session" count={pvs ? sessionPages.length : undefined}>
            {pvs === null ? (
              <Spinner inline />
            ) : pvErr ? (
              <ErrorNote error={pvErr} />
            ) : sessionPages.length ? (
              <Timeline pages={sessionPages} liveTabs={liveTabs} />
            ) : (
              <p class="muted small">No page views recorded yet.</p>
            )}
          </Section>

          <Section title="Events" count={events ? events.length : undefined}>
            {events === null ? (
              <Spinner inline />
            ) : events.length ? (
              <ul class="j-events">
                {events.slice(0, 50).map((e, i) => (
                  <li key={evKey(e) + i}>
                    <span class="mono muted" title={fullDate(e.at)}>
                      {when(e.at)}
                    </span>
                    <span class="evt">{e.name}</span>
                    <span class="mono sub trunc" title={json(e.props)}>
                      {json(e.props)}
                    </span>
                  </li>
                ))}
              </ul>
            ) : (
              <p class="muted small">No events.</p>
            )}
          </Section>

          <Section title="Messages" count={msgs ? msgs.length : undefined}>
            {msgErr ? (
              <ErrorNote error={msgErr} onRetry={loadMessages} />
            ) : msgs === null ? (
              <Spinner inline />
            ) : msgs.length ? (
              <ul class="j-msgs">
                {msgs.map((m) => (
                  <MessageItem key={m.id} m={m} />
                ))}
              </ul>
            ) : (
              <p class="muted small">No messages sent to this visitor.</p>
            )}
          </Section>

          <Section title="Earlier sessions" count={profile ? earlier.length : undefined}>
            {profile === undefined ? (
              <Spinner inline />
            ) : earlier.length ? (
              <ul class="sessions">
                {earlier.map((s) => (
                  <SessionRow key={s.session} s={s} site={site} visitorId={visitorId} />
                ))}
              </ul>
            ) : (
              <p class="muted small">This is their first session.</p>
            )}
          </Section>
        </div>
      </aside>
    </>
  );
}

