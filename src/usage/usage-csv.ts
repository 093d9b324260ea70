import { formatComputeSeconds, type UsageGrouping } from './usage-report.js';
import { usageOutcomes } from './usage-record.js';

/** One report row as the route answers it (JSON), which the CSV writes column by column. */
export interface UsageReportRow {
  hour?: string;
  tenant: string;
  key?: string;
  model?: string;
  requests: number;
  rows: number;
  computeSeconds: number;
  /** The exact compute time; the CSV writes it as decimal seconds. */
  computeNanoseconds: number;
  bytesIn: number;
  bytesOut: number;
  outcomes: Record<(typeof usageOutcomes)[number], number>;
}

/** RFC 4180 quoting, for a value that could hold a comma, a quote or a line break. */
function field(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/**
 * The report as CSV, for billing: a header line, then one line per row, CRLF line ends (RFC 4180). The grouping
 * decides the leading columns (hour, tenant, key or model); then requests, each outcome's requests, rows,
 * compute_seconds (exact, 9 decimals), bytes_in, bytes_out.
 */
export function usageCsv(rows: readonly UsageReportRow[], groupBy: UsageGrouping, byHour: boolean): string {
  const leading = [...(byHour ? ['hour'] : []), 'tenant', ...(groupBy === 'key' ? ['key'] : groupBy === 'model' ? ['model'] : [])];
  const header = [...leading, 'requests', ...usageOutcomes, 'rows', 'compute_seconds', 'bytes_in', 'bytes_out'];
  const lines = [header.join(',')];
  for (const row of rows) {
    const values = [
      ...(byHour ? [row.hour ?? ''] : []),
      row.tenant,
      ...(groupBy === 'key' ? [row.key ?? ''] : groupBy === 'model' ? [row.model ?? ''] : []),
      String(row.requests),
      ...usageOutcomes.map((outcome) => String(row.outcomes[outcome])),
      String(row.rows),
      formatComputeSeconds(row.computeNanoseconds),
      String(row.bytesIn),
      String(row.bytesOut),
    ];
    lines.push(values.map(field).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
