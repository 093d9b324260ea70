/**
 * The dispatcher: finds the command a command line names in the table (command-table.ts), parses its options with
 * node:util parseArgs, runs it and turns what went wrong into a message and an exit code (exit-codes.ts).
 * `gantry` alone prints the usage and exits 2: it never starts a server by default.
 */
import { parseArgs } from 'node:util';
// The HTTP client's own modules, not the package index: the CLI does not load the gRPC client it never uses.
import { GantryClient } from '../client/gantry-client.js';
import { GantryError } from '../client/gantry-error.js';
import { booleanOption, stringOption, type ClientCommand, type CliOutput, type CommandSpec, type OptionSpecs } from './command.js';
import { commandTable, groupOf, type CommandGroup } from './command-table.js';
import { ExitCode, exitCodeForStatus } from './exit-codes.js';
import { InputFileError } from './input-file-error.js';
import { UsageError } from './usage-error.js';
import { commandHelp, groupUsage, topUsage } from './usage-text.js';
import { packageVersion } from './version.js';

export interface CliEnvironment {
  stdout: CliOutput;
  stderr: CliOutput;
  env: Record<string, string | undefined>;
}

/** The options every client command takes. */
const globalOptions: OptionSpecs = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const defaultUrl = 'http://127.0.0.1:8080';

/** The command whose words start `words` (the longest match), and how many words it took. */
function findCommand(words: string[]): CommandSpec | undefined {
  let found: CommandSpec | undefined;
  for (const command of commandTable) {
    const matches = command.words.every((word, index) => words[index] === word);
    if (matches && (found === undefined || command.words.length > found.words.length)) found = command;
  }
  return found;
}

function isHelp(word: string | undefined): boolean {
  return word === '--help' || word === '-h';
}

/** Runs a command line (argv without node and the script). Resolves with the exit code, or undefined for a server role that keeps running. */
export async function runCli(argv: string[], environment: CliEnvironment): Promise<number | undefined> {
  const { stdout, stderr } = environment;
  const [first] = argv;
  if (first === undefined) {
    stderr.write(topUsage());
    return ExitCode.Usage;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    stdout.write(`gantry ${packageVersion()}\n`);
    return ExitCode.Ok;
  }
  if (isHelp(first) || first === 'help') {
    const rest = argv.slice(1).filter((word) => !isHelp(word));
    if (rest.length === 0) {
      stdout.write(topUsage());
      return ExitCode.Ok;
    }
    const command = findCommand(rest);
    const group = groupOf(rest[0]!);
    if (command !== undefined && (group === undefined || command.words.length > 1 || rest.length === 1)) stdout.write(commandHelp(command));
    else if (group !== undefined) stdout.write(groupUsage(group));
    else return unknownCommand(rest[0]!, stderr);
    return ExitCode.Ok;
  }

  const command = findCommand(argv);
  const group = groupOf(first);
  if (command === undefined || (group !== undefined && command.words.length === 1 && group.commands.length > 1)) {
    if (group !== undefined) return groupMisuse(group, argv[1], stdout, stderr);
    return unknownCommand(first, stderr);
  }
  const rest = argv.slice(command.words.length);
  if (command.kind === 'server') {
    if (rest.some(isHelp)) {
      stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    return command.run(rest);
  }
  return runClientCommand(command, rest, environment);
}

function unknownCommand(word: string, stderr: CliOutput): number {
  stderr.write(`Unknown command '${word.slice(0, 60)}'.\n\n${topUsage()}`);
  return ExitCode.Usage;
}

/** `gantry models` alone, `gantry models --help`, `gantry models frobnicate`. */
function groupMisuse(group: CommandGroup, word: string | undefined, stdout: CliOutput, stderr: CliOutput): number {
  if (isHelp(word)) {
    stdout.write(groupUsage(group));
    return ExitCode.Ok;
  }
  const what = word === undefined ? `'gantry ${group.name}' needs a command.` : `Unknown command 'gantry ${group.name} ${word.slice(0, 60)}'.`;
  stderr.write(`${what}\n\n${groupUsage(group)}`);
  return ExitCode.Usage;
}

function parseCommandLine(command: ClientCommand, args: string[]) {
  try {
    return parseArgs({ args, options: { ...globalOptions, ...command.options }, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs' messages name the option and what it expected ("Unknown option '--nme'", "Option '--name <value>' argument missing").
    throw new UsageError((error as Error).message);
  }
}

function timeoutOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`--timeout takes milliseconds (a whole number, 0 for none), got '${text.slice(0, 40)}'.`);
  return value;
}

async function runClientCommand(command: ClientCommand, args: string[], environment: CliEnvironment): Promise<number> {
  const { stdout, stderr, env } = environment;
  const usageLine = `Usage: gantry ${command.words.join(' ')} ${command.synopsis}`.trimEnd();
  try {
    const parsed = parseCommandLine(command, args);
    const values = parsed.values as Record<string, string | boolean | undefined>;
    if (booleanOption(values, 'help')) {
      stdout.write(commandHelp(command));
      return ExitCode.Ok;
    }
    const { min, max } = command.positionals;
    if (parsed.positionals.length < min)
      throw new UsageError(`'gantry ${command.words.join(' ')}' needs ${min === max ? min : `at least ${min}`} argument${min === 1 ? '' : 's'}.`);
    if (parsed.positionals.length > max) {
      throw new UsageError(
        `'gantry ${command.words.join(' ')}' takes ${max === 0 ? 'no' : `at most ${max}`} argument${max === 1 ? '' : 's'}; unexpected '${parsed.positionals[max]!.slice(0, 60)}'.`,
      );
    }
    const url = stringOption(values, 'url') ?? env.GANTRY_URL ?? defaultUrl;
    const key = stringOption(values, 'key') ?? env.GANTRY_KEY;
    const timeoutMs = timeoutOf(stringOption(values, 'timeout'));
    let client: GantryClient | undefined;
    return await command.run({
      values: parsed.values,
      positionals: parsed.positionals,
      json: booleanOption(values, 'json'),
      stdout,
      stderr,
      client: () => {
        try {
          client ??= new GantryClient({ url, key, userAgent: `gantry-cli/${packageVersion()}`, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
        } catch (error) {
          if (error instanceof GantryError) throw new UsageError(`--url/GANTRY_URL: ${error.message}`);
          throw error;
        }
        return client;
      },
    });
  } catch (error) {
    return reportFailure(error, stderr, usageLine);
  }
}

/** The message and exit code for what stopped a client command. */
function reportFailure(error: unknown, stderr: CliOutput, usageLine: string): number {
  if (error instanceof UsageError) {
    stderr.write(`error: ${error.message}\n${usageLine}\n(see --help)\n`);
    return ExitCode.Usage;
  }
  if (error instanceof InputFileError) {
    stderr.write(`error: ${error.message}\n`);
    return ExitCode.Usage;
  }
  if (error instanceof GantryError) {
    const where = error.status === 0 ? error.code : `HTTP ${error.status} ${error.code}`;
    const request = error.requestId === undefined ? '' : `, requestId ${error.requestId}`;
    stderr.write(`error: ${error.message} (${where}${request})\n`);
    // Refused before anything was sent: the command line or its files were wrong.
    if (error.status === 0) return error.code === 'INVALID_ARGUMENT' ? ExitCode.Usage : ExitCode.Failure;
    return exitCodeForStatus(error.status);
  }
  stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return ExitCode.Failure;
}
