// Segments: the list with live member counts, the condition builder (create, edit; read-only
// for viewers), deletion with confirmation, and the visitors in a segment now.
//   #/sites/ID/segments              the list
//   #/sites/ID/segments/new          a new segment
//   #/sites/ID/segments/SEG          who is in it now
//   #/sites/ID/segments/SEG/edit     its definition
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, sitePath } from '../lib/api.js';
import { live, canWrite } from '../lib/session.js';
import { normalise } from '../lib/live.js';
import { route, link, navigate, setQuery } from '../lib/router.js';
import { when, fullDate, num, shortId, titleCase, traitsSummary } from '../lib/format.js';
import { toast } from '../lib/toast.js';
import { loadSegments, setSegmentItems, useSegments } from '../lib/segments.js';
import { PageHeader, Card, Field, ErrorNote, Spinner, Empty, Segmented, Since, useId, cx } from '../components/ui.jsx';
import { SegmentBadges } from '../components/SegmentBadges.jsx';
import {
  CONDITION_TYPES, UTM_PARAMS, DEVICES, conditionDraft, conditionOf, conditionSummary, errorTarget,
} from './targeting/common.js';
import { MatchSelect, DurationField, ConfirmDelete, PATTERN_HINT, RowActions, RuleLoadError, RuleCrumbs, revealFirstError } from './targeting/Form.jsx';

export function Segments({ site }) {
  const p = route.value.parts;
  const sub = p[3];
  if (sub === 'new') {
    if (!canWrite.value) {
      return (
        <div class="page">
          <PageHeader title="New segment" />
          <Empty title="Viewers cannot create segments" icon="⊘">
            Your role on {site.name} is viewer. <a href={link(`/sites/${site.id}/segments`)}>See the segments</a>
          </Empty>
        </div>
      );
    }
    return <SegmentEditor site={site} key="new" />;
  }
  if (sub && p[4] === 'edit') return <SegmentEditor site={site} id={sub} key={sub} />;
  if (sub) return <SegmentMembers site={site} id={sub} key={sub} />;
  return <SegmentList site={site} />;
}

/** Live member counts from the admin socket (VISITOR objects carry `segments`), when it is up. */
function useLiveCounts() {
  const l = live.value;
  const version = l ? l.version.value : 0;
  const ready = !!l && l.hadSnapshot.value && l.status.value === 'open';
  return useMemo(() => {
    if (!ready) return null;
    const m = new Map();
    for (const v of l.visitors.values()) for (const s of v.segments) m.set(s, (m.get(s) || 0) + 1);
    return m;
  }, [l, version, ready]);
}

function SegmentList({ site }) {
  const store = useSegments(site.id);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const counts = useLiveCounts();
  const writable = canWrite.value;
  const reload = () => {
    setError(null);
    loadSegments(site.id).then(() => setLoaded(true), (e) => {
      setError(e);
      setLoaded(true);
    });
  };
  useEffect(reload, [site.id]);
  const items = store.items;
  const base = `/sites/${site.id}/segments`;
  return (
    <div class="page page-wide">
      <PageHeader title="Segments" sub="Groups of visitors by what they do now, evaluated live on every page view and event.">
        {writable ? (
          <a class="btn btn-primary" href={link(base + '/new')}>
            New segment
          </a>
        ) : null}
      </PageHeader>
      <section class="card">
        {error ? <ErrorNote error={error} onRetry={reload} /> : null}
        {!items ? (
          error ? null : <Spinner />
        ) : !items.length ? (
          <Empty title="No segments yet" icon="◎">
            {writable ? (
              <>
                <a href={link(base + '/new')}>Create one</a>: for example visitors who viewed the same model three times, came from a
                newsletter, or have been on a pricing page for a minute.
              </>
            ) : (
              'Segments the admins of this site create appear here.'
            )}
          </Empty>
        ) : (
          <div class="table-scroll">
            <table class="table table-rules" aria-label="Segments">
              <thead>
                <tr>
                  <th scope="col">Segment</th>
                  <th scope="col" class="minor">
                    Conditions
                  </th>
                  <th scope="col" class="c-num">
                    In it now
                  </th>
                  <th scope="col" class="minor">
                    Changed
                  </th>
                  <th scope="col" class="c-actions minor">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((s) => {
                  const n = counts ? counts.get(s.id) || 0 : s.live_members || 0;
                  const conds = Array.isArray(s.conditions) ? s.conditions : [];
                  return (
                    <tr key={s.id} data-segment={s.id}>
                      <td class="c-rule">
                        <a href={link(`${base}/${s.id}`)} class="rule-name">
                          {s.name}
                        </a>
                        {s.description ? <div class="sub trunc">{s.description}</div> : null}
                      </td>
                      <td class="minor c-conds">
                        <span class="combine">{conds.length > 1 ? (s.match === 'any' ? 'Any of' : 'All of') : ''}</span>
                        <ul class="cond-sum">
                          {conds.slice(0, 3).map((c, i) => (
                            <li key={i} class="trunc">
                              {conditionSummary(c)}
                            </li>
                          ))}
                          {conds.length > 3 ? <li class="muted">and {conds.length - 3} more</li> : null}
                        </ul>
                      </td>
                      <td class="c-num">
                        <a href={link(`${base}/${s.id}`)} class={cx('members-count', n > 0 && 'members-live')} data-testid="members-now" aria-label={`${n} in ${s.name} now`}>
                          {num(n)}
                        </a>
                      </td>
                      <td class="minor nowrap" title={fullDate(s.updated_at)}>
                        {when(s.updated_at)}
                      </td>
                      <RowActions base={base} rule={s} writable={writable} onDelete={setDeleting} />
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {loaded && items && items.length && !counts ? <p class="muted small pad">Member counts as of loading the page (the live feed is not connected).</p> : null}
      </section>
      {deleting ? (
        <ConfirmDelete
          what="segment"
          name={deleting.name}
          detail="Campaigns and messages can no longer target it. Visitors are not affected. A segment that a campaign uses cannot be deleted."
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(sitePath(site.id, `/segments/${encodeURIComponent(deleting.id)}`));
            setSegmentItems(site.id, (store.items || []).filter((x) => x.id !== deleting.id));
            toast(`Segment “${deleting.name}” deleted.`);
            setDeleting(null);
            loadSegments(site.id).catch(() => {});
          }}
        />
      ) : null}
    </div>
  );
}

const lowerFirst = (t) => (t && !/^utm_/.test(t) ? t[0].toLowerCase() + t.slice(1) : t);

// ---------- the condition builder ----------

function ConditionFields({ d, upd, disabled, fid, fe }) {
  const text = (name, label, extra = {}) => (
    <Field label={label} id={fid(name)} error={fe(name)} hint={extra.hint}>
      <input
        id={fid(name)}
        value={d[name === 'key' ? 'key_' : name]}
        disabled={disabled}
        spellcheck={false}
        placeholder={extra.placeholder}
        onInput={(e) => upd({ [name === 'key' ? 'key_' : name]: e.currentTarget.value })}
      />
    </Field>
  );
  const number = (name, label, extra = {}) => (
    <Field label={label} id={fid(name)} error={fe(name)} hint={extra.hint}>
      <input
        id={fid(name)}
        type="number"
        step="any"
        inputMode="decimal"
        value={d[name]}
        disabled={disabled}
        placeholder={extra.placeholder}
        onInput={(e) => upd({ [name]: e.currentTarget.value })}
        class="input-narrow"
      />
    </Field>
  );
  const pattern = (placeholder, hint = PATTERN_HINT) => (
    <>
      <div class="field-row cond-pattern">
        <MatchSelect id={fid('match')} value={d.match} onChange={(v) => upd({ match: v })} disabled={disabled} error={fe('match')} />
        {text('value', 'Value', { placeholder })}
      </div>
      {!disabled ? <p class="field-hint cond-hint">{hint}</p> : null}
    </>
  );
  switch (d.type) {
    case 'current_url':
      return pattern('/pricing');
    case 'referrer':
      return pattern('https://www.google.', 'Compared with the whole referrer URL of the session (e.g. https://www.google.com/). In patterns * stays within a path segment, ** crosses them and ? is one character.');
    case 'pages':
      return (
        <>
          {pattern('/cars/')}
          {number('min', 'At least (page views)', { placeholder: '1' })}
        </>
      );
    case 'item':
      return (
        <>
          <div class="field-grid">
            {text('brand', 'Brand', { placeholder: 'Tesla' })}
            {text('model', 'Model', { placeholder: 'Model 3' })}
            {text('category', 'Category', { placeholder: 'Sedan' })}
            {text('name', 'Item name', { placeholder: 'Tesla Model 3 Long Range' })}
            {number('min_price', 'Min price')}
            {number('max_price', 'Max price')}
          </div>
          {number('min', 'At least (items viewed)', { placeholder: '1' })}
          {!disabled ? <p class="field-hint cond-hint">Items are the schema.org data of the pages (products, cars, offers). Text compares case-insensitively; an item must have every attribute given.</p> : null}
        </>
      );
    case 'time_on_site':
    case 'time_on_page':
      return (
        <DurationField
          id={fid('min_seconds')}
          label={d.type === 'time_on_site' ? 'Since the session started, at least' : 'On the current page, at least'}
          value={d.duration}
          onChange={(v) => upd({ duration: v })}
          disabled={disabled}
          error={fe('min_seconds')}
        />
      );
    case 'sessions':
      return (
        <>
          <div class="field-row">
            {number('min', 'At least (sessions)')}
            {number('max', 'At most (sessions)')}
          </div>
          {!disabled ? <p class="field-hint cond-hint">Sessions include the current one: at most 1 means a new visitor.</p> : null}
        </>
      );
    case 'utm':
      return (
        <div class="field-row">
          <Field label="Parameter" id={fid('param')} error={fe('param')}>
            <select id={fid('param')} value={d.param} disabled={disabled} onChange={(e) => upd({ param: e.currentTarget.value })}>
              {UTM_PARAMS.map((p) => (
                <option key={p} value={p}>
                  utm_{p}
                </option>
              ))}
            </select>
          </Field>
          {text('value', 'Is', { placeholder: 'newsletter' })}
        </div>
      );
    case 'device':
      return (
        <Field label="Device is" id={fid('value')} error={fe('value')}>
          <select id={fid('value')} value={d.device} disabled={disabled} onChange={(e) => upd({ device: e.currentTarget.value })} class="input-narrow">
            {DEVICES.map((v) => (
              <option key={v} value={v}>
                {titleCase(v)}
              </option>
            ))}
          </select>
        </Field>
      );
    case 'trait':
      return (
        <div class="field-row">
          {text('key', 'Trait', { placeholder: 'plan' })}
          {text('value', 'Equals (optional)', {
            placeholder: 'pro',
            hint: disabled ? undefined : 'Empty: the trait is set. 42, true and false compare as JSON; quote them ("42") to compare text.',
          })}
        </div>
      );
    case 'event':
      return (
        <>
          <div class="field-row">
            {text('name', 'Event name', { placeholder: 'added_to_cart' })}
            {number('min', 'At least (times)', { placeholder: '1' })}
          </div>
          <PropsEditor d={d} upd={upd} disabled={disabled} fid={fid} error={fe('props')} />
        </>
      );
    default:
      return null;
  }
}

function PropsEditor({ d, upd, disabled, fid, error }) {
  const rows = d.props;
  const set = (i, patch) => upd({ props: rows.map((r, j) => (j === i ? { ...r, ...patch } : r)) });
  return (
    <div class="props-editor">
      <span class="label small">With these properties (optional)</span>
      {rows.map((r, i) => (
        <div class="prop-row" key={i}>
          <label class="sr-only" for={fid('pk' + i)}>
            Property {i + 1} name
          </label>
          <input id={fid('pk' + i)} value={r.k} placeholder="sku" disabled={disabled} spellcheck={false} onInput={(e) => set(i, { k: e.currentTarget.value })} />
          <span aria-hidden="true">=</span>
          <label class="sr-only" for={fid('pv' + i)}>
            Property {i + 1} value
          </label>
          <input id={fid('pv' + i)} value={r.v} placeholder="A-113" disabled={disabled} spellcheck={false} onInput={(e) => set(i, { v: e.currentTarget.value })} />
          {!disabled ? (
            <button type="button" class="icon-btn" aria-label={`Remove property ${i + 1}`} onClick={() => upd({ props: rows.filter((_, j) => j !== i) })}>
              ×
            </button>
          ) : null}
        </div>
      ))}
      {!disabled ? (
        <button type="button" class="link-btn add-prop" onClick={() => upd({ props: rows.concat([{ k: '', v: '' }]) })}>
          + Add a property
        </button>
      ) : null}
      {error ? <div class="field-error">{error}</div> : null}
    </div>
  );
}

function ConditionRow({ d, index, onChange, onRemove, canRemove, disabled, error }) {
  const id = useId('cond');
  const fid = (name) => `${id}-${name}`;
  const fe = (name) => (error && error.field && (error.field === name || error.field.startsWith(name + '.')) ? error.message : null);
  const upd = (patch) => onChange({ ...d, ...patch });
  return (
    <li class={cx('cond', error && 'cond-invalid')} data-condition={index} data-type={d.type}>
      <div class="cond-head">
        <span class="cond-n" aria-hidden="true">
          {index + 1}
        </span>
        <div class="field cond-type">
          <label for={fid('type')}>Condition {index + 1}</label>
          <select id={fid('type')} value={d.type} disabled={disabled} onChange={(e) => upd({ type: e.currentTarget.value })}>
            {CONDITION_TYPES.map((t) => (
              <option key={t.type} value={t.type}>
                {t.label}
              </option>
            ))}
          </select>
        </div>
        {canRemove && !disabled ? (
          <button type="button" class="icon-btn cond-x" aria-label={`Remove condition ${index + 1}`} onClick={onRemove}>
            ×
          </button>
        ) : null}
      </div>
      <div class="cond-fields">
        <ConditionFields d={d} upd={upd} disabled={disabled} fid={fid} fe={fe} />
      </div>
      {error && !fe(error.field) ? (
        <div class="field-error cond-error" role="alert">
          {error.message}
        </div>
      ) : null}
    </li>
  );
}

function SegmentEditor({ site, id }) {
  const writable = canWrite.value;
  const isNew = !id;
  const [loadErr, setLoadErr] = useState(null);
  const [seg, setSeg] = useState(isNew ? {} : null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [match, setMatch] = useState('all');
  const [conds, setConds] = useState(() => (isNew ? [conditionDraft({ type: 'item' })] : []));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const formRef = useRef(null);
  const ids = { name: useId('sg-name'), desc: useId('sg-desc') };
  const base = `/sites/${site.id}/segments`;

  function fill(s) {
    setSeg(s);
    setName(s.name || '');
    setDescription(s.description || '');
    setMatch(s.match === 'any' ? 'any' : 'all');
    setConds((s.conditions || []).map(conditionDraft));
  }
  const load = () => {
    setLoadErr(null);
    api.get(sitePath(site.id, `/segments/${encodeURIComponent(id)}`)).then(fill, setLoadErr);
  };
  useEffect(() => {
    if (!isNew) load();
  }, [id]);

  const target = error && error.code === 'invalid_rule' ? errorTarget(error.message) : null;
  const condError = (i) => (target && target.root === 'conditions' && target.index === i ? { field: target.field, message: error.message } : null);
  const topError = (root) => (target && target.root === root ? error.message : null);
  const definition = { name: name.trim(), description: description.trim() || null, match, conditions: conds.map(conditionOf) };

  async function save(e) {
    e.preventDefault();
    if (!writable) return;
    setError(null);
    setBusy(true);
    try {
      const saved = isNew
        ? await api.post(sitePath(site.id, '/segments'), definition)
        : await api.patch(sitePath(site.id, `/segments/${encodeURIComponent(id)}`), definition);
      toast(`Segment “${saved.name}” saved: ${saved.live_members || 0} ${saved.live_members === 1 ? 'visitor is' : 'visitors are'} in it now.`);
      loadSegments(site.id).catch(() => {});
      navigate(`${base}/${saved.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
      // Bring the message (and the field it names) into view.
      revealFirstError(formRef.current, '.cond-invalid, .field-invalid, .note-error');
    }
  }

  if (loadErr) return <RuleLoadError kind="segment" base={base} error={loadErr} onRetry={load} />;
  if (!seg) return <Spinner />;
  const title = isNew ? 'New segment' : writable ? 'Edit segment' : seg.name;
  return (
    <div class="page page-wide">
      <RuleCrumbs label="Segments" base={base} id={isNew ? null : id} name={seg.name} />
      <PageHeader title={title} sub={writable ? 'Visitors are in the segment while its conditions hold; membership is re-evaluated on every page view, event and identify.' : 'Read only: your role on this site is viewer.'} />
      <div class="rule-grid">
        <form class="rule-form" onSubmit={save} noValidate ref={formRef} aria-label="Segment definition">
          <Card title="Segment" id="sg-basics">
            <div class="form">
              <Field label="Name" id={ids.name} error={topError('name')}>
                <input id={ids.name} value={name} maxLength={100} disabled={!writable} onInput={(e) => setName(e.currentTarget.value)} placeholder="Model 3 shoppers" />
              </Field>
              <Field label="Description (optional)" id={ids.desc} error={topError('description')}>
                <input id={ids.desc} value={description} disabled={!writable} onInput={(e) => setDescription(e.currentTarget.value)} placeholder="Viewed a Model 3 three times this session" />
              </Field>
              <div class={cx('field', topError('match') && 'field-invalid')}>
                <span class="label">Visitors who match</span>
                <Segmented
                  name={ids.name + '-match'}
                  label="Visitors who match"
                  value={match}
                  onChange={setMatch}
                  disabled={!writable}
                  options={[
                    { value: 'all', label: 'All conditions' },
                    { value: 'any', label: 'Any condition' },
                  ]}
                />
                {topError('match') ? <div class="field-error">{topError('match')}</div> : null}
              </div>
            </div>
          </Card>
          <Card title="Conditions" id="sg-conds">
            <ol class={cx('conds', match === 'any' ? 'conds-any' : 'conds-all')}>
              {conds.map((d, i) => (
                <ConditionRow
                  key={d.key}
                  d={d}
                  index={i}
                  disabled={!writable}
                  canRemove={conds.length > 1}
                  error={condError(i)}
                  onChange={(nd) => setConds((cs) => cs.map((c) => (c.key === d.key ? nd : c)))}
                  onRemove={() => setConds((cs) => cs.filter((c) => c.key !== d.key))}
                />
              ))}
            </ol>
            {topError('conditions') && target.index === null ? <p class="field-error pad">{error.message}</p> : null}
            {writable ? (
              <div class="conds-add">
                <button type="button" class="btn btn-sm" onClick={() => setConds((cs) => cs.concat([conditionDraft({ type: 'current_url' })]))} disabled={conds.length >= 50}>
                  + Add condition
                </button>
              </div>
            ) : null}
          </Card>
          {writable ? (
            <div class="form-foot">
              <ErrorNote error={error} />
              <div class="form-actions">
                <a class="btn" href={link(isNew ? base : `${base}/${id}`)}>
                  Cancel
                </a>
                <button type="submit" class="btn btn-primary" disabled={busy}>
                  {busy ? 'Saving…' : isNew ? 'Create segment' : 'Save segment'}
                </button>
              </div>
            </div>
          ) : null}
        </form>
        <aside class="rule-side">
          <Card title="In words" id="sg-words">
            <div class="pad words">
              <p class="muted small">Visitors who {conds.length > 1 ? (match === 'any' ? 'match any of:' : 'match all of:') : ''}</p>
              <ul class="cond-sum">
                {definition.conditions.map((c, i) => (
                  <li key={i}>{lowerFirst(conditionSummary(c)) || '…'}</li>
                ))}
              </ul>
              {!isNew ? (
                <p class="small">
                  <a href={link(`${base}/${id}`)}>
                    {num(seg.live_members || 0)} in it now
                  </a>
                </p>
              ) : null}
            </div>
          </Card>
        </aside>
      </div>
    </div>
  );
}

// ---------- who is in a segment now ----------

function SegmentMembers({ site, id }) {
  const l = live.value;
  const version = l ? l.version.value : 0;
  const { names } = useSegments(site.id);
  const [seg, setSeg] = useState(null);
  const [members, setMembers] = useState(null);
  const [error, setError] = useState(null);
  const [at, setAt] = useState(0);
  const [deleting, setDeleting] = useState(false);
  const timer = useRef(0);
  const writable = canWrite.value;
  const base = `/sites/${site.id}/segments`;

  async function loadMembers() {
    try {
      const r = await api.get(sitePath(site.id, `/segments/${encodeURIComponent(id)}/members`));
      // `visitors` today; `items` if the endpoint follows the contract's list shape one day.
      const list = r && (Array.isArray(r.items) ? r.items : r.visitors);
      setMembers(Array.isArray(list) ? list : []);
      setAt(Date.now());
      setError(null);
    } catch (e) {
      setError(e);
    }
  }
  useEffect(() => {
    api.get(sitePath(site.id, `/segments/${encodeURIComponent(id)}`)).then(setSeg, setError);
    loadMembers();
    // A safety net for changes the socket did not tell (e.g. the socket is down).
    const t = setInterval(() => document.visibilityState === 'visible' && loadMembers(), 15_000);
    return () => {
      clearInterval(t);
      clearTimeout(timer.current);
    };
  }, [id]);
  // Membership changes arrive as `segments` frames; arrivals and departures as joined/left.
  useEffect(() => {
    if (!l) return;
    return l.subscribe((f) => {
      if (f.type === 'segments' || f.type === 'left' || f.type === 'joined' || f.type === 'snapshot') {
        clearTimeout(timer.current);
        timer.current = setTimeout(loadMembers, 400);
      }
    });
  }, [l, id]);

  // Rows follow the live state of each member (page, tabs) between fetches.
  const rows = useMemo(() => {
    if (!members) return null;
    return members
      .map((m) => (l && l.visitors.get(m.visitor)) || normalise(m, null))
      .filter((v) => !l || !l.hadSnapshot.value || l.visitors.has(v.id) || !l.open)
      .sort((a, b) => b.startedAt - a.startedAt);
  }, [members, l, version]);

  if (error && error.status === 404) {
    return (
      <div class="page">
        <PageHeader title="Segment" />
        <Empty title="Segment not found" icon="?">
          It may have been deleted. <a href={link(base)}>All segments</a>
        </Empty>
      </div>
    );
  }
  const conds = seg && Array.isArray(seg.conditions) ? seg.conditions : [];
  return (
    <div class="page page-wide">
      <RuleCrumbs label="Segments" base={base} />
      <PageHeader title={seg ? seg.name : 'Segment'} sub={seg && seg.description ? seg.description : 'Who is in this segment right now.'}>
        {writable ? (
          <a class="btn" href={link('/sites/' + site.id + '/send', { segment: id })}>
            Send them a message
          </a>
        ) : null}
        <a class={cx('btn', writable && 'btn-primary')} href={link(`${base}/${id}/edit`)}>
          {writable ? 'Edit segment' : 'View definition'}
        </a>
        {writable && seg ? (
          <button type="button" class="btn btn-ghost-danger" onClick={() => setDeleting(true)}>
            Delete…
          </button>
        ) : null}
      </PageHeader>
      {deleting && seg ? (
        <ConfirmDelete
          what="segment"
          name={seg.name}
          detail="Campaigns and messages can no longer target it. Visitors are not affected. A segment that a campaign uses cannot be deleted."
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.del(sitePath(site.id, `/segments/${encodeURIComponent(id)}`));
            toast(`Segment “${seg.name}” deleted.`);
            loadSegments(site.id).catch(() => {});
            navigate(base);
          }}
        />
      ) : null}
      {seg ? (
        <div class="rule-summary">
          <span class="muted small">{conds.length > 1 ? (seg.match === 'any' ? 'Any of:' : 'All of:') : 'Condition:'}</span>
          <ul class="cond-chips">
            {conds.map((c, i) => (
              <li key={i} class="cond-chip">
                {conditionSummary(c)}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <section class="card" aria-labelledby="mem-h">
        <div class="card-head">
          <h2 id="mem-h">
            Members now <span class="count" data-testid="members-count">{rows ? rows.length : '…'}</span>
          </h2>
          <span class="muted small">{at ? 'Live · checked ' + when(at) : ''}</span>
        </div>
        {error ? <ErrorNote error={error} onRetry={loadMembers} /> : null}
        {!rows ? (
          error ? null : <Spinner />
        ) : !rows.length ? (
          <Empty title="Nobody is in this segment right now" icon="◌">
            Visitors appear here the moment they match, and leave when they no longer do or leave the site.
          </Empty>
        ) : (
          <div class="table-scroll">
            <table class="table table-members">
              <thead>
                <tr>
                  <th scope="col">Visitor</th>
                  <th scope="col">Current page</th>
                  <th scope="col" class="c-num">
                    On site
                  </th>
                  <th scope="col" class="c-num minor">
                    Pages
                  </th>
                  <th scope="col" class="minor">
                    Source
                  </th>
                  <th scope="col" class="minor">
                    Other segments
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((v) => {
                  const traits = traitsSummary(v.traits);
                  return (
                    <tr key={v.id} data-visitor={v.id}>
                      <td class="c-visitor">
                        <a
                          href={link(`${base}/${id}`, { visitor: v.id })}
                          class="visitor-link"
                          onClick={(e) => {
                            e.preventDefault();
                            setQuery({ visitor: v.id });
                          }}
                        >
                          <span class={cx('who-dot', v.user_id && 'who-known')} aria-hidden="true" />
                          <span class={cx('visitor-name', !v.user_id && 'mono anon')}>{v.user_id ? String(v.user_id) : shortId(v.id)}</span>
                        </a>
                        {traits ? <div class="sub trunc">{traits}</div> : null}
                      </td>
                      <td class="c-page">
                        <div class="trunc page-title" title={v.title || v.path}>
                          {v.title || v.path}
                        </div>
                        <div class="sub mono trunc" title={v.url}>
                          {v.path}
                        </div>
                      </td>
                      <td class="c-num">
                        <Since at={v.startedAt} />
                      </td>
                      <td class="c-num minor">{v.pageviews}</td>
                      <td class="minor">
                        <span class={cx('src', 'src-' + v.source.kind)} title={v.source.detail}>
                          {v.source.label}
                        </span>
                      </td>
                      <td class="minor">
                        <SegmentBadges ids={v.segments.filter((s) => s !== id)} names={names} siteId={site.id} links empty={<span class="muted">—</span>} />
                      </td>
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
