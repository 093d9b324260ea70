import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { displayModelName } from '../../auth/model-names.js';
import { isAdmin, tenantIdPattern } from '../../auth/principal.js';
import { errors } from '../../errors.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { usageCsv, type UsageReportRow } from '../../usage/usage-csv.js';
import { usageOutcomes } from '../../usage/usage-record.js';
import { readUsage, type UsageRow } from '../../usage/usage-report.js';
import type { ApiServices } from '../services.js';

const hourMs = 3600_000;

const querySchema = z.object({
  from: z.string().optional().describe('ISO 8601 date-time; usage from the start of its UTC hour. Default: the start of today (UTC).'),
  to: z.string().optional().describe('ISO 8601 date-time; usage up to the end of its UTC hour (exclusive when on the hour). Default: now.'),
  groupBy: z.enum(['tenant', 'key', 'model']).default('tenant'),
  granularity: z.enum(['total', 'hour']).default('total').describe('`hour`: one row per group and UTC hour.'),
  tenant: z.string().optional().describe("An admin's filter; a tenant's key always sees its own tenant only."),
  format: z.enum(['json', 'csv']).optional().describe('Default: json, or csv when the Accept header asks for text/csv.'),
});

const outcomesSchema = z.object(
  Object.fromEntries(usageOutcomes.map((outcome) => [outcome, z.number()])) as Record<(typeof usageOutcomes)[number], z.ZodNumber>,
);
const countsShape = {
  requests: z.number(),
  rows: z.number().describe('Rows (along the batch dimension) the requests ran.'),
  computeSeconds: z.number().describe("Model compute on the workers: each request's share of its execution."),
  computeNanoseconds: z.number().describe('computeSeconds exactly, in ns.'),
  bytesIn: z.number(),
  bytesOut: z.number(),
  outcomes: outcomesSchema.describe('Requests by outcome.'),
};
const rowSchema = z.object({
  hour: z.string().optional(),
  tenant: z.string(),
  key: z.string().optional().describe("The key's id (groupBy=key)."),
  model: z.string().optional().describe("The model as the caller names it (groupBy=model); '' for requests that never reached a model."),
  ...countsShape,
});
const reportSchema = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.enum(['tenant', 'key', 'model']),
  granularity: z.enum(['total', 'hour']),
  usage: z.array(rowSchema),
  totals: z.object(countsShape),
});

/** Parses an ISO date-time query value, or says which one was bad and how it should look. */
function parseTime(name: string, value: string): number {
  const time = Date.parse(value);
  if (!Number.isFinite(time))
    throw errors.invalidArgument(`'${name}' must be an ISO 8601 date-time such as 2025-01-31T00:00:00Z, got '${value.slice(0, 40)}'.`);
  return time;
}

/**
 * GET /v1/usage: metered inference usage per tenant, key or model, over whole UTC hours, as JSON or CSV (for
 * billing). A tenant's key (scope usage:read) sees its own tenant's usage; the admin every tenant's.
 */
export async function usageRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { redis, config } = services;
  const prefix = config.GANTRY_QUEUE_PREFIX;

  typed.get(
    '/v1/usage',
    {
      schema: {
        tags: ['usage'],
        summary: 'Metered usage (requests, rows, compute seconds, bytes) per tenant, key or model; JSON or CSV',
        querystring: querySchema,
        response: { 200: reportSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      const query = request.query;
      const now = Date.now();
      const fromMs = Math.floor(parseTime('from', query.from ?? new Date(now - (now % (24 * hourMs))).toISOString()) / hourMs) * hourMs;
      // By default up to the end of the current hour, so what was metered a moment ago is in.
      const toMs = Math.ceil((query.to === undefined ? now + 1 : parseTime('to', query.to)) / hourMs) * hourMs;
      if (toMs <= fromMs) throw errors.invalidArgument("'to' must come after 'from'.");
      const hours = (toMs - fromMs) / hourMs;
      if (hours > config.GANTRY_MAX_USAGE_QUERY_HOURS) {
        throw errors.invalidArgument(
          `The span covers ${hours} hours, more than GANTRY_MAX_USAGE_QUERY_HOURS (${config.GANTRY_MAX_USAGE_QUERY_HOURS}); ask for shorter spans one after another.`,
        );
      }
      let tenants: string[] | 'all';
      if (isAdmin(principal)) tenants = query.tenant === undefined ? 'all' : [query.tenant];
      else if (query.tenant === undefined || query.tenant === principal.tenant) tenants = [principal.tenant];
      // Another tenant does not exist for this caller: 404, as everywhere else.
      else throw errors.tenantNotFound(query.tenant);
      if (tenants !== 'all' && !tenantIdPattern.test(tenants[0]!)) throw errors.tenantNotFound(tenants[0]!);

      const found = await readUsage(redis, prefix, { fromMs, toMs, tenants, groupBy: query.groupBy, granularity: query.granularity });
      const rows = found.map((row) => toReportRow(row, (model) => (model === '' ? '' : displayModelName(principal, model))));
      rows.sort((a, b) => compare(a.hour, b.hour) || compare(a.tenant, b.tenant) || compare(a.key, b.key) || compare(a.model, b.model));

      const wantsCsv = query.format === 'csv' || (query.format === undefined && (request.headers.accept ?? '').includes('text/csv'));
      if (wantsCsv) {
        const name = `usage-${new Date(fromMs).toISOString().slice(0, 13)}-${new Date(toMs).toISOString().slice(0, 13)}.csv`;
        return (
          reply
            .type('text/csv; charset=utf-8')
            .header('content-disposition', `attachment; filename="${name}"`)
            // A string with a non-JSON type goes out as it is; the response schema describes the JSON answer.
            .send(usageCsv(rows, query.groupBy, query.granularity === 'hour') as never)
        );
      }
      return {
        from: new Date(fromMs).toISOString(),
        to: new Date(toMs).toISOString(),
        groupBy: query.groupBy,
        granularity: query.granularity,
        usage: rows,
        totals: totalsOf(rows),
      };
    },
  );
}

function compare(a: string | undefined, b: string | undefined): number {
  return (a ?? '').localeCompare(b ?? '');
}

function toReportRow(row: UsageRow, showModel: (qualified: string) => string): UsageReportRow {
  return {
    ...(row.hour === undefined ? {} : { hour: row.hour }),
    tenant: row.tenant,
    ...(row.keyId === undefined ? {} : { key: row.keyId }),
    ...(row.model === undefined ? {} : { model: showModel(row.model) }),
    requests: row.counts.requests,
    rows: row.counts.rows,
    computeSeconds: row.counts.compute_ns / 1e9,
    computeNanoseconds: row.counts.compute_ns,
    bytesIn: row.counts.bytes_in,
    bytesOut: row.counts.bytes_out,
    outcomes: row.outcomes,
  };
}

function totalsOf(rows: readonly UsageReportRow[]): Omit<UsageReportRow, 'tenant'> {
  const totals = {
    requests: 0,
    rows: 0,
    computeSeconds: 0,
    computeNanoseconds: 0,
    bytesIn: 0,
    bytesOut: 0,
    outcomes: Object.fromEntries(usageOutcomes.map((outcome) => [outcome, 0])) as UsageReportRow['outcomes'],
  };
  for (const row of rows) {
    totals.requests += row.requests;
    totals.rows += row.rows;
    totals.computeNanoseconds += row.computeNanoseconds;
    totals.bytesIn += row.bytesIn;
    totals.bytesOut += row.bytesOut;
    for (const outcome of usageOutcomes) totals.outcomes[outcome] += row.outcomes[outcome];
  }
  totals.computeSeconds = totals.computeNanoseconds / 1e9;
  return totals;
}
