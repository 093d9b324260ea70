/**
 * The server commands in the dispatcher's table. Their code (server-roles.ts) is imported only when one runs:
 * the client commands never load Fastify, BullMQ or onnxruntime.
 */
import type { ServerCommand } from '../command.js';
import type { ServerCommandName } from '../server-roles.js';

function serverCommand(name: ServerCommandName, summary: string, synopsis = '', details?: string[]): ServerCommand {
  return {
    kind: 'server',
    words: [name],
    summary,
    synopsis,
    ...(details === undefined ? {} : { details }),
    run: async (args) => (await import('../server-roles.js')).runServerCommand(name, args),
  };
}

export const serverCommands: ServerCommand[] = [
  serverCommand('start', 'the API and one worker (the embedded default; starts a private redis-server when needed)'),
  serverCommand('api', 'the HTTP API only'),
  serverCommand('worker', 'a worker only (runs models; serves /metrics, /health, /ready on GANTRY_WORKER_METRICS_PORT)'),
  serverCommand('repair', 'rebuilds the model registry in Redis from the model store (after Redis lost its data)'),
  serverCommand('export', 'writes a backup of this deployment (registry, tenants, keys, limits, blobs) to one file', '--out FILE [--references-only]'),
  serverCommand('import', 'restores a backup into an empty deployment (then has the workers load its models)', 'FILE'),
  serverCommand('admin-key', 'prints a new admin key and revokes the old one at once on every API process', 'rotate'),
];
