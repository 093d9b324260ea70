import type { Logger } from '../logger.js';
import { decodeChunkInput } from './batch-chunk-input.js';
import { isFinished, type BatchRecord } from './batch-record.js';
import type { BatchStore } from './batch-store.js';
import type { DurableProducer } from './durable-producer.js';

/** The BullMQ job id of a batch chunk: deterministic, so queueing a chunk twice leaves one job (no ':' allowed). */
export function batchChunkJobId(batchId: string, chunk: number): string {
  return `batch-${batchId}-${chunk}`;
}

/** Chunks queued between two renewals of the enqueue lease. */
const chunksPerRenewal = 16;

/**
 * Queues an opened batch's chunks that are not in the queue yet, in order, from their inputs in the store. Only
 * the holder of the batch's enqueue lease does it, so two API processes never race; each chunk's job id is
 * deterministic, so a chunk queued by a process that died before recording it is not queued twice. Chunks the
 * cancel took are skipped at run time by the begin script, not here.
 *
 * What this gives: a batch is opened (`queued`) only once its whole body was read and checked, and from then on
 * its chunks are queued by whoever holds the lease: the creating request, or (when that process died part way)
 * the next read of the batch by any API process (`resumeBatchEnqueue`). Workers may start the first chunks before
 * the last is queued; that only makes it finish sooner.
 *
 * @returns false when another process holds the lease (it is queueing them).
 */
export async function enqueueBatchChunks(
  store: BatchStore,
  durable: Pick<DurableProducer, 'enqueue'>,
  record: BatchRecord,
  holder: string,
  logger?: Logger,
): Promise<boolean> {
  if (record.target === undefined || record.enqueued >= record.chunks) return true;
  if (!(await store.takeEnqueueLease(record.id, holder))) return false;
  try {
    // Re-read under the lease: another holder may have queued some since `record` was read.
    const current = (await store.read(record.id)) ?? record;
    for (let chunk = current.enqueued; chunk < current.chunks; chunk += 1) {
      if (chunk > current.enqueued && (chunk - current.enqueued) % chunksPerRenewal === 0 && !(await store.takeEnqueueLease(record.id, holder))) return false;
      const bytes = await store.readInput(record.id, chunk);
      if (bytes === null) {
        // Only an expired batch loses its inputs before they were queued: nothing to run any more.
        logger?.warn({ batchId: record.id, chunk }, 'a batch chunk has no input to queue');
        continue;
      }
      // The owner: the worker that runs the chunk meters its compute to the batch's tenant and key.
      const destination = { kind: 'batch' as const, batchId: record.id, chunk, owner: { tenant: current.tenant, keyId: current.keyId } };
      await durable.enqueue(current.target!, current.priority, decodeChunkInput(bytes), destination, batchChunkJobId(record.id, chunk));
      await store.markEnqueued(record.id, chunk);
    }
    return true;
  } finally {
    await store.releaseEnqueueLease(record.id).catch(() => undefined);
  }
}

/** True for an opened, unfinished batch some of whose chunks are not queued yet (its creator died part way). */
export function needsEnqueueResume(record: BatchRecord): boolean {
  return record.state !== 'receiving' && !isFinished(record) && record.target !== undefined && record.enqueued < record.chunks;
}
