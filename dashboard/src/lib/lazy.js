// A tiny lazy() for Preact core (no preact/compat): renders a spinner until the module loads.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Spinner, ErrorNote } from '../components/ui.jsx';

export function lazy(load) {
  let Comp = null;
  let promise = null;
  return function Lazy(props) {
    const [, set] = useState(0);
    const [err, setErr] = useState(null);
    useEffect(() => {
      if (Comp) return;
      promise ||= load();
      promise.then(
        (c) => {
          Comp = c;
          set(1);
        },
        (e) => {
          promise = null;
          setErr(e);
        },
      );
    }, []);
    if (err) return h(ErrorNote, { error: 'Could not load this page. Reload to try again.' });
    return Comp ? h(Comp, props) : h(Spinner, null);
  };
}
