// Small form parts of the targeting pages: URL patterns, durations, the enabled switch, the
// delete confirmation.
import { useState } from 'preact/hooks';
import { Field, Modal, ErrorNote, cx } from '../../components/ui.jsx';
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
