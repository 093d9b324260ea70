/**
 * The dispatcher's table: every command the CLI knows, grouped as the usage shows them. A command is found by its
 * words (`models push`); a group word alone (`gantry models`) shows the group's usage.
 */
import type { CommandSpec } from './command.js';
import { batchCommands } from './commands/batch-commands.js';
import { inferCommand } from './commands/infer-command.js';
import { jobCommands } from './commands/job-commands.js';
import { keyCommands } from './commands/key-commands.js';
import { modelCommands } from './commands/model-commands.js';
import { serverCommands } from './commands/server-commands.js';
import { tenantCommands } from './commands/tenant-commands.js';
import { usageCommand } from './commands/usage-command.js';

export interface CommandGroup {
  name: string;
  summary: string;
  commands: CommandSpec[];
}

/** Groups of commands under one word (`gantry models …`). */
export const commandGroups: CommandGroup[] = [
  { name: 'models', summary: 'push, list, inspect and delete models', commands: modelCommands },
  { name: 'keys', summary: 'API keys: create, list, show, revoke', commands: keyCommands },
  { name: 'tenants', summary: 'tenants: create, list, show, disable, enable, delete (admin)', commands: tenantCommands },
  { name: 'jobs', summary: 'asynchronous inference jobs: create, list, show, result, cancel', commands: jobCommands },
  { name: 'batches', summary: 'batch files (JSONL): submit with progress, list, show, results, cancel', commands: batchCommands },
];

export const commandTable: CommandSpec[] = [...serverCommands, inferCommand, usageCommand, ...commandGroups.flatMap((group) => group.commands)];

export function groupOf(word: string): CommandGroup | undefined {
  return commandGroups.find((group) => group.name === word);
}

export { serverCommands, inferCommand, usageCommand };
