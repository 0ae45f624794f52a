// The composer: write a message, see how it will look, send it to a visitor, a segment or
// everyone, then watch it being delivered, shown, clicked and dismissed.
import { signal } from '@preact/signals';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, sitePath } from '../lib/api.js';
import { live, canWrite } from '../lib/session.js';
import { route, link } from '../lib/router.js';
import { shortId, describeTarget, when, num, pct } from '../lib/format.js';
import { PageHeader, Field, ErrorNote, Segmented, Card, Empty, useId } from '../components/ui.jsx';
import { MessageFields, MessagePreview, Outcome, emptyMessage } from '../components/Message.jsx';
import { useSegments } from '../lib/segments.js';
import { toast } from '../lib/toast.js';

export { MessagePreview, Outcome };

/** Messages sent from this tab, newest first: {id, to, message, at, delivered}. */
const sentHere = signal([]);

function SentCard({ s }) {
  const l = live.value;
  const counts = l ? (l.messageStats.value, l.stats(s.id)) : {};
  counts.delivered = Math.max(counts.delivered || 0, s.delivered || 0);
  return (
    <li class="sent-card" data-message={s.id}>
      <div class="sent-head">
        <span class={'style-tag style-' + s.message.style}>{s.message.style}</span>
        <strong class="trunc">{s.message.title || s.message.body}</strong>
        <span class="muted small">
          to {s.label} · {when(s.at)}
        </span>
      </div>
      <Outcome counts={counts} />
      {!counts.delivered && !s.ttl ? (
        <p class="muted small">Nobody received it: no open tab matched. Set a time to live to deliver it when they come back.</p>
      ) : counts.delivered ? (
        <p class="muted small">Click-through {pct(counts.clicked || 0, counts.delivered)}</p>
      ) : null}
    </li>
  );
}

export function Send({ site }) {
  const l = live.value;
  const version = l ? l.version.value : 0;
  const r = route.value;
  const writable = canWrite.value;
  const [kind, setKind] = useState(r.query.target ? 'visitor' : r.query.segment ? 'segment' : 'visitor');
  const [visitor, setVisitor] = useState(r.query.target || '');
  const [segment, setSegment] = useState(r.query.segment || '');
  const [draft, setDraft] = useState(emptyMessage);
  const { title, body, style, ctaLabel, ctaUrl } = draft;
  const [ttl, setTtl] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [errors, setErrors] = useState({});
  const segStore = useSegments(site.id, { fresh: true });
  const segments = { data: segStore.items, error: segStore.items ? null : segStore.error, loading: !segStore.items && !segStore.error };
  const ids = {
    visitor: useId('to-v'),
    segment: useId('to-s'),
    ttl: useId('m-ttl'),
    list: useId('visitors-list'),
  };

  useEffect(() => {
    if (r.query.target) {
      setKind('visitor');
      setVisitor(r.query.target);
    }
  }, [r.query.target]);

  const visitors = useMemo(() => (l ? [...l.visitors.values()] : []), [l, version]);
  const count = visitors.length;
  const chosen = visitor && l ? l.visitors.get(visitor.trim()) : null;
  const cta = ctaLabel.trim() ? { label: ctaLabel.trim(), url: ctaUrl.trim() } : null;
  const message = { title: title.trim(), body: body.trim(), style, cta, data: {} };

  if (!writable) {
    return (
      <div class="page">
        <PageHeader title="Send a message" />
        <Empty title="Viewers cannot send messages" icon="⊘">
          Your role on {site.name} is viewer. Ask an admin of the site to make you an admin.
        </Empty>
      </div>
    );
  }

  function validate() {
    const e = {};
    if (kind === 'visitor' && !visitor.trim()) e.visitor = 'Choose a visitor.';
    if (kind === 'segment' && !segment) e.segment = 'Choose a segment.';
    if (!message.title && !message.body) e.body = 'Write a title or a message.';
    if (ctaLabel.trim() && !/^(https?:\/\/|\/)/i.test(ctaUrl.trim())) e.ctaUrl = 'Give the button a link starting with https://, http:// or /.';
    if (!ctaLabel.trim() && ctaUrl.trim()) e.ctaLabel = 'Give the button a label, or clear the link.';
    if (ttl !== '' && !(Number.isInteger(Number(ttl)) && Number(ttl) > 0)) e.ttl = 'A whole number of seconds, more than 0.';
    setErrors(e);
    return !Object.keys(e).length;
  }

  async function submit(ev) {
    ev.preventDefault();
    setError(null);
    if (!validate()) return;
    const to = kind === 'visitor' ? { visitor: visitor.trim() } : kind === 'segment' ? { segment } : { all: true };
    setBusy(true);
    try {
      let id;
      let delivered;
      const ttlN = ttl === '' ? null : Number(ttl);
      if (ttlN === null && l && l.open) {
        const res = await l.sendMessage(to, message);
        id = res.message;
        delivered = res.delivered;
      } else {
        // With a time to live (or without the socket) the REST endpoint queues it.
        const body = { to, message };
        if (ttlN !== null) body.ttl = ttlN;
        const res = await api.post(sitePath(site.id, '/messages'), body);
        id = res.id;
        delivered = res.delivered;
      }
      const seg = kind === 'segment' && segments.data ? segments.data.find((s) => s.id === segment) : null;
      const label =
        kind === 'all' ? 'everyone' : kind === 'segment' ? (seg ? seg.name : describeTarget(to)) : chosen && chosen.user_id ? String(chosen.user_id) : 'visitor ' + shortId(visitor.trim());
      sentHere.value = [{ id, site: site.id, to, message, label, delivered: Number(delivered) || 0, at: new Date().toISOString(), ttl: ttlN }].concat(sentHere.value).slice(0, 20);
      toast(`Sent to ${label}: reached ${Number(delivered) || 0} ${delivered === 1 ? 'tab' : 'tabs'}.`);
    } catch (e) {
      setError(e.code === 'forbidden' ? 'Your role does not allow sending messages.' : e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="page page-wide">
      <PageHeader title="Send a message" sub="Reach visitors while they are on the site: a toast, a banner or a modal." />
      <div class="send-grid">
        <form class="card form composer" onSubmit={submit} noValidate aria-label="Message composer">
          <fieldset class="fieldset">
            <legend>To</legend>
            <Segmented
              name="target"
              label="Recipients"
              value={kind}
              onChange={setKind}
              options={[
                { value: 'visitor', label: 'A visitor' },
                { value: 'segment', label: 'A segment' },
                { value: 'all', label: `Everyone (${count})` },
              ]}
            />
            {kind === 'visitor' ? (
              <Field label="Visitor" id={ids.visitor} error={errors.visitor} hint={chosen ? `On ${chosen.title || chosen.path} now.` : visitor ? 'Not on the site now: only a time to live will reach them later.' : 'Pick a live visitor or paste a visitor id.'}>
                <input
                  id={ids.visitor}
                  list={ids.list}
                  value={visitor}
                  placeholder="Visitor id or pick from the list"
                  onInput={(e) => setVisitor(e.currentTarget.value)}
                  spellcheck={false}
                  autoComplete="off"
                />
                <datalist id={ids.list}>
                  {visitors.slice(0, 500).map((v) => (
                    <option value={v.id} key={v.id}>
                      {(v.user_id ? String(v.user_id) + ' — ' : '') + (v.title || v.path)}
                    </option>
                  ))}
                </datalist>
              </Field>
            ) : kind === 'segment' ? (
              <Field label="Segment" id={ids.segment} error={errors.segment}>
                {segments.error ? (
                  <ErrorNote error={segments.error} />
                ) : (
                  <select id={ids.segment} value={segment} onChange={(e) => setSegment(e.currentTarget.value)}>
                    <option value="">{segments.loading ? 'Loading…' : segments.data && segments.data.length ? 'Choose a segment…' : 'No segments yet'}</option>
                    {(segments.data || []).map((s) => (
                      <option key={s.id} value={s.id}>
                        {(s.name || s.id) + (typeof s.live_members === 'number' ? ` (${s.live_members} on the site now)` : '')}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            ) : (
              <p class="muted small">Every open tab of every visitor on {site.name} right now.</p>
            )}
          </fieldset>
          <fieldset class="fieldset">
            <legend>Message</legend>
            <MessageFields value={draft} onChange={(c) => setDraft((d) => ({ ...d, ...c }))} errors={errors} />
            <Field
              label="Time to live, seconds (optional)"
              id={ids.ttl}
              error={errors.ttl}
              hint="Keep delivering it to matching visitors who arrive within this time."
            >
              <input id={ids.ttl} type="number" min="1" step="1" inputMode="numeric" value={ttl} onInput={(e) => setTtl(e.currentTarget.value)} class="input-narrow" />
            </Field>
          </fieldset>
          <ErrorNote error={error} />
          <div class="form-actions">
            <button type="submit" class="btn btn-primary" disabled={busy}>
              {busy ? 'Sending…' : kind === 'all' ? `Send to everyone (${count})` : 'Send message'}
            </button>
          </div>
        </form>
        <div class="send-side">
          <Card title="Preview" id="preview">
            <MessagePreview message={message} />
          </Card>
          <Card title="Sent from here" id="sent" actions={<a href={link(`/sites/${site.id}/messages`)} class="small">All messages</a>}>
            {sentHere.value.some((s) => s.site === site.id) ? (
              <ul class="sent-list">
                {sentHere.value.filter((s) => s.site === site.id).map((s) => (
                  <SentCard key={s.id} s={s} />
                ))}
              </ul>
            ) : (
              <p class="muted small pad">Outcomes of what you send appear here and update live.</p>
            )}
          </Card>
        </div>
      </div>
    </div>
  );
}

