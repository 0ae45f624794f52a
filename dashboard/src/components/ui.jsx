// Small shared building blocks. Nothing here renders HTML from strings: text from visitors goes
// through Preact's text nodes only.
import { useEffect, useLayoutEffect, useRef, useState, useCallback } from 'preact/hooks';
import { copyText } from '../lib/clipboard.js';
import { duration } from '../lib/format.js';
import { toast } from '../lib/toast.js';

export function cx(...a) {
  return a.filter(Boolean).join(' ');
}

export function Spinner({ label = 'Loading…', inline }) {
  return (
    <div class={cx('loading', inline && 'loading-inline')} role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function ErrorNote({ error, onRetry }) {
  if (!error) return null;
  const msg = typeof error === 'string' ? error : error.message || 'Something went wrong.';
  return (
    <div class="note note-error" role="alert">
      <span>{msg}</span>
      {error.code && typeof error !== 'string' && error.code !== 'network' ? <code class="muted small">{error.code}</code> : null}
      {onRetry ? (
        <button type="button" class="btn btn-sm" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Empty({ title, children, icon = '○' }) {
  return (
    <div class="empty">
      <div class="empty-icon" aria-hidden="true">
        {icon}
      </div>
      <div class="empty-title">{title}</div>
      {children ? <div class="empty-body">{children}</div> : null}
    </div>
  );
}

export function PageHeader({ title, sub, children }) {
  return (
    <header class="page-header">
      <div>
        <h1>{title}</h1>
        {sub ? <p class="page-sub">{sub}</p> : null}
      </div>
      {children ? <div class="page-actions">{children}</div> : null}
    </header>
  );
}

export function Card({ title, actions, children, class: klass, id }) {
  return (
    <section class={cx('card', klass)} aria-labelledby={title && id ? id + '-h' : undefined}>
      {title || actions ? (
        <div class="card-head">
          {title ? <h2 id={id ? id + '-h' : undefined}>{title}</h2> : <span />}
          {actions}
        </div>
      ) : null}
      {children}
    </section>
  );
}

let fieldSeq = 0;
export function useId(prefix = 'f') {
  const r = useRef(null);
  if (!r.current) r.current = `${prefix}-${++fieldSeq}`;
  return r.current;
}

export function Field({ label, hint, error, children, id, class: klass }) {
  return (
    <div class={cx('field', klass, error && 'field-invalid')}>
      <label for={id}>{label}</label>
      {children}
      {error ? (
        <div class="field-error" id={id + '-err'}>
          {error}
        </div>
      ) : hint ? (
        <div class="field-hint" id={id + '-hint'}>
          {hint}
        </div>
      ) : null}
    </div>
  );
}

export function CopyButton({ text, label = 'Copy', class: klass }) {
  const [done, setDone] = useState(false);
  useEffect(() => {
    if (!done) return;
    const t = setTimeout(() => setDone(false), 1800);
    return () => clearTimeout(t);
  }, [done]);
  return (
    <button
      type="button"
      class={cx('btn btn-sm', klass)}
      onClick={async () => {
        if (await copyText(text)) setDone(true);
        else toast('Copying failed; select the text and copy it by hand.', 'error');
      }}
    >
      {done ? 'Copied ✓' : label}
    </button>
  );
}

export function CodeBlock({ code, label = 'Copy', copyLabel }) {
  return (
    <div class="code-block">
      <pre>
        <code>{code}</code>
      </pre>
      <CopyButton text={code} label={label} aria-label={copyLabel} />
    </div>
  );
}

/** Radio buttons that look like a segmented control. */
export function Segmented({ name, value, options, onChange, label, disabled }) {
  return (
    <div class="segmented" role="radiogroup" aria-label={label}>
      {options.map((o) => (
        <label class={cx('seg', value === o.value && 'seg-on', disabled && 'seg-disabled')} key={o.value}>
          <input
            type="radio"
            name={name}
            value={o.value}
            checked={value === o.value}
            disabled={disabled}
            onChange={() => onChange(o.value)}
          />
          <span>{o.label}</span>
        </label>
      ))}
    </div>
  );
}

/** A modal dialog: traps nothing fancy, but takes focus, closes on Escape and gives focus back. */
export function Modal({ title, onClose, children, footer, wide }) {
  const ref = useRef(null);
  const id = useId('dlg');
  useEffect(() => {
    const prev = document.activeElement;
    const el = ref.current;
    const first = el && el.querySelector('input, textarea, select, button:not(.modal-x)');
    (first || el).focus();
    const onKey = (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        onClose();
      }
      if (e.key === 'Tab' && el) {
        const items = el.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]), textarea, select');
        if (!items.length) return;
        const a = items[0];
        const b = items[items.length - 1];
        if (e.shiftKey && document.activeElement === a) {
          e.preventDefault();
          b.focus();
        } else if (!e.shiftKey && document.activeElement === b) {
          e.preventDefault();
          a.focus();
        }
      }
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      if (prev && prev.focus) prev.focus();
    };
  }, []);
  return (
    <div class="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div class={cx('modal', wide && 'modal-wide')} role="dialog" aria-modal="true" aria-labelledby={id} ref={ref} tabIndex={-1}>
        <div class="modal-head">
          <h2 id={id}>{title}</h2>
          <button type="button" class="icon-btn modal-x" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </div>
        <div class="modal-body">{children}</div>
        {footer ? <div class="modal-foot">{footer}</div> : null}
      </div>
    </div>
  );
}

// One interval drives every ticking duration; each updates its own text node, no re-render.
const tickers = new Set();
let tickTimer = 0;
function tickAll() {
  const now = Date.now();
  for (const t of tickers) t(now);
}
function startTicks() {
  if (tickTimer) return;
  tickTimer = setInterval(tickAll, 1000);
}

/** Shows the time since `at` (ms), updated every second without rendering. */
export function Since({ at, class: klass }) {
  const ref = useRef(null);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const update = (now) => {
      const s = duration(now - at);
      if (el.textContent !== s) el.textContent = s;
    };
    update(Date.now());
    tickers.add(update);
    startTicks();
    return () => tickers.delete(update);
  }, [at]);
  return <span ref={ref} class={cx('tick', klass)} />;
}

/** Loads data for a component: {data, error, loading, reload, setData}. */
export function useAsync(fn, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const seq = useRef(0);
  const run = useCallback(() => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve()
      .then(fn)
      .then(
        (data) => n === seq.current && setState({ data, error: null, loading: false }),
        (error) => n === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
      );
  }, deps);
  useEffect(() => {
    run();
    return () => {
      seq.current++;
    };
  }, [run]);
  const setData = useCallback((f) => setState((s) => ({ ...s, data: typeof f === 'function' ? f(s.data) : f })), []);
  return { ...state, reload: run, setData };
}

export function Badge({ kind = 'neutral', children, title }) {
  return (
    <span class={cx('badge', 'badge-' + kind)} title={title}>
      {children}
    </span>
  );
}

export function Bar({ value, max }) {
  const ref = useRef(null);
  useLayoutEffect(() => {
    if (ref.current) ref.current.style.width = (max ? Math.max(2, (100 * value) / max) : 0) + '%';
  }, [value, max]);
  return (
    <span class="bar" aria-hidden="true">
      <span class="bar-fill" ref={ref} />
    </span>
  );
}
