/**
 * The model patterns of GANTRY_WORKER_MODELS: which models a worker serves (worker pools). A pattern is a qualified
 * model name (another tenant's model is `<tenant>~<name>`, auth/model-names.ts) in which `*` stands for any run of
 * characters, `~` included, and `?` for one character. So `mlp*` is every default-tenant model whose name starts with
 * `mlp`, `acme~*` every model of tenant acme, and `*` every model. Names hold only letters, digits and `_.-~`, so no
 * other character needs a meaning; a tiny matcher does (no glob library is a dependency, and none is needed).
 */

/** Every model: the default, and what a worker without GANTRY_WORKER_MODELS serves. */
export const allModels = '*';

/** What a pattern may hold: the characters of a qualified model name, plus the two wildcards. */
const patternCharacters = /^[A-Za-z0-9_.~*?-]{1,200}$/;
/** Most patterns one worker may list (the list travels in every heartbeat). */
const maxPatterns = 100;

/**
 * Reads a comma-separated list of patterns (spaces around them ignored, duplicates dropped, `*` alone when any
 * pattern is `*`), or returns what is wrong with it.
 */
export function parseModelPatterns(text: string): string[] | string {
  const patterns = [
    ...new Set(
      text
        .split(',')
        .map((pattern) => pattern.trim())
        .filter((pattern) => pattern !== ''),
    ),
  ];
  if (patterns.length === 0) return `GANTRY_WORKER_MODELS lists no pattern; leave it unset (or '${allModels}') for every model`;
  if (patterns.length > maxPatterns)
    return `GANTRY_WORKER_MODELS lists ${patterns.length} patterns; at most ${maxPatterns} are allowed (use globs such as 'mlp*')`;
  const bad = patterns.find((pattern) => !patternCharacters.test(pattern));
  if (bad !== undefined) {
    return `GANTRY_WORKER_MODELS pattern '${bad.slice(0, 50)}' may only hold letters, digits, '_', '.', '-', '~' (tenant~model) and the wildcards '*' and '?'`;
  }
  return patterns.includes(allModels) ? [allModels] : patterns;
}

/** True when the patterns cover every model. */
export function servesAllModels(patterns: readonly string[]): boolean {
  return patterns.includes(allModels);
}

const compiled = new Map<string, RegExp>();
/** Compiled patterns kept (heartbeats of every worker bring theirs; far fewer differ in practice). */
const maxCompiled = 1000;

function compile(pattern: string): RegExp {
  let expression = compiled.get(pattern);
  if (expression === undefined) {
    const body = pattern.replace(/[.*?-]/g, (character) => (character === '*' ? '.*' : character === '?' ? '.' : `\\${character}`));
    expression = new RegExp(`^${body}$`);
    if (compiled.size >= maxCompiled) compiled.clear();
    compiled.set(pattern, expression);
  }
  return expression;
}

/** True when `model` (a qualified name) matches one of the patterns. */
export function patternsMatch(patterns: readonly string[], model: string): boolean {
  for (const pattern of patterns) if (pattern === allModels || pattern === model || compile(pattern).test(model)) return true;
  return false;
}
