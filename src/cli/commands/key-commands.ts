/** `gantry keys create|ls|show|revoke`: API keys. Only `create` ever prints a key (the server shows it that once). */
import type { ApiKey, CreatedKey, Scope } from '../../client/index.js';
import { stringOption, stringOptions, type ClientCommand } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatFields, formatTable, printJson } from '../output.js';
import { UsageError } from '../usage-error.js';

function keyFields(key: ApiKey): string {
  return formatFields([
    ['id', key.id],
    ['name', key.name],
    ['tenant', key.tenant],
    ['status', key.status],
    ['scopes', key.scopes.join(', ')],
    ['models', key.models?.join(', ')],
    ['created', key.createdAt],
    ['expires', key.expiresAt],
    ['revoked', key.revokedAt],
  ]);
}

const create: ClientCommand = {
  kind: 'client',
  words: ['keys', 'create'],
  summary: 'creates an API key and prints it (shown this once: Gantry keeps only its hash)',
  synopsis: '--name NAME --scope SCOPE [--scope …] [--tenant T] [--model M …] [--expires DATE]',
  details: [
    '--name NAME       what the key is for',
    '--scope SCOPE     infer, models:read, models:write, keys:write, usage:read, metrics:read, admin; repeatable',
    "--tenant T        the key's tenant (an admin's choice; default: the caller's own)",
    "--model M         a model the key may use (default: all of the tenant's); repeatable",
    '--expires DATE    an ISO 8601 date-time after which the key is refused',
  ],
  options: {
    name: { type: 'string' },
    scope: { type: 'string', multiple: true },
    tenant: { type: 'string' },
    model: { type: 'string', multiple: true },
    expires: { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const { values } = invocation;
    const name = stringOption(values, 'name');
    const scopes = stringOptions(values, 'scope').flatMap((scope) => scope.split(','));
    if (name === undefined) throw new UsageError('--name is required: what the key is for.');
    if (scopes.length === 0) throw new UsageError('--scope is required (infer, models:read, models:write, keys:write, usage:read, metrics:read, admin).');
    const models = stringOptions(values, 'model');
    const tenant = stringOption(values, 'tenant');
    const expiresAt = stringOption(values, 'expires');
    // The server checks the scope names (a 400 lists the valid ones).
    const created: CreatedKey = await invocation.client().keys.create({
      name,
      scopes: scopes as Scope[],
      ...(tenant === undefined ? {} : { tenant }),
      ...(models.length === 0 ? {} : { models }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    });
    if (invocation.json) printJson(invocation.stdout, created);
    else {
      invocation.stdout.write(keyFields(created));
      invocation.stdout.write(`key:     ${created.key}\n`);
      invocation.stderr.write('Keep the key now: it is not shown again.\n');
    }
    return ExitCode.Ok;
  },
};

const list: ClientCommand = {
  kind: 'client',
  words: ['keys', 'ls'],
  summary: 'lists keys (never their secrets)',
  synopsis: '[--tenant T]',
  details: ["--tenant T   an admin's filter; a tenant's key lists its own tenant's keys"],
  options: { tenant: { type: 'string' } },
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const tenant = stringOption(invocation.values, 'tenant');
    const keys = await invocation.client().keys.list(tenant === undefined ? {} : { tenant });
    if (invocation.json) printJson(invocation.stdout, { keys });
    else
      invocation.stdout.write(
        formatTable(
          ['ID', 'NAME', 'TENANT', 'STATUS', 'SCOPES', 'EXPIRES'],
          keys.map((key) => [key.id, key.name, key.tenant, key.status, key.scopes.join(','), key.expiresAt]),
        ),
      );
    return ExitCode.Ok;
  },
};

function oneKey(words: string[], summary: string, action: 'get' | 'revoke'): ClientCommand {
  return {
    kind: 'client',
    words,
    summary,
    synopsis: 'KEY_ID',
    positionals: { min: 1, max: 1 },
    async run(invocation) {
      const id = invocation.positionals[0]!;
      const key = await invocation.client().keys[action](id);
      if (invocation.json) printJson(invocation.stdout, key);
      else invocation.stdout.write(keyFields(key));
      return ExitCode.Ok;
    },
  };
}

export const keyCommands: ClientCommand[] = [
  create,
  list,
  oneKey(['keys', 'show'], 'one key (never its secret)', 'get'),
  oneKey(['keys', 'revoke'], 'revokes a key: refused at once by every API process', 'revoke'),
];
