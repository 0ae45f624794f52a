// The message composer's parts, shared by Send (a message now) and campaigns (a message the
// server sends by itself): the fields, the placeholder buttons, the preview and the outcome counts.
import { useRef } from 'preact/hooks';
import { num } from '../lib/format.js';
import { Field, Segmented, useId, cx } from './ui.jsx';

export const STYLES = [
  { value: 'toast', label: 'Toast' },
  { value: 'banner', label: 'Banner' },
  { value: 'modal', label: 'Modal' },
];

/** What campaign messages can be filled with (docs/TARGETING.md). */
export const PLACEHOLDERS = ['brand', 'model', 'price', 'currency', 'name', 'category', 'sku', 'url', 'title', 'user_id'];

/** Example values for the preview of a campaign message. */
export const EXAMPLE_VALUES = {
  brand: 'Tesla',
  model: 'Model 3',
  price: '41990',
  currency: 'USD',
  name: 'Tesla Model 3 Long Range',
  category: 'Sedan',
  sku: 'TM3-LR',
  url: 'https://your-site.com/cars/tesla-model-3',
  title: 'Tesla Model 3 — Your Site',
  user_id: 'user-42',
};

/** Replaces {{…}} with example values (traits show their key). */
export function fillExample(text) {
  return String(text || '').replace(/\{\{\s*([^}]*?)\s*\}\}/g, (m, name) => {
    if (name.startsWith('trait.') && name.length > 6) return name.slice(6);
    return Object.prototype.hasOwnProperty.call(EXAMPLE_VALUES, name) ? EXAMPLE_VALUES[name] : m;
  });
}

/** Draft fields → the API's message object (keeps `data` of an edited message). */
export function toMessage(v, data) {
  const cta = v.ctaLabel.trim() || v.ctaUrl.trim() ? { label: v.ctaLabel.trim(), url: v.ctaUrl.trim() } : null;
  return { title: v.title.trim(), body: v.body.trim(), style: v.style, cta, data: data && typeof data === 'object' ? data : {} };
}

export function fromMessage(m) {
  const x = m || {};
  return {
    title: x.title || '',
    body: x.body || '',
    style: x.style || 'toast',
    ctaLabel: (x.cta && x.cta.label) || '',
    ctaUrl: (x.cta && x.cta.url) || '',
  };
}

export const emptyMessage = () => fromMessage(null);

/**
 * Title, body, style and call to action. `value` is {title, body, style, ctaLabel, ctaUrl};
 * `onChange` gets the changed fields. With `placeholders`, buttons insert {{…}} at the caret of
 * the last focused text field.
 */
export function MessageFields({ value, onChange, errors = {}, disabled, placeholders, limits }) {
  const max = { title: 120, body: 1000, ...(limits || {}) };
  const ids = {
    title: useId('m-title'),
    body: useId('m-body'),
    ctaLabel: useId('m-cta-l'),
    ctaUrl: useId('m-cta-u'),
    ph: useId('m-ph'),
  };
  const els = useRef({});
  const last = useRef('body');
  const reg = (name) => (el) => {
    els.current[name] = el;
  };
  const focus = (name) => () => {
    last.current = name;
  };

  function insert(token, caretBack = 0) {
    const name = last.current;
    const el = els.current[name];
    const cur = value[name] || '';
    const start = el && typeof el.selectionStart === 'number' ? el.selectionStart : cur.length;
    const end = el && typeof el.selectionEnd === 'number' ? el.selectionEnd : cur.length;
    const next = cur.slice(0, start) + token + cur.slice(end);
    onChange({ [name]: next });
    const caret = start + token.length - caretBack;
    requestAnimationFrame(() => {
      if (!el) return;
      el.focus();
      try {
        el.setSelectionRange(caret, caret);
      } catch {
        /* not a text field */
      }
    });
  }

  return (
    <>
      <Field label="Title" id={ids.title} error={errors.title}>
        <input
          id={ids.title}
          ref={reg('title')}
          value={value.title}
          maxLength={max.title}
          disabled={disabled}
          onFocus={focus('title')}
          onInput={(e) => onChange({ title: e.currentTarget.value })}
          placeholder="Need a hand?"
        />
      </Field>
      <Field label="Body" id={ids.body} error={errors.body}>
        <textarea
          id={ids.body}
          ref={reg('body')}
          rows={3}
          value={value.body}
          maxLength={max.body}
          disabled={disabled}
          onFocus={focus('body')}
          onInput={(e) => onChange({ body: e.currentTarget.value })}
          placeholder="We can help you choose — reply to chat with a specialist."
        />
      </Field>
      {placeholders && !disabled ? (
        <div class="placeholders" role="group" aria-labelledby={ids.ph}>
          <span class="label small" id={ids.ph}>
            Insert a placeholder
          </span>
          <div class="ph-list">
            {PLACEHOLDERS.map((p) => (
              <button type="button" class="ph" key={p} onMouseDown={(e) => e.preventDefault()} onClick={() => insert(`{{${p}}}`)} aria-label={`Insert {{${p}}}`}>
                {`{{${p}}}`}
              </button>
            ))}
            <button type="button" class="ph" onMouseDown={(e) => e.preventDefault()} onClick={() => insert('{{trait.}}', 2)} aria-label="Insert {{trait.KEY}}">
              {'{{trait.KEY}}'}
            </button>
          </div>
          <p class="field-hint">
            Filled in for each visitor: brand, model, price, currency, name, category and sku of the last item they viewed; url and title
            of their page; their user_id; trait.KEY for one of their traits. Unknown placeholders are refused.
          </p>
        </div>
      ) : null}
      <div class="field">
        <span class="label">Style</span>
        <Segmented name={ids.title + '-style'} label="Style" value={value.style} onChange={(s) => onChange({ style: s })} options={STYLES} disabled={disabled} />
      </div>
      <div class="field-row">
        <Field label="Button label (optional)" id={ids.ctaLabel} error={errors.ctaLabel}>
          <input
            id={ids.ctaLabel}
            ref={reg('ctaLabel')}
            value={value.ctaLabel}
            maxLength={60}
            disabled={disabled}
            onFocus={focus('ctaLabel')}
            onInput={(e) => onChange({ ctaLabel: e.currentTarget.value })}
            placeholder="Book a test drive"
          />
        </Field>
        <Field label="Button link" id={ids.ctaUrl} error={errors.ctaUrl}>
          <input
            id={ids.ctaUrl}
            type="url"
            value={value.ctaUrl}
            disabled={disabled}
            onInput={(e) => onChange({ ctaUrl: e.currentTarget.value })}
            placeholder="https://…"
            spellcheck={false}
          />
        </Field>
      </div>
    </>
  );
}

export function MessagePreview({ message }) {
  const { title, body, style, cta } = message;
  const empty = !title && !body;
  const content = (
    <div class={cx('pv-msg', 'pv-' + style)} role="img" aria-label={`Preview of a ${style}`}>
      <div class="pv-msg-text">
        {title ? <div class="pv-title">{title}</div> : null}
        {body ? <div class="pv-body">{body}</div> : null}
        {empty ? <div class="pv-body pv-placeholder">Your message appears here.</div> : null}
      </div>
      {cta && cta.label ? <span class="pv-cta">{cta.label}</span> : null}
      <span class="pv-close" aria-hidden="true">
        ×
      </span>
    </div>
  );
  return (
    <div class="preview" aria-live="polite">
      <div class="pv-chrome" aria-hidden="true">
        <span class="pv-dots">
          <i />
          <i />
          <i />
        </span>
        <span class="pv-url">your-site.com</span>
      </div>
      <div class="pv-page">
        {style === 'banner' ? content : null}
        <div class="pv-skel" aria-hidden="true">
          <i class="w60" />
          <i class="w90" />
          <i class="w80" />
          <i class="w40" />
          <b />
          <i class="w70" />
          <i class="w85" />
        </div>
        {style === 'toast' ? content : null}
        {style === 'modal' ? <div class="pv-backdrop">{content}</div> : null}
      </div>
    </div>
  );
}

export function Outcome({ counts }) {
  const c = counts || {};
  return (
    <dl class="outcome">
      {['delivered', 'shown', 'clicked', 'dismissed'].map((k) => (
        <div key={k} class={'oc oc-' + k} data-status={k}>
          <dt>{k}</dt>
          <dd>{num(c[k] || 0)}</dd>
        </div>
      ))}
    </dl>
  );
}
