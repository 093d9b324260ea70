// `npm start`: runs the built gantry (`gantry start`, or the command given after `--`), building it first only when
// the sources are newer than the build (scripts/build-freshness.mjs). An up-to-date restart costs no compile, and
// running the build needs no devDependency: only a stale tree needs TypeScript to build it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { staleReason } from './build-freshness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cliPath = path.join(root, 'dist/src/cli.js');

/** `npm run build` with the npm that runs this script (npm sets npm_execpath), else the one on PATH. */
function runBuild() {
  const npmCli = process.env.npm_execpath;
  const [command, args] = npmCli !== undefined && npmCli.endsWith('.js') ? [process.execPath, [npmCli, 'run', 'build']] : ['npm', ['run', 'build']];
  return spawnSync(command, args, { cwd: root, stdio: 'inherit' });
}

const reason = staleReason(root);
if (reason !== undefined) {
  if (!existsSync(path.join(root, 'node_modules/typescript'))) {
    process.stderr.write(
      `gantry: the build is out of date (${reason}), and TypeScript is not installed (an install without devDependencies) to build it.\n` +
        'Build it where devDependencies are installed (npm run build) and copy dist/, or run the build as it is: node dist/src/cli.js start\n',
    );
    process.exit(1);
  }
  process.stderr.write(`gantry: building first (${reason})\n`);
  const build = runBuild();
  if (build.status !== 0) {
    process.stderr.write(`gantry: the build failed (${build.error?.message ?? `exit code ${build.status ?? build.signal}`}); not starting\n`);
    process.exit(build.status || 1);
  }
}

// In this process, not a child: no second Node start-up, and signals reach gantry directly.
const commandLine = process.argv.slice(2);
process.argv = [process.argv[0], cliPath, ...(commandLine.length === 0 ? ['start'] : commandLine)];
await import(pathToFileURL(cliPath).href);
