/**
 * The job fence against real BullMQ locks in Redis: trusted without a round trip within half a lock period of
 * the job being taken, confirmed with one round trip after that, and refused once the lock holds another
 * worker's token or is gone. A fenced-off job is neither completed nor failed in BullMQ: its new owner does it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createWorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { FencedOffError, leaveToItsOwner, LockFence } from '../../src/worker/job-fence.js';
import { CompletionGatedStatistics } from '../../src/worker/completion-gated-statistics.js';
import type { RequestStatistics, StatisticsSink } from '../../src/worker/inference-processor.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const prefix = `test-fence-${randomBytes(4).toString('hex')}`;
const lockDurationMs = 1000;
const logger = pino({ level: 'silent' });
let connection: Redis;
let admin: Redis;

before(async () => {
  connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  admin = new Redis(redisUrl);
});
after(async () => {
  connection.disconnect();
  admin.disconnect();
  await deleteKeys(redisUrl, prefix);
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface JobRun<T> {
  outcome: PromiseSettledResult<T>;
  job: Job;
  queue: Queue;
  /** The worker's completed and failed events, and the messages of its error events. */
  events: string[];
}

/**
 * Runs `body` as the processor of one job on a real BullMQ worker, on a queue of its own (a job left active by
 * one test must not be taken by the next); resolves with what it returned or threw.
 */
async function withJob<T>(body: (job: Job, queueName: string) => Promise<T>, onWorker?: (worker: Worker) => void): Promise<JobRun<T>> {
  const queueName = `fence{${randomBytes(4).toString('hex')}}`;
  const queue = new Queue(queueName, { connection, prefix });
  const events: string[] = [];
  let settle!: (outcome: PromiseSettledResult<T>) => void;
  const settled = new Promise<PromiseSettledResult<T>>((resolve) => (settle = resolve));
  let taken: Job | undefined;
  const worker = new Worker(
    queueName,
    async (job) => {
      taken = job;
      try {
        const value = await body(job, queueName);
        settle({ status: 'fulfilled', value });
        return undefined;
      } catch (error) {
        settle({ status: 'rejected', reason: error });
        throw error;
      }
    },
    { connection, prefix, lockDuration: lockDurationMs, stalledInterval: 60_000 },
  );
  onWorker?.(worker);
  worker.on('completed', () => events.push('completed'));
  worker.on('failed', () => events.push('failed'));
  worker.on('error', (error) => events.push(`error: ${error.message}`));
  await queue.add('job', {}, { removeOnComplete: false, removeOnFail: false });
  const outcome = await settled;
  // Give BullMQ the time to act on the outcome (complete, fail, or leave the job).
  await sleep(200);
  await worker.close();
  after(() => queue.close());
  return { outcome, job: taken!, queue, events };
}

test('a fresh job is trusted without asking Redis; an older one is confirmed once, then trusted again', async () => {
  const metrics = createWorkerMetrics();
  const { outcome, events } = await withJob(async (job) => {
    const fence = new LockFence(job, lockDurationMs, metrics);
    await fence.check('before_run');
    const freshChecks = (await metrics.jobLockChecks.get()).values[0]?.value ?? 0;
    await sleep(lockDurationMs * 0.6);
    await fence.check('before_answer');
    await fence.check('before_answer');
    return { freshChecks, laterChecks: (await metrics.jobLockChecks.get()).values[0]?.value ?? 0 };
  });
  assert.equal(outcome.status, 'fulfilled', String((outcome as PromiseRejectedResult).reason));
  assert.deepEqual((outcome as PromiseFulfilledResult<unknown>).value, { freshChecks: 0, laterChecks: 1 });
  assert.deepEqual(events, ['completed']);
});

test('a lock another worker holds fences the job off; BullMQ neither completes nor fails it', async () => {
  const metrics = createWorkerMetrics();
  const { outcome, job, queue, events } = await withJob(async (job, queueName) => {
    const fence = new LockFence(job, lockDurationMs, metrics);
    await fence.check('before_run');
    // What a worker that took the job over after a stall leaves in Redis: its own token on the lock.
    await admin.set(`${prefix}:${queueName}:${job.id}:lock`, 'another-worker:1', 'PX', 60_000);
    await sleep(lockDurationMs * 0.6);
    try {
      await fence.check('before_answer');
    } catch (error) {
      if (error instanceof FencedOffError) throw leaveToItsOwner(job, 'inference', error, { metrics, logger });
      throw error;
    }
  });
  assert.equal(outcome.status, 'rejected');
  assert.equal((outcome as PromiseRejectedResult).reason.name, 'WaitingError');
  // BullMQ's own lock renewal notices the lost lock too, and says so; nothing else happens to the job.
  assert.deepEqual(
    events.filter((event) => !event.startsWith('error: could not renew lock')),
    [],
    'no completed or failed event: the job was left alone',
  );
  assert.equal(await job.getState(), 'active', "the job stays active under its new owner's lock");
  assert.equal(await admin.get(`${prefix}:${queue.name}:${job.id}:lock`), 'another-worker:1');
  const fenced = (await metrics.fencedJobs.get()).values;
  assert.deepEqual(
    fenced.map((sample) => [sample.labels, sample.value]),
    [[{ kind: 'inference', stage: 'before_answer' }, 1]],
  );
});

test('a lock that expired (nobody holds the job yet) fences it off too, and the fence stays shut', async () => {
  const metrics = createWorkerMetrics();
  const { outcome } = await withJob(async (job, queueName) => {
    const fence = new LockFence(job, lockDurationMs, metrics);
    await admin.del(`${prefix}:${queueName}:${job.id}:lock`);
    await sleep(lockDurationMs * 0.6);
    const stages: string[] = [];
    for (const stage of ['before_run', 'before_answer'] as const) {
      await fence.check(stage).catch((error: unknown) => stages.push((error as FencedOffError).stage));
    }
    return { stages, checks: (await metrics.jobLockChecks.get()).values[0]?.value ?? 0 };
  });
  assert.equal(outcome.status, 'fulfilled', String((outcome as PromiseRejectedResult).reason));
  // The first refusal is remembered: no second round trip, and it names the stage that found it.
  assert.deepEqual((outcome as PromiseFulfilledResult<unknown>).value, { stages: ['before_run', 'before_run'], checks: 1 });
});

/** A gate whose shared sink lists the requests it was given, wired to a worker's completed and failed events. */
function countingGate(): { gate: CompletionGatedStatistics; counted: string[]; wire: (worker: Worker) => void } {
  const counted: string[] = [];
  const sink: StatisticsSink = { recordRequest: (model) => counted.push(model), recordExecution: () => undefined };
  const gate = new CompletionGatedStatistics(sink);
  const wire = (worker: Worker) => {
    worker.on('completed', (job) => gate.commit(job));
    worker.on('failed', (job) => job !== undefined && gate.discard(job));
  };
  return { gate, counted, wire };
}

const oneRequest: RequestStatistics = {
  ok: true,
  rows: 1,
  queueNs: 0,
  totalNs: 1,
  computeInputNs: 0,
  computeInferNs: 1,
  computeOutputNs: 0,
  finishedAtMs: 0,
};

test("a job's statistics count once BullMQ has completed it, and not before", async () => {
  const { gate, counted, wire } = countingGate();
  const { outcome, events } = await withJob(async (job) => {
    gate.collectorFor(job).recordRequest('answered', '1', oneRequest);
    return counted.length;
  }, wire);
  assert.deepEqual(outcome, { status: 'fulfilled', value: 0 }, 'nothing counted while the processor runs');
  assert.deepEqual(events, ['completed']);
  assert.deepEqual(counted, ['answered']);
});

test('a worker that loses the lock after the fence passed (a stall before completion) counts nothing', async () => {
  const metrics = createWorkerMetrics();
  const { gate, counted, wire } = countingGate();
  const { outcome, job, events } = await withJob(async (job, queueName) => {
    const fence = new LockFence(job, lockDurationMs, metrics);
    await fence.check('before_answer');
    gate.collectorFor(job).recordRequest('stalled', '1', oneRequest);
    // The stall lands here: the lock expires and another worker takes the job over before this one completes it.
    await admin.set(`${prefix}:${queueName}:${job.id}:lock`, 'another-worker:1', 'PX', 60_000);
  }, wire);
  assert.equal(outcome.status, 'fulfilled');
  assert.ok(!events.includes('completed'), `BullMQ refuses the completion (events: ${JSON.stringify(events)})`);
  assert.equal(await job.getState(), 'active', 'the job stays with the worker that took it over');
  assert.deepEqual(counted, [], 'the statistics are left to the worker that completes the job');
});
