import type { Redis } from 'ioredis';
import { BatchStore } from './batch-store.js';
import type { DurableWriter } from './durable-writer.js';

/**
 * The durable writer of batch lines (durable-writer.ts): a chunk's job starts through the batch store's begin
 * script (the lines without a result, none once the cancel took the chunk) and its answers go through the write
 * script, each line once. The batch is the finished subject of the write that gave its last line a result.
 */
export function batchResultsWriter(redis: Redis, prefix: string): DurableWriter {
  const store = new BatchStore(redis, prefix);
  return {
    async begin(job, destination) {
      if (destination.kind !== 'batch') throw new Error(`the batch writer got a '${destination.kind}' destination`);
      const lines = job.requests.map((request) => request.correlationId);
      return new Set(await store.begin(destination.batchId, destination.chunk, lines));
    },
    async write(_job, destination, answers) {
      if (destination.kind !== 'batch') throw new Error(`the batch writer got a '${destination.kind}' destination`);
      const finished = await store.write(
        destination.batchId,
        answers.map((answer) => ({
          line: answer.correlationId,
          kind: answer.expired === true ? 'e' : answer.error === undefined ? 's' : 'f',
          stored: answer.stored,
        })),
      );
      return finished ? [{ kind: 'batch', id: destination.batchId }] : [];
    },
  };
}
