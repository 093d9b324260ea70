/**
 * Model names. They go into queue names and Redis keys (redis-keys.ts) inside hash-tag braces, so they are
 * limited to letters, digits, '_', '.' and '-' and cannot break out of them.
 */
export const modelNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function isValidModelName(name: string): boolean {
  return modelNamePattern.test(name);
}
