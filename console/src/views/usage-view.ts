// Metered usage per model today (GET /v1/usage?groupBy=model; scope usage:read: the key's tenant, the admin's: all).
import { html } from 'htm/preact';
import { formatBytes, formatSeconds } from '../format';
import { useRequest } from '../use-request';
import { ErrorBox, Loading } from './common';

interface Counts {
  requests: number;
  rows: number;
  computeSeconds: number;
  bytesIn: number;
  bytesOut: number;
}

interface UsageReport {
  from: string;
  to: string;
  usage: Array<Counts & { tenant: string; model?: string }>;
  totals: Counts;
}

function CountCells(props: { counts: Counts }) {
  const { counts } = props;
  return html`<td>${counts.requests}</td>
    <td>${counts.rows}</td>
    <td>${formatSeconds(counts.computeSeconds)}</td>
    <td>${formatBytes(counts.bytesIn)}</td>
    <td>${formatBytes(counts.bytesOut)}</td>`;
}

export function UsageView() {
  const report = useRequest<UsageReport>('/v1/usage?groupBy=model', 10_000);
  return html`<section data-testid="usage-view">
    <h2>Usage</h2>
    <${ErrorBox} error=${report.error} />
    <${Loading} loading=${report.loading && report.value === undefined} />
    ${
      report.value === undefined
        ? null
        : html`<p class="muted">From ${new Date(report.value.from).toLocaleString()} to ${new Date(report.value.to).toLocaleString()} (whole UTC hours).</p>
            <table>
              <thead>
                <tr>
                  <th>Tenant</th>
                  <th>Model</th>
                  <th>Requests</th>
                  <th>Rows</th>
                  <th>Compute</th>
                  <th>In</th>
                  <th>Out</th>
                </tr>
              </thead>
              <tbody>
                ${report.value.usage.map(
                  (row) =>
                    html`<tr>
                      <td>${row.tenant}</td>
                      <td>${row.model === '' ? '(no model)' : row.model}</td>
                      <${CountCells} counts=${row} />
                    </tr>`,
                )}
                <tr class="totals">
                  <td colspan="2">Total</td>
                  <${CountCells} counts=${report.value.totals} />
                </tr>
              </tbody>
            </table>`
    }
  </section>`;
}
