/** The usage texts: the whole CLI's, a group's, and one command's --help. */
import type { CommandSpec } from './command.js';
import { commandGroups, inferCommand, serverCommands, usageCommand, type CommandGroup } from './command-table.js';

const clientOptionsText = `Options of every command that talks to a server:
  --url URL      the API (default: $GANTRY_URL, else http://127.0.0.1:8080)
  --key KEY      an API key (default: $GANTRY_KEY)
  --json         machine-readable JSON on stdout
  --timeout MS   budget of each call in milliseconds (default 60000; 0: none)
  -h, --help     this command's usage`;

const exitCodesText = `Exit codes: 0 ok, 1 server or network failure, 2 usage error, 3 not found, 4 refused by the server
(400/409/413/429), 5 not allowed (401/403). See docs/cli.md.`;

function line(words: string, summary: string): string {
  return `  ${words.padEnd(22)} ${summary}`;
}

export function topUsage(): string {
  return [
    'Usage: gantry <command> [options]',
    '',
    'Run Gantry:',
    ...serverCommands.map((command) => line(command.words.join(' '), command.summary)),
    '',
    'Use a Gantry server:',
    ...commandGroups.map((group) => line(`${group.name} <command>`, group.summary)),
    line(inferCommand.words.join(' '), inferCommand.summary),
    line(usageCommand.words.join(' '), usageCommand.summary),
    '',
    '  --version              the version of this gantry',
    "  help <command>         a command's usage (or <command> --help)",
    '',
    clientOptionsText,
    '',
    'The server commands take their configuration from environment variables (README.md).',
    exitCodesText,
    '',
  ].join('\n');
}

export function groupUsage(group: CommandGroup): string {
  return [
    `Usage: gantry ${group.name} <command> [options]`,
    '',
    `${group.summary[0]!.toUpperCase()}${group.summary.slice(1)}.`,
    '',
    // Synopses are long: each command on its own line, its summary indented under it.
    ...group.commands.flatMap((command) => [`  ${`${command.words.slice(1).join(' ')} ${command.synopsis}`.trimEnd()}`, `      ${command.summary}`]),
    '',
    `gantry ${group.name} <command> --help shows one command's options.`,
    '',
  ].join('\n');
}

export function commandHelp(command: CommandSpec): string {
  const parts = [
    `Usage: gantry ${command.words.join(' ')} ${command.synopsis}`.trimEnd(),
    '',
    `${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`,
  ];
  if (command.details !== undefined && command.details.length > 0) parts.push('', ...command.details.map((detail) => `  ${detail}`));
  if (command.kind === 'client') parts.push('', clientOptionsText, '', exitCodesText);
  else parts.push('', 'Configuration comes from environment variables; see README.md.');
  return `${parts.join('\n')}\n`;
}
