// The frame around every signed-in screen: sidebar (site picker, navigation, connection status,
// account menu) on wide screens, a top bar with a menu button on phones.
import { useEffect, useRef, useState } from 'preact/hooks';
import { route, link, navigate } from '../lib/router.js';
import { me, sites, currentSite, currentSiteId, canWrite, live, logout } from '../lib/session.js';
import { cx, useId } from './ui.jsx';
import { Icon } from './icons.jsx';
import { toasts, dismissToast } from '../lib/toast.js';

const NAV = [
  { view: 'live', label: 'Live', icon: 'live' },
  { view: 'send', label: 'Send', icon: 'send', write: true },
  { view: 'segments', label: 'Segments', icon: 'segments' },
  { view: 'campaigns', label: 'Campaigns', icon: 'campaigns' },
  { view: 'history', label: 'History', icon: 'history' },
  { view: 'stats', label: 'Stats', icon: 'stats' },
  { view: 'messages', label: 'Messages', icon: 'messages' },
  { view: 'settings', label: 'Settings', icon: 'settings' },
];

export function Logo() {
  return (
    <span class="logo">
      <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
        <circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2" />
        <circle cx="12" cy="12" r="4" fill="currentColor" />
      </svg>
      <span>Lookout</span>
    </span>
  );
}

function SitePicker() {
  const id = useId('site');
  const list = sites.value || [];
  const cur = currentSiteId.value;
  const view = route.value.parts[2] || 'live';
  return (
    <div class="site-picker">
      <label for={id} class="sidebar-label">
        Site
      </label>
      <select
        id={id}
        value={cur || (route.value.path === '/sites/new' ? '__new' : '')}
        onChange={(e) => {
          const v = e.currentTarget.value;
          if (v === '__new') navigate('/sites/new');
          else if (v) navigate(`/sites/${v}/${view === 'setup' ? 'live' : view}`);
        }}
      >
        {!cur && route.value.path !== '/sites/new' ? <option value="">Choose a site…</option> : null}
        {list.map((s) => (
          <option value={s.id} key={s.id}>
            {s.name}
            {s.role === 'viewer' ? ' (viewer)' : ''}
          </option>
        ))}
        <option value="__new">+ New site…</option>
      </select>
    </div>
  );
}

export function ConnectionStatus({ compact }) {
  const l = live.value;
  const [, force] = useState(0);
  const status = l ? l.status.value : 'closed';
  const retryAt = l ? l.retryAt.value : 0;
  useEffect(() => {
    if (status !== 'reconnecting') return;
    const t = setInterval(() => force((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [status]);
  if (!l) return null;
  const secs = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
  const text = {
    open: 'Live',
    connecting: 'Connecting…',
    reconnecting: secs > 0 ? `Reconnecting in ${secs}s` : 'Reconnecting…',
    forbidden: 'No access',
    closed: 'Offline',
  }[status];
  return (
    <div class={cx('conn', 'conn-' + status, compact && 'conn-compact')} role="status" aria-live="polite" data-status={status}>
      <span class="conn-dot" aria-hidden="true" />
      <span class="conn-text">{text}</span>
      {status === 'reconnecting' ? (
        <button type="button" class="link-btn" onClick={() => l.retryNow()}>
          Retry now
        </button>
      ) : null}
    </div>
  );
}

function AccountMenu() {
  const [open, setOpen] = useState(false);
  const ref = useRef(null);
  const menuId = useId('acct');
  useEffect(() => {
    if (!open) return;
    const onDoc = (e) => {
      if (ref.current && !ref.current.contains(e.target)) setOpen(false);
    };
    const onKey = (e) => e.key === 'Escape' && setOpen(false);
    const first = ref.current && ref.current.querySelector('[role="menuitem"]');
    if (first) first.focus();
    document.addEventListener('mousedown', onDoc);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDoc);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);
  const email = me.value ? me.value.email : '';
  return (
    <div class="account" ref={ref}>
      <button
        type="button"
        class="account-btn"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={menuId}
        onClick={() => setOpen(!open)}
      >
        <span class="avatar" aria-hidden="true">
          {(email[0] || '?').toUpperCase()}
        </span>
        <span class="account-email">{email}</span>
        <span aria-hidden="true" class="caret">
          ▾
        </span>
      </button>
      {open ? (
        <div class="menu" role="menu" id={menuId}>
          <div class="menu-info">
            Signed in as <strong>{email}</strong>
          </div>
          <button type="button" role="menuitem" class="menu-item" onClick={logout}>
            Log out
          </button>
        </div>
      ) : null}
    </div>
  );
}

function Nav({ onNavigate }) {
  const site = currentSiteId.value;
  const view = route.value.parts[2] || 'live';
  const l = live.value;
  const count = l ? (l.version.value, l.visitors.size) : 0;
  if (!site) return null;
  return (
    <nav class="nav" aria-label="Site">
      {NAV.filter((n) => !n.write || canWrite.value).map((n) => (
        <a
          key={n.view}
          href={link(`/sites/${site}/${n.view}`)}
          class={cx('nav-item', view === n.view && 'nav-on')}
          aria-current={view === n.view ? 'page' : undefined}
          onClick={onNavigate}
        >
          <span class="nav-icon">
            <Icon name={n.icon} />
          </span>
          <span>{n.label}</span>
          {n.view === 'live' && l && l.status.value === 'open' ? <span class="nav-count">{count}</span> : null}
        </a>
      ))}
      <a
        href={link(`/sites/${site}/setup`)}
        class={cx('nav-item nav-minor', view === 'setup' && 'nav-on')}
        aria-current={view === 'setup' ? 'page' : undefined}
        onClick={onNavigate}
      >
        <span class="nav-icon">
          <Icon name="code" />
        </span>
        <span>Install snippet</span>
      </a>
    </nav>
  );
}

function Toasts() {
  return (
    <div class="toasts" aria-live="polite" role="region" aria-label="Notifications">
      {toasts.value.map((t) => (
        <div key={t.id} class={cx('toast', 'toast-' + t.kind)} role={t.kind === 'error' ? 'alert' : 'status'}>
          <span>{t.text}</span>
          <button type="button" class="icon-btn" aria-label="Dismiss" onClick={() => dismissToast(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

export function Shell({ children }) {
  const [menu, setMenu] = useState(false);
  const site = currentSite.value;
  useEffect(() => setMenu(false), [route.value.path]);
  return (
    <div class={cx('shell', menu && 'shell-menu-open')}>
      <a href="#main" class="skip" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="topbar">
        <button
          type="button"
          class="icon-btn topbar-menu"
          aria-label={menu ? 'Close menu' : 'Open menu'}
          aria-expanded={menu}
          aria-controls="sidebar"
          onClick={() => setMenu(!menu)}
        >
          {menu ? '×' : '☰'}
        </button>
        <Logo />
        <span class="topbar-site">{site ? site.name : ''}</span>
        <ConnectionStatus compact />
      </header>
      <aside class="sidebar" id="sidebar">
        <div class="sidebar-top">
          <a href="#/" class="brand">
            <Logo />
          </a>
          <SitePicker />
          <Nav onNavigate={() => setMenu(false)} />
        </div>
        <div class="sidebar-bottom">
          <ConnectionStatus />
          <AccountMenu />
        </div>
      </aside>
      <div class="scrim" onClick={() => setMenu(false)} aria-hidden="true" />
      <main class="main" id="main" tabIndex={-1}>
        {children}
      </main>
      <Toasts />
    </div>
  );
}

export { Toasts };
