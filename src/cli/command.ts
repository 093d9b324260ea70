/**
 * What a CLI command is: the words that name it, its usage, its options (node:util parseArgs), and what it runs.
 * The dispatcher (command-table.ts) is a table of these; each command's file exports its specs.
 */
import type { ParseArgsConfig } from 'node:util';
import type { GantryClient } from '../client/index.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

/** Where a command writes: stdout for its result, stderr for progress and messages. */
export interface CliOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** A parsed command line of a client command, with the client it talks through. */
export interface Invocation {
  values: OptionValues;
  positionals: string[];
  /** --json: machine-readable output on stdout. */
  json: boolean;
  stdout: CliOutput;
  stderr: CliOutput;
  /** The client for --url/GANTRY_URL and --key/GANTRY_KEY (made on first use). */
  client(): GantryClient;
}

interface CommandBase {
  /** The words after `gantry` that name the command: ['models', 'push']. */
  words: string[];
  /** One line for the command lists. */
  summary: string;
  /** The arguments after the words, as usage shows them: 'FILE [--name NAME] [--no-wait]'. */
  synopsis: string;
  /** Option and argument lines shown by --help (indented by the printer). */
  details?: string[];
}

/** A command that talks to a Gantry server over HTTP (through the client). */
export interface ClientCommand extends CommandBase {
  kind: 'client';
  options?: OptionSpecs;
  /** How many positional arguments it takes. */
  positionals: { min: number; max: number };
  run(invocation: Invocation): Promise<number>;
}

/** A command that runs Gantry itself (start, api, worker, …): it parses its own arguments. */
export interface ServerCommand extends CommandBase {
  kind: 'server';
  run(argumentsAfterCommand: string[]): Promise<number | undefined>;
}

export type CommandSpec = ClientCommand | ServerCommand;

/** The option's string value, or undefined. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** Every value of a repeatable string option. */
export function stringOptions(values: OptionValues, name: string): string[] {
  const value = values[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((item): item is string => typeof item === 'string');
}

export function booleanOption(values: OptionValues, name: string): boolean {
  return values[name] === true;
}
