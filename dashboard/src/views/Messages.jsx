// Every message sent on the site with its outcome counts, kept current by message_status frames.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, sitePath } from '../lib/api.js';
import { live, canWrite } from '../lib/session.js';
import { link } from '../lib/router.js';
import { when, fullDate, describeTarget, num, pct } from '../lib/format.js';
import { PageHeader, ErrorNote, Spinner, Empty } from '../components/ui.jsx';

export function Messages({ site }) {
  const l = live.value;
  const [state, setState] = useState({ items: null, error: null });
  // Frames counted since the last fetch are added on top of the fetched counts.
  const base = useRef(new Map());
  const [, force] = useState(0);
  const timer = useRef(0);

  async function load() {
    const snapshot = l ? new Map([...l.messageStats.value].map(([k, v]) => [k, { ...v }])) : new Map();
    try {
      const r = await api.get(sitePath(site.id, '/messages'));
      base.current = snapshot;
      setState({ items: r.items || [], error: null });
    } catch (e) {
      setState((s) => ({ ...s, error: e }));
    }
  }
  const [segments, setSegments] = useState(new Map());
  useEffect(() => {
    load();
    api.get(sitePath(site.id, '/segments')).then(
      (r) => setSegments(new Map((r.items || []).map((x) => [x.id, x.name]))),
      () => {},
    );
  }, [site.id]);
  const target = (to) => (to && to.segment && segments.get(to.segment) ? 'Segment: ' + segments.get(to.segment) : describeTarget(to));
  useEffect(() => {
    if (!l) return;
    return l.subscribe((f) => {
      if (f.type !== 'message_status') return;
      force((n) => n + 1);
      // Reconcile with the server now and then (it counts tabs exactly).
      clearTimeout(timer.current);
      timer.current = setTimeout(load, 2000);
    });
  }, [l]);
  useEffect(() => () => clearTimeout(timer.current), []);

  const stats = l ? l.messageStats.value : new Map();
  const counts = (m) => {
    const now = stats.get(m.id);
    const was = base.current.get(m.id);
    const d = (k) => Math.max(0, ((now && now[k]) || 0) - ((was && was[k]) || 0));
    return {
      delivered: (Number(m.delivered) || 0) + d('delivered'),
      shown: (Number(m.shown) || 0) + d('shown'),
      clicked: (Number(m.clicked) || 0) + d('clicked'),
      dismissed: (Number(m.dismissed) || 0) + d('dismissed'),
    };
  };

  return (
    <div class="page page-wide">
      <PageHeader title="Messages" sub="What was sent, to whom, and what happened to it.">
        {canWrite.value ? (
          <a class="btn btn-primary" href={link(`/sites/${site.id}/send`)}>
            New message
          </a>
        ) : null}
      </PageHeader>
      <section class="card">
        {state.error ? <ErrorNote error={state.error} onRetry={load} /> : null}
        {state.items === null ? (
          state.error ? null : <Spinner />
        ) : !state.items.length ? (
          <Empty title="No messages yet" icon="✉">
            {canWrite.value ? (
              <>
                <a href={link(`/sites/${site.id}/send`)}>Send one</a> to a visitor, a segment or everyone on the site.
              </>
            ) : (
              'Messages admins send appear here.'
            )}
          </Empty>
        ) : (
          <div class="table-scroll">
            <table class="table table-messages">
              <thead>
                <tr>
                  <th scope="col">Sent</th>
                  <th scope="col">To</th>
                  <th scope="col">Message</th>
                  <th scope="col" class="c-num">
                    Delivered
                  </th>
                  <th scope="col" class="c-num">
                    Shown
                  </th>
                  <th scope="col" class="c-num">
                    Clicked
                  </th>
                  <th scope="col" class="c-num">
                    Dismissed
                  </th>
                  <th scope="col" class="c-num minor">
                    CTR
                  </th>
                </tr>
              </thead>
              <tbody>
                {state.items.map((m) => {
                  const c = counts(m);
                  const msg = m.message || {};
                  return (
                    <tr key={m.id} data-message={m.id}>
                      <td class="nowrap" title={fullDate(m.created_at)}>
                        {when(m.created_at)}
                      </td>
                      <td class="nowrap">
                        {m.to && m.to.visitor ? (
                          <a href={link(`/sites/${site.id}/messages`, { visitor: m.to.visitor })}>{target(m.to)}</a>
                        ) : (
                          target(m.to)
                        )}
                      </td>
                      <td class="c-page">
                        <div class="trunc">
                          <span class={'style-tag style-' + msg.style}>{msg.style || 'toast'}</span> {msg.title || msg.body}
                        </div>
                        {msg.title && msg.body ? <div class="sub trunc">{msg.body}</div> : null}
                      </td>
                      <td class="c-num" data-count="delivered">{num(c.delivered)}</td>
                      <td class="c-num" data-count="shown">{num(c.shown)}</td>
                      <td class="c-num" data-count="clicked">{num(c.clicked)}</td>
                      <td class="c-num" data-count="dismissed">{num(c.dismissed)}</td>
                      <td class="c-num minor">{pct(c.clicked, c.delivered)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
