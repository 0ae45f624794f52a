// Small form parts of the targeting pages: URL patterns, durations, the enabled switch, the
// delete confirmation.
import { useState } from 'preact/hooks';
import { Field, Modal, ErrorNote, PageHeader, Empty, cx } from '../../components/ui.jsx';
import { link } from '../../lib/router.js';
import { MATCH_KINDS, UNITS } from './common.js';

export function MatchSelect({ id, value, onChange, disabled, label = 'Match', error }) {
  return (
    <Field label={label} id={id} error={error}>
      <select id={id} value={value} disabled={disabled} onChange={(e) => onChange(e.currentTarget.value)}>
        {MATCH_KINDS.map((m) => (
          <option key={m.value} value={m.value}>
            {m.label}
          </option>
        ))}
      </select>
    </Field>
  );
}

export const PATTERN_HINT =
  'A value starting with / is matched against the path and query, anything else against the whole URL. In patterns * stays within a path segment, ** crosses them and ? is one character.';

/** A number with a unit (seconds, minutes, hours, days); `value` is {amount, unit}. */
export function DurationField({ id, label, value, onChange, disabled, error, hint, units = UNITS }) {
  return (
    <Field label={label} id={id} error={error} hint={hint}>
      <div class="duration">
        <input
          id={id}
          type="number"
          min="1"
          step="any"
          inputMode="numeric"
          value={value.amount}
          disabled={disabled}
          onInput={(e) => onChange({ ...value, amount: e.currentTarget.value })}
        />
        <select aria-label={`${label}: unit`} value={value.unit} disabled={disabled} onChange={(e) => onChange({ ...value, unit: Number(e.currentTarget.value) })}>
          {units.map((u) => (
            <option key={u.value} value={u.value}>
              {u.label}
            </option>
          ))}
        </select>
      </div>
    </Field>
  );
}

/** An on/off switch (a checkbox with role=switch). */
export function Switch({ checked, onChange, disabled, label, showLabel }) {
  return (
    <label class={cx('switch', checked && 'switch-on', disabled && 'switch-disabled')}>
      <input type="checkbox" role="switch" checked={checked} disabled={disabled} aria-label={showLabel ? undefined : label} onChange={(e) => onChange(e.currentTarget.checked)} />
      <span class="switch-track" aria-hidden="true">
        <span class="switch-knob" />
      </span>
      {showLabel ? <span class="switch-text">{label}</span> : null}
    </label>
  );
}

/** "Delete X?" with the server's refusal (e.g. a segment a campaign uses) shown in the dialog. */
export function ConfirmDelete({ what, name, detail, onConfirm, onClose }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function go() {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  }
  return (
    <Modal
      title={`Delete the ${what} “${name}”?`}
      onClose={onClose}
      footer={
        <>
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="button" class="btn btn-danger" disabled={busy} onClick={go}>
            {busy ? 'Deleting…' : `Delete ${what}`}
          </button>
        </>
      }
    >
      <p>{detail}</p>
      <ErrorNote error={error} />
    </Modal>
  );
}

/** The Edit/View and Delete buttons of a rule's row in a list; `children` go first (e.g. Results). */
export function RowActions({ base, rule, writable, onDelete, children }) {
  return (
    <td class="c-actions minor">
      {children}
      <a class="btn btn-sm" href={link(`${base}/${rule.id}/edit`)} aria-label={`${writable ? 'Edit' : 'View'} ${rule.name}`}>
        {writable ? 'Edit' : 'View'}
      </a>
      {writable ? (
        <button type="button" class="btn btn-sm btn-ghost-danger" onClick={() => onDelete(rule)} aria-label={`Delete ${rule.name}`}>
          Delete
        </button>
      ) : null}
    </td>
  );
}

/** The page shown when a rule could not be loaded: gone (404) or an error to retry. */
export function RuleLoadError({ kind, base, error, onRetry }) {
  const Kind = kind[0].toUpperCase() + kind.slice(1);
  return (
    <div class="page">
      <PageHeader title={Kind} />
      {error.status === 404 ? (
        <Empty title={`${Kind} not found`} icon="?">
          It may have been deleted. <a href={link(base)}>All {kind}s</a>
        </Empty>
      ) : (
        <ErrorNote error={error} onRetry={onRetry} />
      )}
    </div>
  );
}

/** Breadcrumbs of a rule's pages: the list, then the rule itself once it exists. */
export function RuleCrumbs({ label, base, id, name }) {
  return (
    <nav class="crumbs" aria-label="Breadcrumb">
      <a href={link(base)}>{label}</a>
      {id ? (
        <>
          <span aria-hidden="true">/</span>
          <a href={link(`${base}/${id}`)}>{name}</a>
        </>
      ) : null}
    </nav>
  );
}

/** After a refused save, bring the first field the server named into view. */
export function revealFirstError(form, selector) {
  requestAnimationFrame(() => {
    const el = form && form.querySelector(selector);
    if (el && el.scrollIntoView) el.scrollIntoView({ block: 'center' });
  });
}
