/** `gantry tenants create|ls|show|disable|enable|rm`: tenants (admin key only). */
import type { Tenant } from '../../client/index.js';
import { stringOption, type ClientCommand, type Invocation } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatFields, formatTable, printJson } from '../output.js';

function tenantFields(tenant: Tenant): string {
  const limits = Object.entries(tenant.limits ?? {});
  return formatFields([
    ['id', tenant.id],
    ['name', tenant.name],
    ['created', tenant.createdAt],
    ['disabled', tenant.disabled],
    ['limits', limits.length === 0 ? 'none' : limits.map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(', ')],
  ]);
}

function present(invocation: Invocation, tenant: Tenant): number {
  if (invocation.json) printJson(invocation.stdout, tenant);
  else invocation.stdout.write(tenantFields(tenant));
  return ExitCode.Ok;
}

const create: ClientCommand = {
  kind: 'client',
  words: ['tenants', 'create'],
  summary: 'creates a tenant',
  synopsis: 'ID [--name NAME]',
  details: ['ID           lower-case letters, digits and -, at most 32 characters', '--name NAME  a display name (default: the id)'],
  options: { name: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const name = stringOption(invocation.values, 'name');
    const tenant = await invocation.client().tenants.create({ id: invocation.positionals[0]!, ...(name === undefined ? {} : { name }) });
    return present(invocation, tenant);
  },
};

const list: ClientCommand = {
  kind: 'client',
  words: ['tenants', 'ls'],
  summary: 'lists tenants',
  synopsis: '',
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const tenants = await invocation.client().tenants.list();
    if (invocation.json) printJson(invocation.stdout, { tenants });
    else
      invocation.stdout.write(
        formatTable(
          ['ID', 'NAME', 'DISABLED', 'CREATED'],
          tenants.map((tenant) => [tenant.id, tenant.name, String(tenant.disabled), tenant.createdAt]),
        ),
      );
    return ExitCode.Ok;
  },
};

const show: ClientCommand = {
  kind: 'client',
  words: ['tenants', 'show'],
  summary: 'one tenant with its limits',
  synopsis: 'ID',
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    return present(invocation, await invocation.client().tenants.get(invocation.positionals[0]!));
  },
};

function switchTenant(word: 'disable' | 'enable', summary: string): ClientCommand {
  return {
    kind: 'client',
    words: ['tenants', word],
    summary,
    synopsis: 'ID',
    positionals: { min: 1, max: 1 },
    async run(invocation) {
      const tenant = await invocation.client().tenants.update(invocation.positionals[0]!, { disabled: word === 'disable' });
      return present(invocation, tenant);
    },
  };
}

const remove: ClientCommand = {
  kind: 'client',
  words: ['tenants', 'rm'],
  summary: 'deletes a tenant that owns no models (its keys stop working at once)',
  synopsis: 'ID',
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const id = invocation.positionals[0]!;
    await invocation.client().tenants.remove(id);
    if (invocation.json) printJson(invocation.stdout, { deleted: { id } });
    else invocation.stdout.write(`Deleted tenant ${id}.\n`);
    return ExitCode.Ok;
  },
};

export const tenantCommands: ClientCommand[] = [
  create,
  list,
  show,
  switchTenant('disable', 'disables a tenant: its keys are refused (403) until it is enabled'),
  switchTenant('enable', 'enables a disabled tenant'),
  remove,
];
