/**
 * How commands print: aligned tables for people, JSON for scripts (--json). JSON output is one compact document (one
 * line, for jq and friends) on stdout,
 * bigints written as exact JSON numbers (an INT64 output stays exact).
 */
import type { CliOutput } from './command.js';

/** A table: a header row, then one row per item, columns padded to the widest cell; empty cells show '-'. */
export function formatTable(headers: string[], rows: Array<Array<string | number | undefined>>): string {
  const cells = rows.map((row) => headers.map((_, column) => (row[column] === undefined || row[column] === '' ? '-' : String(row[column]))));
  const widths = headers.map((header, column) => Math.max(header.length, ...cells.map((row) => row[column]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

/** JSON text with bigints as exact numbers (JSON.stringify alone throws on them). */
export function toJsonText(value: unknown): string {
  const marker = '\u0000bigint:';
  const text = JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${marker}${item.toString()}` : item));
  return text.replace(new RegExp(`"${marker}(-?\\d+)"`, 'g'), '$1');
}

export function printJson(output: CliOutput, value: unknown): void {
  output.write(`${toJsonText(value)}\n`);
}

/** `key: value` lines, aligned, for one record (fields left undefined are skipped). */
export function formatFields(fields: Array<[string, string | number | boolean | undefined]>): string {
  const shown = fields.filter(([, value]) => value !== undefined && value !== '');
  const width = Math.max(0, ...shown.map(([name]) => name.length));
  return shown.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${String(value)}`).join('\n') + '\n';
}
