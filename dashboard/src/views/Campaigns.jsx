// Campaigns: messages the server sends by itself when a trigger fires. The list (with the
// enabled switch and key numbers), the editor (read-only for viewers) and each campaign's
// outcome page, refreshed while it is open.
//   #/sites/ID/campaigns              the list
//   #/sites/ID/campaigns/new          a new campaign
//   #/sites/ID/campaigns/C            its results
//   #/sites/ID/campaigns/C/edit       its definition
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, sitePath } from '../lib/api.js';
import { live, canWrite } from '../lib/session.js';
import { route, link, navigate } from '../lib/router.js';
import { num, when, fullDate, clock, shortId, localInputToIso, isoToLocalInput } from '../lib/format.js';
import { toast } from '../lib/toast.js';
import { useSegments, segmentName } from '../lib/segments.js';
import { PageHeader, Card, Field, ErrorNote, Spinner, Empty, Segmented, Badge, Bar, useAsync, useId, cx } from '../components/ui.jsx';
import { MessageFields, MessagePreview, fromMessage, toMessage, fillExample } from '../components/Message.jsx';
import {
  toDuration, fromDuration, fmtSeconds, numOrText, triggerSummary, goalSummary, errorTarget, pctText, liftText,
} from './targeting/common.js';
import { MatchSelect, DurationField, Switch, ConfirmDelete, PATTERN_HINT, RowActions, RuleLoadError, RuleCrumbs, revealFirstError } from './targeting/Form.jsx';

export function Campaigns({ site }) {
  const p = route.value.parts;
  const sub = p[3];
  if (sub === 'new') {
    if (!canWrite.value) {
      return (
        <div class="page">
          <PageHeader title="New campaign" />
          <Empty title="Viewers cannot create campaigns" icon="⊘">
            Your role on {site.name} is viewer. <a href={link(`/sites/${site.id}/campaigns`)}>See the campaigns</a>
          </Empty>
        </div>
      );
    }
    return <CampaignEditor site={site} key="new" />;
  }
  if (sub && p[4] === 'edit') return <CampaignEditor site={site} id={sub} key={sub} />;
  if (sub) return <CampaignResults site={site} id={sub} key={sub} />;
  return <CampaignList site={site} />;
}

const campaignPath = (site, id = '') => sitePath(site, '/campaigns' + (id ? '/' + encodeURIComponent(id) : ''));

/** Re-runs `fn` every `ms` while the page is visible. */
function useEvery(fn, ms) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const t = setInterval(() => document.visibilityState === 'visible' && ref.current(), ms);
    const onVis = () => document.visibilityState === 'visible' && ref.current();
    document.addEventListener('visibilitychange', onVis);
    return () => {
      clearInterval(t);
      document.removeEventListener('visibilitychange', onVis);
    };
  }, [ms]);
}

/** Calls `fn` (debounced) when a message status or segment change arrives on the admin socket. */
function useLiveNudge(fn, delay = 300) {
  const l = live.value;
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!l) return;
    let t = 0;
    const off = l.subscribe((f) => {
      if (f.type === 'message_status' || f.type === 'segments') {
        clearTimeout(t);
        t = setTimeout(() => ref.current(), delay);
      }
    });
    return () => {
      clearTimeout(t);
      off();
    };
  }, [l]);
}

function EnabledSwitch({ site, c, onChange }) {
  const [busy, setBusy] = useState(false);
  const writable = canWrite.value;
  async function set(on) {
    setBusy(true);
    onChange({ ...c, enabled: on });
    try {
      const updated = await api.patch(campaignPath(site.id, c.id), { enabled: on });
      onChange(updated);
      toast(`“${c.name}” is ${on ? 'on: it sends when its trigger fires' : 'off'}.`);
    } catch (e) {
      onChange({ ...c, enabled: !on });
      toast(e.message, 'error');
    } finally {
      setBusy(false);
    }
  }
  return <Switch checked={!!c.enabled} disabled={!writable || busy} onChange={set} label={`Enabled: ${c.name}`} />;
}

function CampaignList({ site }) {
  const writable = canWrite.value;
  const { names } = useSegments(site.id, { fresh: true });
  const res = useAsync(() => api.get(campaignPath(site.id)).then((r) => r.items || []), [site.id]);
  const [deleting, setDeleting] = useState(null);
  useEvery(res.reload, 10_000);
  useLiveNudge(res.reload, 1000);
  const items = res.data;
  const base = `/sites/${site.id}/campaigns`;
  const replace = (c) => res.setData((list) => (list || []).map((x) => (x.id === c.id ? c : x)));
  return (
    <div class="page page-wide">
      <PageHeader title="Campaigns" sub="Messages sent by themselves when a visitor triggers them, with caps, a control group and conversions.">
        {writable ? (
          <a class="btn btn-primary" href={link(base + '/new')}>
            New campaign
          </a>
        ) : null}
      </PageHeader>
      <section class="card">
        {res.error ? <ErrorNote error={res.error} onRetry={res.reload} /> : null}
        {!items ? (
          res.error ? null : <Spinner />
        ) : !items.length ? (
          <Empty title="No campaigns yet" icon="◈">
            {writable ? (
              <>
                <a href={link(base + '/new')}>Create one</a>: for example a financing offer when a visitor enters “Model 3 shoppers”.
              </>
            ) : (
              'Campaigns the admins of this site create appear here.'
            )}
          </Empty>
        ) : (
          <div class="table-scroll">
            <table class="table table-rules table-campaigns" aria-label="Campaigns">
              <thead>
                <tr>
                  <th scope="col">On</th>
                  <th scope="col">Campaign</th>
                  <th scope="col" class="c-num minor">
                    Priority
                  </th>
                  <th scope="col" class="c-num minor">
                    Triggered
                  </th>
                  <th scope="col" class="c-num">
                    Sent
                  </th>
                  <th scope="col" class="c-num minor">
                    Shown
                  </th>
                  <th scope="col" class="c-num">
                    Converted
                  </th>
                  <th scope="col" class="c-num minor">
                    Lift
                  </th>
                  <th scope="col" class="c-actions minor">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((c) => {
                  const s = c.stats || {};
                  return (
                    <tr key={c.id} data-campaign={c.id} class={cx(!c.enabled && 'row-off')}>
                      <td class="c-switch">
                        <EnabledSwitch site={site} c={c} onChange={replace} />
                      </td>
                      <td class="c-rule">
                        <a href={link(`${base}/${c.id}`)} class="rule-name">
                          {c.name}
                        </a>
                        <div class="sub trunc" title={triggerSummary(c.trigger, names)}>
                          {triggerSummary(c.trigger, names)}
                          {c.segment ? ` · only ${segmentName(names, c.segment)}` : ''}
                        </div>
                        {c.test_visitor ? (
                          <Badge kind="accent" title={`Only visitor ${c.test_visitor} can trigger it`}>
                            test mode
                          </Badge>
                        ) : null}
                      </td>
                      <td class="c-num minor">{c.priority || 0}</td>
                      <td class="c-num minor" data-count="triggered">
                        {num(s.triggered)}
                      </td>
                      <td class="c-num" data-count="sent">
                        {num(s.sent)}
                      </td>
                      <td class="c-num minor" data-count="shown">
                        {num(s.shown)}
                      </td>
                      <td class="c-num" data-count="converted">
                        {c.goal ? (
                          <>
                            {num(s.converted)}
                            {s.conversion_rate != null ? <span class="muted small"> · {pctText(s.conversion_rate)}</span> : null}
                          </>
                        ) : (
                          <span class="muted small">no goal</span>
                        )}
                      </td>
                      <td class="c-num minor">{liftText(s.lift)}</td>
                      <RowActions base={base} rule={c} writable={writable} onDelete={setDeleting}>
                        <a class="btn btn-sm" href={link(`${base}/${c.id}`)} aria-label={`Results of ${c.name}`}>
                          Results
                        </a>
                      </RowActions>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {deleting ? (
        <ConfirmDelete
          what="campaign"
          name={deleting.name}
          detail="It stops at once, and its delivery records and results are deleted. Messages already shown stay on visitors' screens."
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(campaignPath(site.id, deleting.id));
            res.setData((list) => (list || []).filter((x) => x.id !== deleting.id));
            toast(`Campaign “${deleting.name}” deleted.`);
            setDeleting(null);
          }}
        />
      ) : null}
    </div>
  );
}

// ---------- the editor ----------

const TRIGGERS = [
  { value: 'segment_entered', label: 'Enters a segment' },
  { value: 'pageview', label: 'Views a page' },
  { value: 'event', label: 'Does an event' },
  { value: 'time_on_page', label: 'Time on a page' },
];

const str = (v) => (v === null || v === undefined ? '' : String(v));

function draftOf(c) {
  const t = c.trigger || { type: 'segment_entered' };
  const f = c.frequency || {};
  const s = c.schedule || {};
  const g = c.goal || null;
  return {
    name: c.name || '',
    enabled: !!c.enabled,
    priority: str(c.priority ?? 0),
    trigger: {
      type: t.type || 'segment_entered',
      segment: t.segment || '',
      match: t.match || 'prefix',
      value: t.value || '',
      name: t.name || '',
      seconds: toDuration(t.seconds ?? 30, 1),
    },
    audience: c.segment || '',
    msg: fromMessage(c.message),
    data: c.message && c.message.data,
    perVisitor: str(f.per_visitor),
    perSession: str(f.per_session),
    maxMessages: str(f.max_messages),
    period: toDuration(f.period_seconds, 86400),
    startsAt: isoToLocalInput(s.starts_at),
    endsAt: isoToLocalInput(s.ends_at),
    testVisitor: c.test_visitor || '',
    goal: { type: g ? g.type : 'none', match: (g && g.match) || 'prefix', value: (g && g.value) || '', name: (g && g.name) || '' },
    window: toDuration(c.goal_window_seconds ?? 86400, 3600),
    control: str(c.control_percent ?? 0),
  };
}

function definitionOf(d) {
  const t = d.trigger;
  const trigger =
    t.type === 'segment_entered'
      ? { type: t.type, segment: t.segment }
      : t.type === 'pageview'
        ? { type: t.type, match: t.match, value: t.value.trim() }
        : t.type === 'event'
          ? { type: t.type, name: t.name.trim() }
          : { type: t.type, ...(fromDuration(t.seconds) === '' ? {} : { seconds: fromDuration(t.seconds) }) };
  const frequency = {};
  const setF = (k, v) => {
    if (v !== undefined && v !== '') frequency[k] = v;
  };
  setF('per_visitor', numOrText(d.perVisitor));
  setF('per_session', numOrText(d.perSession));
  setF('max_messages', numOrText(d.maxMessages));
  if (numOrText(d.maxMessages) !== undefined) setF('period_seconds', fromDuration(d.period));
  const g = d.goal;
  const goal = g.type === 'pageview' ? { type: 'pageview', match: g.match, value: g.value.trim() } : g.type === 'event' ? { type: 'event', name: g.name.trim() } : null;
  const win = fromDuration(d.window);
  return {
    name: d.name.trim(),
    enabled: d.enabled,
    priority: numOrText(d.priority) ?? 0,
    trigger,
    segment: d.audience || null,
    message: toMessage(d.msg, d.data),
    frequency,
    schedule: { starts_at: localInputToIso(d.startsAt) || null, ends_at: localInputToIso(d.endsAt) || null },
    test_visitor: d.testVisitor.trim() || null,
    goal,
    goal_window_seconds: goal && win !== '' ? win : null,
    control_percent: numOrText(d.control) ?? 0,
  };
}

/** Which field an `invalid_rule` message is about. */
function errorKey(message) {
  const t = errorTarget(message);
  if (!t) return null;
  const m = String(message);
  switch (t.root) {
    case 'message': {
      const f = t.field || '';
      if (f.startsWith('title')) return 'title';
      if (f.startsWith('body')) return 'body';
      if (f.startsWith('cta.label') || /cta\.label/.test(m)) return 'ctaLabel';
      if (/cta/.test(m)) return 'ctaUrl';
      if (/\btitle\b/.test(m) && !/or a body/.test(m)) return 'title';
      return 'body';
    }
    case 'segment':
      return 'audience';
    case 'schedule':
      return t.field === 'ends_at' ? 'endsAt' : 'startsAt';
    case 'goal_window_seconds':
      return 'window';
    case 'control_percent':
      return 'control';
    case 'test_visitor':
      return 'testVisitor';
    default:
      return t.root;
  }
}

function CampaignEditor({ site, id }) {
  const writable = canWrite.value;
  const isNew = !id;
  const l = live.value;
  const version = l ? l.version.value : 0;
  const segs = useSegments(site.id, { fresh: true });
  const [loadErr, setLoadErr] = useState(null);
  const [orig, setOrig] = useState(isNew ? {} : null);
  const [d, setD] = useState(() => draftOf({ frequency: { per_visitor: 1 } }));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [example, setExample] = useState(false);
  const formRef = useRef(null);
  const uid = useId('cp');
  const fid = (n) => `${uid}-${n}`;
  const base = `/sites/${site.id}/campaigns`;

  const load = () => {
    setLoadErr(null);
    api.get(campaignPath(site.id, id)).then((c) => {
      setOrig(c);
      setD(draftOf(c));
    }, setLoadErr);
  };
  useEffect(() => {
    if (!isNew) load();
  }, [id]);
  // A new campaign starts on the first segment, the usual trigger.
  useEffect(() => {
    if (isNew && segs.items && segs.items.length && !d.trigger.segment) setD((x) => ({ ...x, trigger: { ...x.trigger, segment: segs.items[0].id } }));
  }, [segs.items]);

  const up = (patch) => setD((x) => ({ ...x, ...patch }));
  const upT = (patch) => setD((x) => ({ ...x, trigger: { ...x.trigger, ...patch } }));
  const upG = (patch) => setD((x) => ({ ...x, goal: { ...x.goal, ...patch } }));
  const key = error && error.code === 'invalid_rule' ? errorKey(error.message) : null;
  const fe = (k) => (key === k ? error.message : null);
  const visitors = useMemo(() => (l ? [...l.visitors.values()].slice(0, 300) : []), [l, version]);
  const def = definitionOf(d);
  const previewMsg = example ? { ...def.message, title: fillExample(def.message.title), body: fillExample(def.message.body), cta: def.message.cta && { ...def.message.cta, label: fillExample(def.message.cta.label) } } : def.message;
  const segOptions = segs.items || [];
  const disabled = !writable;

  async function save(e) {
    e.preventDefault();
    if (!writable) return;
    setError(null);
    setBusy(true);
    try {
      const saved = isNew ? await api.post(campaignPath(site.id), def) : await api.patch(campaignPath(site.id, id), def);
      toast(`Campaign “${saved.name}” saved${saved.enabled ? ' and on' : ' (off: switch it on to start)'}.`);
      navigate(`${base}/${saved.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
      revealFirstError(formRef.current, '.field-invalid, .section-error');
    }
  }

  if (loadErr) return <RuleLoadError kind="campaign" base={base} error={loadErr} onRetry={load} />;
  if (!orig) return <Spinner />;

  const SectionError = ({ k }) => (fe(k) ? <p class="field-error section-error">{fe(k)}</p> : null);
  const t = d.trigger;
  return (
    <div class="page page-wide">
      <RuleCrumbs label="Campaigns" base={base} id={isNew ? null : id} name={orig.name} />
      <PageHeader
        title={isNew ? 'New campaign' : writable ? 'Edit campaign' : orig.name}
        sub={writable ? 'The server sends the message by itself, within a millisecond of the trigger.' : 'Read only: your role on this site is viewer.'}
      />
      <div class="rule-grid">
        <form class="rule-form" onSubmit={save} noValidate ref={formRef} aria-label="Campaign definition">
          <Card title="Campaign" id="cp-basics">
            <div class="form">
              <Field label="Name" id={fid('name')} error={fe('name')}>
                <input id={fid('name')} value={d.name} maxLength={100} disabled={disabled} onInput={(e) => up({ name: e.currentTarget.value })} placeholder="Model 3 financing" />
              </Field>
              <div class="field-row">
                <Field label="Priority" id={fid('prio')} error={fe('priority')} hint="When several campaigns trigger on the same event, only the highest priority fires.">
                  <input id={fid('prio')} type="number" step="1" value={d.priority} disabled={disabled} onInput={(e) => up({ priority: e.currentTarget.value })} class="input-narrow" />
                </Field>
                <div class="field">
                  <span class="label">Status</span>
                  <Switch checked={d.enabled} disabled={disabled} onChange={(v) => up({ enabled: v })} label={d.enabled ? 'Enabled: sends when triggered' : 'Off: saved as a draft'} showLabel />
                </div>
              </div>
            </div>
          </Card>

          <Card title="Trigger" id="cp-trigger">
            <div class="form">
              <div class="field">
                <span class="label">When a visitor…</span>
                <Segmented name={fid('trig')} label="Trigger" value={t.type} onChange={(v) => upT({ type: v })} options={TRIGGERS} disabled={disabled} />
              </div>
              {t.type === 'segment_entered' ? (
                <Field
                  label="Segment"
                  id={fid('tseg')}
                  error={fe('trigger')}
                  hint={
                    segs.items && !segOptions.length && writable ? (
                      <>
                        This site has no segment yet. <a href={link(`/sites/${site.id}/segments/new`)}>Create one</a> first, or choose another trigger.
                      </>
                    ) : (
                      'Fires when the visitor enters it (not for visitors already in it when the campaign starts).'
                    )
                  }
                >
                  <select id={fid('tseg')} value={t.segment} disabled={disabled} onChange={(e) => upT({ segment: e.currentTarget.value })}>
                    <option value="">{segs.items ? (segOptions.length ? 'Choose a segment…' : 'No segments yet') : 'Loading…'}</option>
                    {segOptions.map((s) => (
                      <option key={s.id} value={s.id}>
                        {s.name}
                      </option>
                    ))}
                  </select>
                </Field>
              ) : t.type === 'pageview' ? (
                <>
                  <div class="field-row">
                    <MatchSelect id={fid('tmatch')} label="Page URL" value={t.match} onChange={(v) => upT({ match: v })} disabled={disabled} />
                    <Field label="Value" id={fid('tval')} error={fe('trigger')}>
                      <input id={fid('tval')} value={t.value} disabled={disabled} spellcheck={false} placeholder="/financing" onInput={(e) => upT({ value: e.currentTarget.value })} />
                    </Field>
                  </div>
                  {!disabled ? <p class="field-hint">{PATTERN_HINT}</p> : null}
                </>
              ) : t.type === 'event' ? (
                <Field label="Event name" id={fid('tev')} error={fe('trigger')}>
                  <input id={fid('tev')} value={t.name} disabled={disabled} spellcheck={false} placeholder="added_to_cart" onInput={(e) => upT({ name: e.currentTarget.value })} />
                </Field>
              ) : (
                <DurationField
                  id={fid('tsec')}
                  label="On one page for"
                  value={t.seconds}
                  onChange={(v) => upT({ seconds: v })}
                  disabled={disabled}
                  error={fe('trigger')}
                  hint="Fires once per page, from a timer on the server."
                />
              )}
            </div>
          </Card>

          <Card title="Audience" id="cp-audience">
            <div class="form">
              <Field label="Only visitors in" id={fid('aud')} error={fe('audience')}>
                <select id={fid('aud')} value={d.audience} disabled={disabled} onChange={(e) => up({ audience: e.currentTarget.value })}>
                  <option value="">Everyone who triggers it</option>
                  {segOptions.map((s) => (
                    <option key={s.id} value={s.id}>
                      {s.name}
                    </option>
                  ))}
                </select>
              </Field>
            </div>
          </Card>

          <Card title="Message" id="cp-message">
            <div class="form">
              <MessageFields value={d.msg} onChange={(c) => up({ msg: { ...d.msg, ...c } })} errors={{ title: fe('title'), body: fe('body'), ctaLabel: fe('ctaLabel'), ctaUrl: fe('ctaUrl') }} disabled={disabled} placeholders limits={{ title: 200, body: 2000 }} />
            </div>
          </Card>

          <Card title="Frequency" id="cp-freq">
            <div class="form">
              <div class="field-row field-row-3">
                <Field label="Per visitor, at most" id={fid('pv')} hint="Times this campaign reaches one visitor, ever.">
                  <input id={fid('pv')} type="number" min="1" step="1" value={d.perVisitor} disabled={disabled} placeholder="no cap" onInput={(e) => up({ perVisitor: e.currentTarget.value })} />
                </Field>
                <Field label="Per session, at most" id={fid('ps')} hint="Times within one session.">
                  <input id={fid('ps')} type="number" min="1" step="1" value={d.perSession} disabled={disabled} placeholder="no cap" onInput={(e) => up({ perSession: e.currentTarget.value })} />
                </Field>
                <Field label="Messages of any kind, at most" id={fid('mm')} hint="Every message the visitor got counts, manual ones too.">
                  <input id={fid('mm')} type="number" min="1" step="1" value={d.maxMessages} disabled={disabled} placeholder="no cap" onInput={(e) => up({ maxMessages: e.currentTarget.value })} />
                </Field>
              </div>
              {d.maxMessages.trim() ? <DurationField id={fid('period')} label="…within" value={d.period} onChange={(v) => up({ period: v })} disabled={disabled} /> : null}
              <SectionError k="frequency" />
            </div>
          </Card>

          <Card title="Schedule" id="cp-schedule">
            <div class="form">
              <div class="field-row">
                <Field label="Starts (optional)" id={fid('start')} error={fe('startsAt')} hint="Your local time.">
                  <input id={fid('start')} type="datetime-local" value={d.startsAt} disabled={disabled} onInput={(e) => up({ startsAt: e.currentTarget.value })} />
                </Field>
                <Field label="Ends (optional)" id={fid('end')} error={fe('endsAt')}>
                  <input id={fid('end')} type="datetime-local" value={d.endsAt} disabled={disabled} onInput={(e) => up({ endsAt: e.currentTarget.value })} />
                </Field>
              </div>
            </div>
          </Card>

          <Card title="Goal and control group" id="cp-goal">
            <div class="form">
              <div class="field">
                <span class="label">A conversion is when the visitor…</span>
                <Segmented
                  name={fid('goal')}
                  label="Goal"
                  value={d.goal.type}
                  onChange={(v) => upG({ type: v })}
                  disabled={disabled}
                  options={[
                    { value: 'none', label: 'No goal' },
                    { value: 'pageview', label: 'Views a page' },
                    { value: 'event', label: 'Does an event' },
                  ]}
                />
              </div>
              {d.goal.type === 'pageview' ? (
                <div class="field-row">
                  <MatchSelect id={fid('gmatch')} label="Goal page URL" value={d.goal.match} onChange={(v) => upG({ match: v })} disabled={disabled} />
                  <Field label="Goal value" id={fid('gval')} error={fe('goal')}>
                    <input id={fid('gval')} value={d.goal.value} disabled={disabled} spellcheck={false} placeholder="/financing" onInput={(e) => upG({ value: e.currentTarget.value })} />
                  </Field>
                </div>
              ) : d.goal.type === 'event' ? (
                <Field label="Goal event" id={fid('gev')} error={fe('goal')}>
                  <input id={fid('gev')} value={d.goal.name} disabled={disabled} spellcheck={false} placeholder="lead" onInput={(e) => upG({ name: e.currentTarget.value })} />
                </Field>
              ) : null}
              {d.goal.type !== 'none' ? (
                <DurationField id={fid('win')} label="Counts within" value={d.window} onChange={(v) => up({ window: v })} disabled={disabled} error={fe('window')} hint="After the campaign fired, for sent and control visitors alike." />
              ) : (
                <SectionError k="goal" />
              )}
              <Field label="Control group, percent" id={fid('ctl')} error={fe('control')} hint="0 to 90. These visitors trigger it but get nothing, so the results show the lift of the message.">
                <input id={fid('ctl')} type="number" min="0" max="90" step="1" value={d.control} disabled={disabled} onInput={(e) => up({ control: e.currentTarget.value })} class="input-narrow" />
              </Field>
            </div>
          </Card>

          <Card title="Test mode" id="cp-test">
            <div class="form">
              <Field label="Test visitor (optional)" id={fid('test')} error={fe('testVisitor')} hint="Only this visitor can trigger it; test sends are counted apart. Find your id in the journey of your own visit.">
                <input id={fid('test')} list={fid('test-list')} value={d.testVisitor} disabled={disabled} spellcheck={false} autoComplete="off" placeholder="Visitor id" onInput={(e) => up({ testVisitor: e.currentTarget.value })} />
                <datalist id={fid('test-list')}>
                  {visitors.map((v) => (
                    <option key={v.id} value={v.id}>
                      {(v.user_id ? String(v.user_id) + ' — ' : '') + (v.title || v.path)}
                    </option>
                  ))}
                </datalist>
              </Field>
            </div>
          </Card>

          {writable ? (
            <div class="form-foot">
              <ErrorNote error={error} />
              <div class="form-actions">
                <a class="btn" href={link(isNew ? base : `${base}/${id}`)}>
                  Cancel
                </a>
                <button type="submit" class="btn btn-primary" disabled={busy}>
                  {busy ? 'Saving…' : isNew ? 'Create campaign' : 'Save campaign'}
                </button>
              </div>
            </div>
          ) : null}
        </form>
        <aside class="rule-side">
          <Card
            title="Preview"
            id="cp-preview"
            actions={
              <label class="check small">
                <input type="checkbox" checked={example} onChange={(e) => setExample(e.currentTarget.checked)} /> Example values
              </label>
            }
          >
            <MessagePreview message={previewMsg} />
          </Card>
          <Card title="In words" id="cp-words">
            <CampaignWords c={def} names={segs.names} />
          </Card>
        </aside>
      </div>
    </div>
  );
}

function CampaignWords({ c, names }) {
  const f = c.frequency || {};
  const caps = [
    f.per_visitor ? `${f.per_visitor}× per visitor` : null,
    f.per_session ? `${f.per_session}× per session` : null,
    f.max_messages ? `at most ${f.max_messages} messages per ${fmtSeconds(f.period_seconds)}` : null,
  ].filter(Boolean);
  const sched = c.schedule || {};
  return (
    <dl class="words-list">
      <div>
        <dt>When a visitor</dt>
        <dd>{triggerSummary(c.trigger, names)}</dd>
      </div>
      <div>
        <dt>Audience</dt>
        <dd>{c.segment ? `Only “${segmentName(names, c.segment)}”` : 'Everyone'}</dd>
      </div>
      <div>
        <dt>Frequency</dt>
        <dd>{caps.length ? caps.join(', ') : 'Every time it triggers'}</dd>
      </div>
      <div>
        <dt>Schedule</dt>
        <dd>
          {sched.starts_at || sched.ends_at
            ? `${sched.starts_at ? 'from ' + fullDate(sched.starts_at) : ''}${sched.starts_at && sched.ends_at ? ' ' : ''}${sched.ends_at ? 'until ' + fullDate(sched.ends_at) : ''}`
            : 'Always'}
        </dd>
      </div>
      <div>
        <dt>Goal</dt>
        <dd>
          {goalSummary(c.goal)}
          {c.goal ? ` within ${fmtSeconds(c.goal_window_seconds ?? 86400)}` : ''}
        </dd>
      </div>
      <div>
        <dt>Control group</dt>
        <dd>{Number(c.control_percent) ? `${c.control_percent}%` : 'None'}</dd>
      </div>
      {c.test_visitor ? (
        <div>
          <dt>Test mode</dt>
          <dd class="mono">Only {shortId(c.test_visitor)}</dd>
        </div>
      ) : null}
    </dl>
  );
}

// ---------- results ----------

const STAT_TILES = [
  ['triggered', 'triggered', 'Visitors it fired for (sent + control)'],
  ['sent', 'sent', 'Visitors who were sent the message'],
  ['control', 'held back', 'Visitors in the control group: triggered, not sent'],
  ['delivered', 'delivered', 'Visitors whose tab received it'],
  ['shown', 'shown', 'Visitors whose page displayed it'],
  ['clicked', 'clicked', 'Visitors who clicked its button'],
  ['dismissed', 'dismissed', 'Visitors who closed it'],
  ['converted', 'converted', 'Sent visitors who reached the goal in the window'],
];

function CampaignResults({ site, id }) {
  const writable = canWrite.value;
  const { names } = useSegments(site.id, { fresh: true });
  const [c, setC] = useState(null);
  const [error, setError] = useState(null);
  const [at, setAt] = useState(0);
  const [deleting, setDeleting] = useState(false);
  const base = `/sites/${site.id}/campaigns`;
  const seq = useRef(0);
  async function load() {
    const n = ++seq.current;
    try {
      const r = await api.get(campaignPath(site.id, id));
      if (n !== seq.current) return;
      setC(r);
      setAt(Date.now());
      setError(null);
    } catch (e) {
      if (n === seq.current) setError(e);
    }
  }
  useEffect(() => {
    load();
  }, [id]);
  useEvery(load, 5000);
  useLiveNudge(load, 300);

  if (error && error.status === 404) {
    return (
      <div class="page">
        <PageHeader title="Campaign" />
        <Empty title="Campaign not found" icon="?">
          It may have been deleted. <a href={link(base)}>All campaigns</a>
        </Empty>
      </div>
    );
  }
  if (!c) return error ? <div class="page"><ErrorNote error={error} onRetry={load} /></div> : <Spinner />;
  const s = c.stats || {};
  const funnel = [
    ['triggered', s.triggered],
    ['sent', s.sent],
    ['delivered', s.delivered],
    ['shown', s.shown],
    ['clicked', s.clicked],
    ...(c.goal ? [['converted', s.converted]] : []),
  ];
  const top = Math.max(1, Number(s.triggered) || 0, Number(s.sent) || 0);
  return (
    <div class="page page-wide">
      <RuleCrumbs label="Campaigns" base={base} />
      <PageHeader title={c.name} sub={triggerSummary(c.trigger, names) + (c.segment ? ` · only ${segmentName(names, c.segment)}` : '')}>
        <span class="results-switch">
          <EnabledSwitch site={site} c={c} onChange={setC} />
          <span class={cx('status-text', c.enabled ? 'status-on' : 'status-off')}>{c.enabled ? 'On' : 'Off'}</span>
        </span>
        <a class={cx('btn', writable && 'btn-primary')} href={link(`${base}/${id}/edit`)}>
          {writable ? 'Edit' : 'View definition'}
        </a>
        {writable ? (
          <button type="button" class="btn btn-ghost-danger" onClick={() => setDeleting(true)}>
            Delete…
          </button>
        ) : null}
      </PageHeader>
      {error ? <ErrorNote error={error} onRetry={load} /> : null}
      <div class="kpis kpis-4" role="group" aria-label="Results" data-testid="campaign-stats">
        {STAT_TILES.map(([k, label, help]) => (
          <div class="kpi" key={k} data-stat={k} title={help}>
            <span class="kpi-value">{num(s[k])}</span>
            <span class="kpi-label">{label}</span>
          </div>
        ))}
        <div class="kpi kpi-rate" data-stat="conversion_rate" title="converted / sent">
          <span class="kpi-value">{pctText(s.conversion_rate)}</span>
          <span class="kpi-label">conversion rate</span>
        </div>
        <div class="kpi kpi-rate" data-stat="control_conversion_rate" title="control converted / held back">
          <span class="kpi-value">{pctText(s.control_conversion_rate)}</span>
          <span class="kpi-label">control conversion ({num(s.control_converted)} of {num(s.control)})</span>
        </div>
        <div class={cx('kpi kpi-rate', s.lift > 0 && 'kpi-up', s.lift < 0 && 'kpi-down')} data-stat="lift" title="(rate − control rate) / control rate">
          <span class="kpi-value">{liftText(s.lift)}</span>
          <span class="kpi-label">lift</span>
        </div>
        <div class="kpi" data-stat="test_sends" title="Messages sent in test mode, not counted above">
          <span class="kpi-value">{num(s.test_sends)}</span>
          <span class="kpi-label">test sends</span>
        </div>
      </div>
      <p class="muted small refreshed" aria-live="off">
        Counts are visitors. Refreshed every few seconds while this page is open · last at {clock(at)}.{' '}
        <button type="button" class="link-btn" onClick={load}>
          Refresh now
        </button>
      </p>
      <div class="two-col">
        <Card title="Funnel" id="cp-funnel">
          <ul class="funnel">
            {funnel.map(([k, v]) => (
              <li key={k} data-step={k}>
                <span class="funnel-label">{k}</span>
                <Bar value={Number(v) || 0} max={top} />
                <span class="funnel-n">{num(v)}</span>
                <span class="funnel-pct muted small">{k === 'triggered' || !s.sent ? '' : pctText((Number(v) || 0) / s.sent)}</span>
              </li>
            ))}
          </ul>
          <p class="muted small pad">
            {!c.goal
              ? 'No goal is set: add one to measure conversions.'
              : !Number(c.control_percent)
                ? 'No control group: lift needs one (set a control percent).'
                : s.lift === null || s.lift === undefined
                  ? 'Lift appears once control visitors have converted.'
                  : `Visitors who got the message converted ${liftText(s.lift)} against the control group.`}
          </p>
        </Card>
        <Card title="Definition" id="cp-def">
          <div class="def-grid">
            <CampaignWords c={c} names={names} />
            <MessagePreview message={c.message || {}} />
          </div>
          <p class="muted small pad">
            Created {when(c.created_at)} · changed {when(c.updated_at)} · priority {c.priority || 0}
          </p>
        </Card>
      </div>
      {deleting ? (
        <ConfirmDelete
          what="campaign"
          name={c.name}
          detail="It stops at once, and its delivery records and results are deleted."
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.del(campaignPath(site.id, id));
            toast(`Campaign “${c.name}” deleted.`);
            navigate(base);
          }}
        />
      ) : null}
    </div>
  );
}
