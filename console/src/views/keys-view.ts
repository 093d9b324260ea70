// The API keys the key may list (scope keys:write: its tenant's; the admin's: every tenant's). Secrets are never shown.
import { html } from 'htm/preact';
import { formatDate } from '../format';
import { useRequest } from '../use-request';
import { ErrorBox, Loading } from './common';

interface KeyList {
  keys: Array<{ id: string; tenant: string; name: string; scopes: string[]; models?: string[]; createdAt: string; expiresAt?: string; status: string }>;
}

export function KeysView() {
  const keys = useRequest<KeyList>('/v1/keys');
  return html`<section data-testid="keys-view">
    <h2>API keys</h2>
    <${ErrorBox} error=${keys.error} />
    <${Loading} loading=${keys.loading} />
    ${
      keys.value === undefined
        ? null
        : html`<table>
            <thead>
              <tr>
                <th>Id</th>
                <th>Tenant</th>
                <th>Name</th>
                <th>Scopes</th>
                <th>Models</th>
                <th>Status</th>
                <th>Created</th>
                <th>Expires</th>
              </tr>
            </thead>
            <tbody>
              ${keys.value.keys.map(
                (key) =>
                  html`<tr>
                    <td><code>${key.id}</code></td>
                    <td>${key.tenant}</td>
                    <td>${key.name}</td>
                    <td>${key.scopes.join(', ')}</td>
                    <td>${key.models?.join(', ') ?? 'all'}</td>
                    <td>${key.status}</td>
                    <td>${formatDate(key.createdAt)}</td>
                    <td>${key.expiresAt === undefined ? '—' : formatDate(key.expiresAt)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}
