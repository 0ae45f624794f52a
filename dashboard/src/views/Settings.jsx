// Site settings: name and domains, the snippet tag, members and roles, API keys, deletion.
// Viewers see the same page read-only.
import { useEffect, useState } from 'preact/hooks';
import { api, sitePath } from '../lib/api.js';
import { me, canWrite, replaceSite, loadSites } from '../lib/session.js';
import { navigate } from '../lib/router.js';
import { snippetTag } from '../lib/clipboard.js';
import { when, fullDate } from '../lib/format.js';
import { toast } from '../lib/toast.js';
import { PageHeader, Card, Field, ErrorNote, Spinner, CodeBlock, Modal, CopyButton, Badge, useAsync, useId } from '../components/ui.jsx';
import { parseDomains } from './NewSite.jsx';

function General({ site, writable }) {
  const [name, setName] = useState(site.name);
  const [domains, setDomains] = useState((site.domains || []).join('\n'));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const nameId = useId('s-name');
  const domId = useId('s-dom');
  useEffect(() => {
    setName(site.name);
    setDomains((site.domains || []).join('\n'));
  }, [site.id]);
  const dirty = name.trim() !== site.name || parseDomains(domains).join(',') !== (site.domains || []).join(',');
  async function save(e) {
    e.preventDefault();
    setError(null);
    if (!name.trim()) {
      setError('The site needs a name.');
      return;
    }
    setBusy(true);
    try {
      const s = await api.patch(sitePath(site.id), { name: name.trim(), domains: parseDomains(domains) });
      replaceSite({ ...s, role: site.role });
      toast('Site saved.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Card title="General" id="general">
      <form class="form" onSubmit={save} noValidate>
        <Field label="Site name" id={nameId}>
          <input id={nameId} value={name} onInput={(e) => setName(e.currentTarget.value)} disabled={!writable} maxLength={200} />
        </Field>
        <Field label="Domains" id={domId} hint="One per line. example.com accepts that host; *.example.com its subdomains. Empty: any origin.">
          <textarea id={domId} rows={3} value={domains} onInput={(e) => setDomains(e.currentTarget.value)} disabled={!writable} spellcheck={false} />
        </Field>
        <Field label="Site id" id="site-id-ro">
          <input id="site-id-ro" value={site.id} readOnly class="mono" />
        </Field>
        <ErrorNote error={error} />
        {writable ? (
          <div class="form-actions">
            <button type="submit" class="btn btn-primary" disabled={busy || !dirty}>
              {busy ? 'Saving…' : 'Save changes'}
            </button>
          </div>
        ) : null}
      </form>
    </Card>
  );
}

function Members({ site, writable }) {
  const res = useAsync(() => api.get(sitePath(site.id, '/members')).then((r) => r.items || []), [site.id]);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('viewer');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [removing, setRemoving] = useState(null);
  const emailId = useId('m-email');
  const roleId = useId('m-role');
  const myId = me.value && me.value.id;

  async function add(e) {
    e.preventDefault();
    setError(null);
    if (!/^\S+@\S+\.\S+$/.test(email.trim())) {
      setError('Enter the email address of an existing Lookout account.');
      return;
    }
    setBusy(true);
    try {
      await api.post(sitePath(site.id, '/members'), { email: email.trim(), role });
      setEmail('');
      toast(`${email.trim()} was added as ${role}.`);
      res.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  async function changeRole(m, r) {
    try {
      await api.patch(sitePath(site.id, `/members/${encodeURIComponent(m.account)}`), { role: r });
      res.setData((list) => list.map((x) => (x.account === m.account ? { ...x, role: r } : x)));
      toast(`${m.email} is now ${r}.`);
      if (m.account === myId) loadSites();
    } catch (err) {
      toast(err.message, 'error');
      res.reload();
    }
  }
  async function remove(m) {
    try {
      await api.del(sitePath(site.id, `/members/${encodeURIComponent(m.account)}`));
      setRemoving(null);
      toast(`${m.email} was removed.`);
      if (m.account === myId) {
        await loadSites();
        navigate('/');
      } else res.reload();
    } catch (err) {
      setRemoving(null);
      toast(err.message, 'error');
    }
  }
  return (
    <Card title="Members" id="members">
      {res.error ? <ErrorNote error={res.error} onRetry={res.reload} /> : null}
      {res.data ? (
        <div class="table-scroll">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                {writable ? (
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {res.data.map((m) => (
                <tr key={m.account} data-email={m.email}>
                  <td>
                    {m.email}
                    {m.account === myId ? (
                      <>
                        {' '}
                        <Badge>you</Badge>
                      </>
                    ) : null}
                  </td>
                  <td>
                    {writable ? (
                      <select aria-label={`Role of ${m.email}`} value={m.role} onChange={(e) => changeRole(m, e.currentTarget.value)} class="input-sm">
                        <option value="admin">Admin</option>
                        <option value="viewer">Viewer</option>
                      </select>
                    ) : (
                      <Badge kind={m.role === 'admin' ? 'accent' : 'neutral'}>{m.role}</Badge>
                    )}
                  </td>
                  {writable ? (
                    <td class="c-actions">
                      <button type="button" class="btn btn-sm btn-ghost-danger" onClick={() => setRemoving(m)}>
                        Remove
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : res.loading ? (
        <Spinner inline />
      ) : null}
      {writable ? (
        <form class="inline-form" onSubmit={add} noValidate aria-label="Add a member">
          <Field label="Email" id={emailId}>
            <input id={emailId} type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} placeholder="colleague@example.com" />
          </Field>
          <Field label="Role" id={roleId}>
            <select id={roleId} value={role} onChange={(e) => setRole(e.currentTarget.value)}>
              <option value="viewer">Viewer — reads</option>
              <option value="admin">Admin — also sends and configures</option>
            </select>
          </Field>
          <button type="submit" class="btn" disabled={busy}>
            {busy ? 'Adding…' : 'Add member'}
          </button>
        </form>
      ) : (
        <p class="muted small">Only admins can change members.</p>
      )}
      <ErrorNote error={error} />
      {removing ? (
        <Modal
          title="Remove member?"
          onClose={() => setRemoving(null)}
          footer={
            <>
              <button type="button" class="btn" onClick={() => setRemoving(null)}>
                Cancel
              </button>
              <button type="button" class="btn btn-danger" onClick={() => remove(removing)}>
                Remove
              </button>
            </>
          }
        >
          <p>
            {removing.email} will lose access to {site.name}.
          </p>
        </Modal>
      ) : null}
    </Card>
  );
}

function ApiKeys({ site }) {
  const res = useAsync(() => api.get(sitePath(site.id, '/api-keys')).then((r) => r.items || []), [site.id]);
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const nameId = useId('k-name');
  async function create(e) {
    e.preventDefault();
    setError(null);
    if (!name.trim()) {
      setError('Name the key after what will use it.');
      return;
    }
    setBusy(true);
    try {
      const k = await api.post(sitePath(site.id, '/api-keys'), { name: name.trim() });
      setCreated(k);
      setName('');
      res.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  async function revoke(k) {
    try {
      await api.del(sitePath(site.id, `/api-keys/${encodeURIComponent(k.id)}`));
      setRevoking(null);
      toast(`Key “${k.name}” was revoked.`);
      res.reload();
    } catch (err) {
      setRevoking(null);
      toast(err.message, 'error');
    }
  }
  return (
    <Card title="API keys" id="keys">
      <p class="muted small">
        Keys let scripts use this site's REST API and admin socket, sent as <code>Authorization: Bearer KEY</code>.
      </p>
      {res.error ? <ErrorNote error={res.error} onRetry={res.reload} /> : null}
      {res.data ? (
        res.data.length ? (
          <div class="table-scroll">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {res.data.map((k) => (
                  <tr key={k.id}>
                    <td>{k.name}</td>
                    <td title={fullDate(k.created_at)}>{when(k.created_at)}</td>
                    <td class="c-actions">
                      <button type="button" class="btn btn-sm btn-ghost-danger" onClick={() => setRevoking(k)}>
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted small">No keys yet.</p>
        )
      ) : res.loading ? (
        <Spinner inline />
      ) : null}
      <form class="inline-form" onSubmit={create} noValidate aria-label="Create an API key">
        <Field label="Key name" id={nameId}>
          <input id={nameId} value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="CRM sync" maxLength={100} />
        </Field>
        <button type="submit" class="btn" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </form>
      <ErrorNote error={error} />
      {created ? (
        <Modal title="Your new API key" onClose={() => setCreated(null)} footer={<button type="button" class="btn btn-primary" onClick={() => setCreated(null)}>Done</button>}>
          <p>
            Copy <strong>{created.name}</strong> now: it is shown only this once.
          </p>
          <div class="secret">
            <code class="mono" data-testid="new-key">{created.key}</code>
            <CopyButton text={created.key} label="Copy key" />
          </div>
        </Modal>
      ) : null}
      {revoking ? (
        <Modal
          title="Revoke key?"
          onClose={() => setRevoking(null)}
          footer={
            <>
              <button type="button" class="btn" onClick={() => setRevoking(null)}>
                Cancel
              </button>
              <button type="button" class="btn btn-danger" onClick={() => revoke(revoking)}>
                Revoke
              </button>
            </>
          }
        >
          <p>Anything using “{revoking.name}” stops working at once.</p>
        </Modal>
      ) : null}
    </Card>
  );
}

function Danger({ site }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const id = useId('confirm');
  async function del() {
    setBusy(true);
    setError(null);
    try {
      await api.del(sitePath(site.id));
      setOpen(false);
      toast(`${site.name} was deleted.`);
      await loadSites();
      navigate('/');
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }
  return (
    <Card title="Danger zone" id="danger" class="card-danger">
      <div class="danger-row">
        <div>
          <strong>Delete this site</strong>
          <p class="muted small">Removes the site, its history, messages, members and keys. This cannot be undone.</p>
        </div>
        <button type="button" class="btn btn-danger" onClick={() => setOpen(true)}>
          Delete site…
        </button>
      </div>
      {open ? (
        <Modal
          title={`Delete ${site.name}?`}
          onClose={() => setOpen(false)}
          footer={
            <>
              <button type="button" class="btn" onClick={() => setOpen(false)}>
                Cancel
              </button>
              <button type="button" class="btn btn-danger" disabled={typed !== site.name || busy} onClick={del}>
                {busy ? 'Deleting…' : 'Delete site'}
              </button>
            </>
          }
        >
          <p>All of its data is erased. Type the site's name to confirm.</p>
          <Field label={`Type “${site.name}”`} id={id}>
            <input id={id} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autoComplete="off" spellcheck={false} />
          </Field>
          <ErrorNote error={error} />
        </Modal>
      ) : null}
    </Card>
  );
}

export function Settings({ site }) {
  const writable = canWrite.value;
  return (
    <div class="page">
      <PageHeader title="Settings" sub={writable ? `Configure ${site.name}.` : `${site.name} — you are a viewer: settings are read-only.`} />
      <General site={site} writable={writable} />
      <Card title="Snippet" id="snippet">
        <p class="muted small">Paste it into every page, just before &lt;/head&gt;.</p>
        <CodeBlock code={snippetTag(site.key)} label="Copy tag" />
      </Card>
      <Members site={site} writable={writable} />
      {writable ? <ApiKeys site={site} /> : null}
      {writable ? <Danger site={site} /> : null}
    </div>
  );
}
