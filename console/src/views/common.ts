// Small pieces every page uses: an error box, a state badge, a loading line.
import { html } from 'htm/preact';
import type { ApiError } from '../api';

/** The API's own message: a 403's already names the scope the key lacks and what to do about it. */
export function ErrorBox(props: { error: ApiError | Error | undefined }) {
  if (props.error === undefined) return null;
  return html`<p class="error" role="alert" data-testid="error">${props.error.message}</p>`;
}

export function StateBadge(props: { state: string; testId?: string }) {
  return html`<span class=${`badge state-${props.state.toLowerCase()}`} data-testid=${props.testId}>${props.state}</span>`;
}

export function Loading(props: { loading: boolean }) {
  return props.loading ? html`<p class="muted">Loading…</p>` : null;
}
