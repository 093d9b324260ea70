#!/usr/bin/env node
/**
 * The `gantry` command (package.json "bin"). The dispatcher and every command live in src/cli/ (docs/cli.md):
 * server roles (start, api, worker, …) and client commands (models, infer, keys, …). `gantry` alone prints the
 * usage and exits 2.
 */
import { runCli } from './cli/main.js';

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (exitCode) => {
    // A server role keeps running (undefined); every other command ends with its code once its output is flushed.
    if (exitCode !== undefined) process.exitCode = exitCode;
  },
  (error: unknown) => {
    process.stderr.write(`gantry failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
