import { readFileSync } from 'node:fs';

/** The package's version, read from package.json beside the build (dist/src/cli/ → the repository root). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  const parsed = JSON.parse(text) as { version?: unknown };
  return typeof parsed.version === 'string' ? parsed.version : 'unknown';
}
