import type { ExportOptions } from './export-command.js';

/** What `gantry export` and `gantry import` were given, or the message saying what is wrong (exit code 2). */
export type ParsedArguments<T> = { ok: true; value: T } | { ok: false; message: string };

const exportUsage = 'Usage: gantry export --out FILE [--references-only]';
const importUsage = 'Usage: gantry import FILE';

/** `--out FILE` (or `--out=FILE`), and `--references-only` when the target shares this model store. */
export function parseExportArguments(argv: readonly string[]): ParsedArguments<ExportOptions> {
  let out: string | undefined;
  let referencesOnly = false;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--references-only') referencesOnly = true;
    else if (argument === '--out') out = argv[++index];
    else if (argument.startsWith('--out=')) out = argument.slice('--out='.length);
    else return { ok: false, message: `Unknown argument '${argument}'.\n${exportUsage}` };
  }
  if (out === undefined || out === '') return { ok: false, message: `Say where to write the archive with --out FILE.\n${exportUsage}` };
  return { ok: true, value: { out, referencesOnly } };
}

/** One FILE, an archive `gantry export` wrote. */
export function parseImportArguments(argv: readonly string[]): ParsedArguments<string> {
  const unknown = argv.find((argument) => argument.startsWith('-'));
  if (unknown !== undefined) return { ok: false, message: `Unknown option '${unknown}'.\n${importUsage}` };
  if (argv.length !== 1) return { ok: false, message: `Give exactly one archive to import.\n${importUsage}` };
  return { ok: true, value: argv[0]! };
}
