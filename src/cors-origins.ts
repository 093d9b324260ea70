/**
 * The origins a browser app may call the API from (GANTRY_CORS_ORIGINS): a comma-separated list of exact origins
 * (`scheme://host[:port]`, as a browser sends them in `Origin`), or `*` for any origin. Empty: CORS is off.
 *
 * Exact origins only, no patterns: a pattern such as `*.example.com` is how allow-lists end up admitting
 * `evil-example.com`. An entry a browser can never send (a path, a default port, a trailing slash) is refused with
 * what to write instead, because it would silently never match.
 */

/** `['*']` for any origin, `[]` for none (CORS off), else the origins, lower-cased. */
export type CorsOrigins = readonly string[];

const originPattern = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(\d{1,5}))?$/;

const defaultPorts: Readonly<Record<string, string>> = { http: '80', https: '443' };

/** Longest entry a message repeats. */
const maxQuotedCharacters = 100;

function quoted(entry: string): string {
  return entry.length > maxQuotedCharacters ? `'${entry.slice(0, maxQuotedCharacters)}…'` : `'${entry}'`;
}

/** Why one entry is not an origin a browser sends, or undefined when it is one. */
function entryProblem(entry: string): string | undefined {
  if (entry.includes('*')) return `${quoted(entry)} is a pattern: list exact origins (https://app.example.com), or '*' alone for any origin`;
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/]+\/.*$/.test(entry))
    return `${quoted(entry)} has a path: an origin is scheme://host[:port] only (${quoted(entry.replace(/^([^:]+:\/\/[^/]+)\/.*$/, '$1'))})`;
  const match = originPattern.exec(entry);
  if (match === null) return `${quoted(entry)} is not an origin: write scheme://host[:port], e.g. https://app.example.com or http://localhost:5173`;
  const [, scheme, host, port] = match;
  if (port !== undefined) {
    const number = Number(port);
    if (number < 1 || number > 65535) return `${quoted(entry)} has port ${port}, outside 1-65535`;
    if (defaultPorts[scheme!] === port) return `${quoted(entry)} names the default port: browsers send ${scheme}://${host} without it`;
  }
  return undefined;
}

/** Parses GANTRY_CORS_ORIGINS; a string is the problem with it (the message names what to write instead). */
export function parseCorsOrigins(text: string): CorsOrigins | string {
  const entries = text
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return [];
  if (entries.includes('*')) return entries.length === 1 ? ['*'] : "'*' allows every origin and must be the only entry";
  for (const entry of entries) {
    const problem = entryProblem(entry);
    if (problem !== undefined) return problem;
  }
  return [...new Set(entries)];
}
