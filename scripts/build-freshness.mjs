// Whether the build in dist/ is older than the sources it is built from, for `npm start` (scripts/start.mjs).
// No devDependency and no compiler: a walk over file times, a few milliseconds for the whole tree.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * What `npm run build` makes, each with the sources it is made from. Each output is written whole by every build
 * (tsc rewrites every file; build-console.mjs writes index.html last), so its modification time is the time of the
 * last build of that part. Folders count as sources too: deleting or renaming a file changes its folder's time.
 */
export const buildParts = [
  { output: 'dist/src/cli.js', sources: ['src', 'tsconfig.json'] },
  { output: 'dist/console/index.html', sources: ['console', 'scripts/build-console.mjs'], optional: true },
];

/** The newest modification time under `target` (a file, or a folder and everything in it), in ms; 0 if absent. */
function newestTime(target) {
  let stat;
  try {
    stat = statSync(target);
  } catch {
    return 0;
  }
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const entry of readdirSync(target)) newest = Math.max(newest, newestTime(path.join(target, entry)));
  }
  return newest;
}

/**
 * Why the build under `root` must be made again, or undefined when it is up to date: the output that is missing,
 * or the first one older than one of its sources. A part whose sources are absent (no console/ folder) and that is
 * marked optional needs no output.
 */
export function staleReason(root) {
  for (const part of buildParts) {
    const sourceTime = Math.max(...part.sources.map((source) => newestTime(path.join(root, source))));
    if (part.optional && sourceTime === 0) continue;
    let outputTime;
    try {
      outputTime = statSync(path.join(root, part.output)).mtimeMs;
    } catch {
      return `${part.output} is missing`;
    }
    if (sourceTime > outputTime) return `${part.sources.join(', ')} changed after ${part.output} was built`;
  }
  return undefined;
}
