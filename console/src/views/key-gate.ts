// Asks for an API key (unless the API needs none: GANTRY_AUTH=off) and checks it before the console opens.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { forgetKey, storedKey, storeKey, authorizationHeaders } from '../session-key';

/** What a key may see beyond the models: the Keys and Usage pages are shown only when it may read them. */
export interface Session {
  /** False when the API asks for no key at all. */
  keyed: boolean;
  canListKeys: boolean;
  canReadUsage: boolean;
}

async function statusOf(path: string): Promise<number> {
  return (await fetch(path, { headers: authorizationHeaders() })).status;
}

/** Resolves the session for the stored key (none stored: tries without one), or undefined when it is refused. */
async function openSession(): Promise<Session | undefined> {
  const serverStatus = await statusOf('/v2');
  if (serverStatus === 401) return undefined;
  if (serverStatus >= 400) throw new Error(`The API answered ${serverStatus} to GET /v2.`);
  const [keys, usage] = await Promise.all([statusOf('/v1/keys'), statusOf('/v1/usage')]);
  return { keyed: storedKey() !== undefined, canListKeys: keys < 400, canReadUsage: usage < 400 };
}

export function KeyGate(props: { onSession: (session: Session) => void }) {
  const [checking, setChecking] = useState(true);
  const [message, setMessage] = useState<string | undefined>();
  const [key, setKey] = useState('');

  const attempt = async () => {
    setChecking(true);
    try {
      const session = await openSession();
      if (session !== undefined) {
        props.onSession(session);
        return;
      }
      if (storedKey() !== undefined) setMessage('The API refused this key (unknown, revoked or expired).');
      forgetKey();
    } catch (error) {
      setMessage((error as Error).message);
    }
    setChecking(false);
  };

  useEffect(() => void attempt(), []);

  const submit = (event: Event) => {
    event.preventDefault();
    if (key.trim() === '') return;
    storeKey(key.trim());
    setKey('');
    void attempt();
  };

  if (checking) return html`<main class="gate"><p class="muted">Connecting…</p></main>`;
  return html`<main class="gate">
    <h1>Gantry console</h1>
    <form onSubmit=${submit} data-testid="key-form">
      <label for="api-key">API key</label>
      <input
        id="api-key"
        type="password"
        autocomplete="off"
        value=${key}
        onInput=${(event: Event) => setKey((event.target as HTMLInputElement).value)}
        placeholder="gk_…"
      />
      <button type="submit">Open the console</button>
    </form>
    ${message === undefined ? null : html`<p class="error" role="alert">${message}</p>`}
    <p class="muted">The key stays in this tab only (sessionStorage) and is sent as <code>Authorization: Bearer</code> to this API.</p>
  </main>`;
}
