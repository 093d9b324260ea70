/**
 * The far end of the trace mode's floors, in a process of its own (as a Gantry worker is):
 *
 *   node dist/bench/trace-peer.js <redisUrl> <prefix> bullmq   # a BullMQ Worker on queue "trace" that answers each
 *                                                               # job by publishing its id on <prefix>:reply
 *   node dist/bench/trace-peer.js <redisUrl> <prefix> pubsub   # answers each message on <prefix>:ping on <prefix>:pong
 *
 * Prints "ready" once it listens; stops on SIGTERM.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [redisUrl, prefix, mode] = process.argv.slice(2);
if (redisUrl === undefined || prefix === undefined || (mode !== 'bullmq' && mode !== 'pubsub')) {
  console.error('usage: node dist/bench/trace-peer.js <redisUrl> <prefix> <bullmq|pubsub>');
  process.exit(2);
}

const publisher = new Redis(redisUrl);
const closers: Array<() => Promise<unknown>> = [() => publisher.quit()];

if (mode === 'bullmq') {
  // The reply goes out from inside the processor, before BullMQ marks the job complete: Gantry's worker does the same.
  const worker = new Worker<{ id: string }>(
    'trace',
    async (job) => {
      await publisher.publish(`${prefix}:reply`, job.data.id);
    },
    { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix },
  );
  await worker.waitUntilReady();
  closers.unshift(() => worker.close());
} else {
  const subscriber = new Redis(redisUrl);
  subscriber.on('message', (_channel: string, message: string) => void publisher.publish(`${prefix}:pong`, message));
  await subscriber.subscribe(`${prefix}:ping`);
  closers.unshift(() => subscriber.quit());
}
console.log('ready');

process.once('SIGTERM', () => {
  void (async () => {
    for (const close of closers) await close().catch(() => undefined);
    process.exit(0);
  })();
});
