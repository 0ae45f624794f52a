import { live } from '../lib/session.js';
import { snippetTag } from '../lib/clipboard.js';
import { link } from '../lib/router.js';
import { visitorLabel } from '../lib/format.js';
import { PageHeader, CodeBlock, Card } from '../components/ui.jsx';

const API_EXAMPLE = `// Optional, anywhere on the page (works before the script has loaded):
window.lookout=window.lookout||function(){(lookout.q=lookout.q||[]).push(arguments)};
lookout('identify', 'user-42', { name: 'Ada', plan: 'pro' });
lookout('track', 'added_to_cart', { sku: 'A-113' });`;

export function Setup({ site }) {
  const l = live.value;
  if (l) l.version.value; // re-render on live changes
  const first = l && l.visitors.size ? l.visitors.values().next().value : null;
  const tag = snippetTag(site.key);
  return (
    <div class="page page-narrow">
      <PageHeader title="Install the snippet" sub={`Add this tag to every page of ${site.name}, just before </head>.`} />
      <Card title="1. Paste the tag" id="tag">
        <CodeBlock code={tag} label="Copy tag" />
        <p class="muted small">
          {site.domains && site.domains.length
            ? `Pages on ${site.domains.join(', ')} may connect.`
            : 'Any origin may connect; restrict it to your domains in Settings.'}
        </p>
      </Card>
      <Card title="2. Open your site" id="wait">
        {first ? (
          <div class="waiting waiting-done" role="status" data-state="arrived">
            <span class="waiting-icon" aria-hidden="true">
              ✓
            </span>
            <div>
              <strong>Your first visitor is here.</strong>
              <div class="muted">
                {visitorLabel(first)} on {first.title || first.path}
              </div>
            </div>
            <a class="btn btn-primary" href={link(`/sites/${site.id}/live`)}>
              Open live view
            </a>
          </div>
        ) : (
          <div class="waiting" role="status" data-state="waiting">
            <span class="pulse" aria-hidden="true" />
            <div>
              <strong>Waiting for the first visitor…</strong>
              <div class="muted">Open a page that carries the tag; it appears here the moment it loads.</div>
            </div>
          </div>
        )}
      </Card>
      <Card title="3. Identify users and track events (optional)" id="api">
        <pre class="code">
          <code>{API_EXAMPLE}</code>
        </pre>
      </Card>
    </div>
  );
}
