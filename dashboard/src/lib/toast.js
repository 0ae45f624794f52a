import { signal } from '@preact/signals';

export const toasts = signal([]);
let seq = 0;

/** Shows a short notice; kind is 'ok' | 'error' | 'info'. */
export function toast(text, kind = 'ok', ttl = 4000) {
  const id = ++seq;
  toasts.value = toasts.value.concat([{ id, text, kind }]);
  setTimeout(() => dismissToast(id), kind === 'error' ? Math.max(ttl, 7000) : ttl);
}

export function dismissToast(id) {
  toasts.value = toasts.value.filter((t) => t.id !== id);
}
