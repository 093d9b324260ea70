// Small pieces every page uses: an error box, a state badge, a loading line.
import { html } from 'htm/preact';
import type { ApiError } from '../api';

/** The API's message; a 403 also says that the key lacks a scope, which is not a fault of the console. */
export function ErrorBox(props: { error: ApiError | Error | undefined; what?: string }) {
  if (props.error === undefined) return null;
  const status = 'status' in props.error ? props.error.status : 0;
  const hint = status === 403 ? ` This key may not ${props.what ?? 'do that'}; use a key with the scope it names.` : '';
  return html`<p class="error" role="alert" data-testid="error">${props.error.message}${hint}</p>`;
}

export function StateBadge(props: { state: string; testId?: string }) {
  return html`<span class=${`badge state-${props.state.toLowerCase()}`} data-testid=${props.testId}>${props.state}</span>`;
}

export function Loading(props: { loading: boolean }) {
  return props.loading ? html`<p class="muted">Loading…</p>` : null;
}
