/*
 * Lookout message display, loaded by the snippet only when the first message to show arrives.
 *
 * It hands itself to the snippet with lookout('_ui', render) and defines no global. Messages are
 * drawn inside an open Shadow DOM on one <lookout-ui> element, so the page's styles neither leak
 * in nor get broken; all visitor-facing text goes through textContent, never HTML. Styles:
 * toast (bottom right, role=status), banner (top, role=status) and modal (role=dialog,
 * aria-modal, focus moved in and kept in, Escape closes, focus given back on close). It reports
 * `shown` when a message is displayed, `clicked` on its call-to-action and `dismissed` on close.
 *
 * Accent colour: the page may set the CSS custom property --lookout-accent (it inherits into the
 * shadow tree).
 */
(function () {
  'use strict';
  try {
    const d = document;
    const CSS =
      '*{box-sizing:border-box;margin:0;padding:0;font:inherit;color:inherit}' +
      '.top,.stack,.overlay{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;' +
      'color:#111827;-webkit-font-smoothing:antialiased;--a:var(--lookout-accent,#2563eb)}' +
      '.top{position:fixed;top:0;left:0;right:0;display:flex;flex-direction:column}' +
      '.stack{position:fixed;right:16px;bottom:16px;width:min(380px,calc(100vw - 32px));display:flex;flex-direction:column;gap:12px}' +
      '.card{position:relative;display:flex;gap:12px;align-items:flex-start;background:#fff;border-radius:14px;' +
      'padding:16px 12px 16px 18px;box-shadow:0 12px 32px rgba(17,24,39,.18),0 2px 6px rgba(17,24,39,.08);' +
      'border:1px solid rgba(17,24,39,.08);animation:in .22s ease-out}' +
      '.toast{border-left:4px solid var(--a)}' +
      '.text{flex:1;min-width:0;overflow-wrap:anywhere}' +
      '.title{font-weight:650;font-size:1.02em;line-height:1.3}' +
      '.body{color:#4b5563;white-space:pre-line;margin-top:2px}' +
      '.title+.body{margin-top:4px}' +
      '.cta{display:inline-block;margin-top:12px;padding:8px 16px;border-radius:9px;background:var(--a);color:#fff;' +
      'font-weight:600;text-decoration:none;transition:filter .15s}' +
      '.cta:hover{filter:brightness(1.1)}' +
      '.x{flex:none;width:30px;height:30px;border:0;border-radius:50%;background:transparent;color:#6b7280;cursor:pointer;' +
      'font-size:20px;line-height:30px;text-align:center;transition:background .15s}' +
      '.x:hover{background:rgba(107,114,128,.14);color:#111827}' +
      'a:focus-visible,button:focus-visible{outline:3px solid var(--a);outline-offset:2px}' +
      '.banner{border-radius:0;border:0;box-shadow:0 4px 16px rgba(17,24,39,.22);background:#111827;color:#f9fafb;' +
      'align-items:center;padding:12px 16px 12px 24px;animation-name:down}' +
      '.banner .text{display:flex;flex-wrap:wrap;align-items:baseline;column-gap:12px}' +
      '.banner .body{color:#d1d5db;margin:0}' +
      '.banner .cta{margin:0;background:#fff;color:#111827}' +
      '.banner .x{color:#d1d5db}.banner .x:hover{background:rgba(255,255,255,.14);color:#fff}' +
      '.overlay{position:fixed;inset:0;display:flex;align-items:center;justify-content:center;padding:16px;' +
      'background:rgba(17,24,39,.55);animation:fade .2s ease-out}' +
      '.modal{flex-direction:column;gap:0;width:min(460px,100%);max-height:calc(100vh - 32px);overflow:auto;' +
      'padding:28px 28px 24px;border-radius:18px;outline:0}' +
      '.modal .title{font-size:1.3em;padding-right:28px}' +
      '.modal .body{font-size:1em;margin-top:8px}' +
      '.modal .cta{margin-top:20px;padding:10px 20px}' +
      '.modal .x{position:absolute;top:12px;right:12px}' +
      '@keyframes in{from{opacity:0;transform:translateY(10px)}}' +
      '@keyframes down{from{opacity:0;transform:translateY(-100%)}}' +
      '@keyframes fade{from{opacity:0}}' +
      '@media (prefers-color-scheme:dark){.top,.stack,.overlay{color:#f9fafb}' +
      '.card{background:#1f2937;border-color:rgba(255,255,255,.1)}.body{color:#d1d5db}.x{color:#9ca3af}' +
      '.x:hover{color:#fff;background:rgba(255,255,255,.12)}.banner{background:#030712}}' +
      '@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}';

    let root = null;
    let host = null;
    let top = null;
    let stack = null;
    let count = 0;

    const el = (tag, cls, text) => {
      const e = d.createElement(tag);
      if (cls) e.className = cls;
      if (text) e.textContent = text;
      return e;
    };
    const safe = (fn) => function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {}
    };
    const listen = (target, type, fn) => target.addEventListener(type, safe(fn));

    const mount = () => {
      if (!host) {
        host = el('lookout-ui');
        // Inline !important beats every rule of the page on the host element itself.
        host.style.cssText =
          'all:initial!important;display:block!important;position:fixed!important;top:0!important;' +
          'left:0!important;width:0!important;height:0!important;z-index:2147483647!important';
        root = host.attachShadow({ mode: 'open' });
        root.appendChild(el('style', '', CSS));
        root.appendChild((top = el('div', 'top')));
        root.appendChild((stack = el('div', 'stack')));
      }
      // A page that rewrites its body may have taken the host out.
      if (!host.isConnected) (d.body || d.documentElement).appendChild(host);
    };

    // Only http(s) links, resolved against the page; anything else (javascript:, data:) is dropped.
    const link = (cta) => {
      if (!cta || typeof cta.url != 'string') return null;
      const url = new URL(cta.url, location.href);
      return /^https?:$/.test(url.protocol) ? url.href : null;
    };

    const render = (message, ack) => {
      mount();
      const id = message.id;
      const style = message.style == 'modal' || message.style == 'banner' ? message.style : 'toast';
      const modal = style == 'modal';
      const n = ++count;
      const card = el('div', 'card ' + style);
      const text = el('div', 'text');
      const title = message.title ? el(modal ? 'h2' : 'p', 'title', String(message.title)) : null;
      const body = message.body ? el('p', 'body', String(message.body)) : null;
      const href = link(message.cta);
      const close = el('button', 'x', '\u00d7');
      const previous = d.activeElement;
      let outer = card;
      let cta = null;
      let open = true;

      const remove = (status) => {
        if (!open) return;
        open = false;
        outer.remove();
        if (status) ack(id, status);
        if (modal && previous && previous.focus && previous.isConnected) previous.focus();
      };

      if (title) {
        title.id = 'lk-t' + n;
        text.appendChild(title);
      }
      if (body) {
        body.id = 'lk-b' + n;
        text.appendChild(body);
      }
      if (href) {
        cta = el('a', 'cta', String((message.cta && message.cta.label) || 'Open'));
        cta.href = href;
        cta.rel = 'noopener';
        listen(cta, 'click', () => remove() || ack(id, 'clicked'));
      }
      close.type = 'button';
      close.setAttribute('aria-label', 'Close');
      listen(close, 'click', () => remove('dismissed'));

      if (modal) {
        card.appendChild(text);
        if (cta) text.appendChild(el('div')).appendChild(cta);
        card.appendChild(close);
        card.setAttribute('role', 'dialog');
        card.setAttribute('aria-modal', 'true');
        card.tabIndex = -1;
        if (title) card.setAttribute('aria-labelledby', title.id);
        else card.setAttribute('aria-label', 'Message');
        if (body) card.setAttribute('aria-describedby', body.id);
        outer = el('div', 'overlay');
        outer.appendChild(card);
        listen(outer, 'click', (event) => event.target == outer && remove('dismissed'));
        listen(card, 'keydown', (event) => {
          if (event.key == 'Escape') {
            event.stopPropagation();
            remove('dismissed');
          } else if (event.key == 'Tab') {
            // Keep focus inside the dialog.
            const stops = cta ? [cta, close] : [close];
            const first = stops[0];
            const last = stops[stops.length - 1];
            const active = root.activeElement;
            if (event.shiftKey ? active == first || active == card : active == last) {
              event.preventDefault();
              (event.shiftKey ? last : first).focus();
            }
          }
        });
        root.appendChild(outer);
        card.focus();
      } else {
        card.setAttribute('role', 'status');
        card.setAttribute('aria-live', 'polite');
        if (cta) text.appendChild(cta);
        card.appendChild(text);
        card.appendChild(close);
        if (style == 'banner') top.appendChild(card);
        else stack.appendChild(card);
      }
      ack(id, 'shown');
    };

    window.lookout('_ui', safe(render));
  } catch (e) {}
})();
