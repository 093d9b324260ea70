/** `gantry usage`: metered usage per tenant, key or model (GET /v1/usage), as a table, JSON or CSV. */
import type { UsageQuery } from '../../client/index.js';
import { booleanOption, stringOption, type ClientCommand } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatTable, printJson } from '../output.js';
import { formatBytes } from '../progress.js';
import { UsageError } from '../usage-error.js';

function oneOf(name: string, value: string | undefined, allowed: string[]): string | undefined {
  if (value !== undefined && !allowed.includes(value)) throw new UsageError(`--${name} is one of ${allowed.join(', ')}, got '${value.slice(0, 20)}'.`);
  return value;
}

export const usageCommand: ClientCommand = {
  kind: 'client',
  words: ['usage'],
  summary: 'metered usage (requests, rows, compute seconds, bytes) per tenant, key or model',
  synopsis: '[--from DATE] [--to DATE] [--group-by tenant|key|model] [--hourly] [--tenant T] [--csv]',
  details: [
    '--from DATE    ISO 8601 date-time (default: the start of today, UTC)',
    '--to DATE      ISO 8601 date-time (default: now)',
    '--group-by G   tenant (default), key or model',
    '--hourly       one row per group and UTC hour',
    "--tenant T     an admin's filter",
    "--csv          the server's CSV (for billing) on stdout",
  ],
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    'group-by': { type: 'string' },
    hourly: { type: 'boolean' },
    tenant: { type: 'string' },
    csv: { type: 'boolean' },
  },
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const { values } = invocation;
    const csv = booleanOption(values, 'csv');
    if (csv && invocation.json) throw new UsageError('--csv and --json are two formats: give one.');
    const from = stringOption(values, 'from');
    const to = stringOption(values, 'to');
    const groupBy = oneOf('group-by', stringOption(values, 'group-by'), ['tenant', 'key', 'model']) as UsageQuery['groupBy'];
    const tenant = stringOption(values, 'tenant');
    const query: UsageQuery = {
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(groupBy === undefined ? {} : { groupBy }),
      ...(booleanOption(values, 'hourly') ? { granularity: 'hour' as const } : {}),
      ...(tenant === undefined ? {} : { tenant }),
    };
    const client = invocation.client();
    if (csv) {
      invocation.stdout.write(await client.usage.csv(query));
      return ExitCode.Ok;
    }
    const report = await client.usage.report(query);
    if (invocation.json) {
      printJson(invocation.stdout, report);
      return ExitCode.Ok;
    }
    const group = report.groupBy;
    const hourly = report.granularity === 'hour';
    const headers = [...(hourly ? ['HOUR'] : []), 'TENANT', ...(group === 'tenant' ? [] : [group.toUpperCase()]), 'REQUESTS', 'ROWS', 'COMPUTE_S', 'IN', 'OUT'];
    const rows = report.usage.map((row) => [
      ...(hourly ? [row.hour] : []),
      row.tenant,
      ...(group === 'tenant' ? [] : [group === 'key' ? row.key : row.model]),
      row.requests,
      row.rows,
      row.computeSeconds.toFixed(3),
      formatBytes(row.bytesIn),
      formatBytes(row.bytesOut),
    ]);
    invocation.stdout.write(`Usage from ${report.from} to ${report.to}\n`);
    invocation.stdout.write(formatTable(headers, rows));
    const totals = report.totals;
    invocation.stdout.write(
      `total: ${totals.requests} requests, ${totals.rows} rows, ${totals.computeSeconds.toFixed(3)} compute s, ${formatBytes(totals.bytesIn)} in, ${formatBytes(totals.bytesOut)} out\n`,
    );
    return ExitCode.Ok;
  },
};
