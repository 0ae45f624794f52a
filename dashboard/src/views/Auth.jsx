import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { signedIn } from '../lib/session.js';
import { link, route } from '../lib/router.js';
import { Logo } from '../components/Shell.jsx';
import { Field, ErrorNote, useId } from '../components/ui.jsx';

export function Auth({ mode }) {
  const signup = mode === 'signup';
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const emailId = useId('email');
  const pwId = useId('pw');
  const next = route.value.query.next;

  async function submit(e) {
    e.preventDefault();
    setError(null);
    if (signup && password.length < 8) {
      setError('Use a password of at least 8 characters.');
      return;
    }
    setBusy(true);
    try {
      const r = await api.post(signup ? '/auth/signup' : '/auth/login', { email: email.trim(), password });
      await signedIn(r.account);
    } catch (err) {
      setError(err.status === 401 && !signup ? 'That email and password do not match an account.' : err);
      setBusy(false);
    }
  }

  return (
    <div class="auth">
      <div class="auth-brand">
        <Logo />
      </div>
      <form class="auth-card" onSubmit={submit} noValidate aria-labelledby="auth-title">
        <h1 id="auth-title">{signup ? 'Create your account' : 'Sign in to Lookout'}</h1>
        <p class="muted">{signup ? 'See who is on your site right now, and talk to them.' : 'Welcome back.'}</p>
        <Field label="Email" id={emailId}>
          <input
            id={emailId}
            name="email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
            autoFocus
          />
        </Field>
        <Field label="Password" id={pwId} hint={signup ? 'At least 8 characters.' : null}>
          <input
            id={pwId}
            name="password"
            type="password"
            autoComplete={signup ? 'new-password' : 'current-password'}
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <ErrorNote error={error} />
        <button type="submit" class="btn btn-primary btn-block" disabled={busy || !email || !password}>
          {busy ? 'Please wait…' : signup ? 'Create account' : 'Sign in'}
        </button>
        <p class="auth-switch">
          {signup ? 'Already have an account? ' : 'New to Lookout? '}
          <a href={link(signup ? '/login' : '/signup', next ? { next } : undefined)}>{signup ? 'Sign in' : 'Create an account'}</a>
        </p>
      </form>
    </div>
  );
}
