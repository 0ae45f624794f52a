import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { loadSites, sites } from '../lib/session.js';
import { navigate } from '../lib/router.js';
import { Field, ErrorNote, PageHeader, useId } from '../components/ui.jsx';

export function parseDomains(text) {
  return text
    .split(/[\s,]+/)
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean);
}

export function NewSite() {
  const [name, setName] = useState('');
  const [domains, setDomains] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const nameId = useId('name');
  const domId = useId('domains');
  const first = !(sites.value || []).length;

  async function submit(e) {
    e.preventDefault();
    setError(null);
    if (!name.trim()) {
      setError('Give the site a name.');
      return;
    }
    setBusy(true);
    try {
      const site = await api.post('/sites', { name: name.trim(), domains: parseDomains(domains) });
      await loadSites();
      navigate(`/sites/${site.id}/setup`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <div class="page page-narrow">
      <PageHeader
        title={first ? 'Add your first site' : 'Add a site'}
        sub="Lookout shows who is on it right now, where they go, and lets you talk to them."
      />
      <form class="card form" onSubmit={submit} noValidate>
        <Field label="Site name" id={nameId} hint="What you call it, e.g. “Acme shop”.">
          <input id={nameId} name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus required maxLength={200} />
        </Field>
        <Field
          label="Domains"
          id={domId}
          hint="One per line. example.com accepts that host; *.example.com its subdomains. Leave empty to accept any origin."
        >
          <textarea
            id={domId}
            name="domains"
            rows={3}
            placeholder={'example.com\n*.example.com'}
            value={domains}
            onInput={(e) => setDomains(e.currentTarget.value)}
            spellcheck={false}
          />
        </Field>
        <ErrorNote error={error} />
        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create site'}
          </button>
        </div>
      </form>
    </div>
  );
}
