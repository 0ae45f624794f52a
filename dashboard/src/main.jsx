import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { lazy } from './lib/lazy.js';
import './styles.css';
import { route, navigate } from './lib/router.js';
import { me, bootError, boot, sites, currentSite, currentSiteId, ensureLive, rememberSite, lastSite, loadSites } from './lib/session.js';
import { Shell } from './components/Shell.jsx';
import { Spinner, ErrorNote, Empty } from './components/ui.jsx';
import { Auth } from './views/Auth.jsx';
import { NewSite } from './views/NewSite.jsx';
import { Setup } from './views/Setup.jsx';
import { Live } from './views/Live.jsx';
import { Send } from './views/Send.jsx';
import { History } from './views/History.jsx';
import { Messages } from './views/Messages.jsx';
import { Settings } from './views/Settings.jsx';
import { Journey } from './views/Journey.jsx';

// The chart library is only needed on the Stats screen: load it on demand.
const Stats = lazy(() => import('./views/Stats.jsx').then((m) => m.Stats));
// Targeting pages are for admins setting up rules, not for the live view: also on demand.
const Segments = lazy(() => import('./views/Segments.jsx').then((m) => m.Segments));
const Campaigns = lazy(() => import('./views/Campaigns.jsx').then((m) => m.Campaigns));

const VIEWS = {
  live: Live,
  send: Send,
  segments: Segments,
  campaigns: Campaigns,
  history: History,
  stats: Stats,
  messages: Messages,
  settings: Settings,
  setup: Setup,
};

function Redirect({ to }) {
  useEffect(() => navigate(to, undefined, { replace: true }), [to]);
  return null;
}

function Home() {
  const list = sites.value || [];
  useEffect(() => {
    if (!list.length) {
      navigate('/sites/new', undefined, { replace: true });
      return;
    }
    const last = lastSite();
    const s = list.find((x) => String(x.id) === last) || list[0];
    navigate(`/sites/${s.id}/live`, undefined, { replace: true });
  }, [list]);
  return <Spinner />;
}

function SiteScreen() {
  const r = route.value;
  const id = currentSiteId.value;
  const site = currentSite.value;
  const view = r.parts[2] || 'live';
  useEffect(() => {
    if (site) {
      rememberSite(site.id);
      ensureLive(site.id);
    }
  }, [site && site.id]);
  useEffect(() => {
    document.title = site ? `${site.name} · ${view[0].toUpperCase() + view.slice(1)} · Lookout` : 'Lookout';
  }, [site && site.name, view]);
  const [reloaded, setReloaded] = useState(false);
  useEffect(() => {
    // A site shared with us after sign-in is not in the list yet: look once more.
    if (!site && id && !reloaded) loadSites().finally(() => setReloaded(true));
  }, [id, !!site]);
  if (!site) {
    if (!reloaded) return <Spinner />;
    return (
      <Empty title="Site not found" icon="?">
        There is no site <code>{id}</code> among yours. <a href="#/">Go to your sites</a>
      </Empty>
    );
  }
  const View = VIEWS[view];
  if (!View) return <Empty title="Page not found">There is no page here. <a href={`#/sites/${id}/live`}>Go to Live</a></Empty>;
  return (
    <>
      <View site={site} key={site.id} />
      {r.query.visitor ? <Journey site={site} visitorId={r.query.visitor} key={site.id + r.query.visitor} /> : null}
    </>
  );
}

function App() {
  const r = route.value;
  const account = me.value;
  useEffect(() => {
    boot();
  }, []);
  if (bootError.value) {
    return (
      <div class="center-screen">
        <ErrorNote error={bootError.value} onRetry={boot} />
      </div>
    );
  }
  if (account === undefined) return <div class="center-screen"><Spinner /></div>;
  if (account === null) return <Auth mode={r.parts[0] === 'signup' ? 'signup' : 'login'} />;
  if (r.parts[0] === 'login' || r.parts[0] === 'signup') return <Redirect to={r.query.next || '/'} />;
  let body;
  if (r.path === '/') body = <Home />;
  else if (r.path === '/sites/new') body = <NewSite />;
  else if (r.parts[0] === 'sites' && r.parts[1]) body = <SiteScreen />;
  else body = <Empty title="Page not found"><a href="#/">Go to your sites</a></Empty>;
  return <Shell>{body}</Shell>;
}

render(<App />, document.getElementById('app'));
