/**
 * Every job gets an answer (issue 11): a job a worker cannot parse — a newer contract version during a rolling
 * upgrade, or malformed data — is answered with an error within a second whenever its reply address can be
 * read, instead of its caller waiting for the whole timeout; it is failed without retries. A job without a
 * readable reply address (or one naming a channel that is not an API's reply channel) is failed with a log line.
 *
 * The jobs are added with BullMQ's Queue directly (the API never writes such jobs) and taken by a real `gantry
 * worker` process; their answers are awaited by an in-process ReplyListener, as the API awaits them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ErrorCode, type GantryError } from '../../src/errors.js';
import { controlQueueName, inferenceQueueName, registryEventsChannel } from '../../src/redis-keys.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { ReplyListener, type ReplyWait } from '../../src/queue/reply-listener.js';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, infer, mlpRequest, sharedDeployment, sumMetric, waitUntil } from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
const logger = pino({ level: 'silent' });
let shared: { prefix: string; dataDirectory: string; redisUrl: string };
let api: GantryProcess;
let worker: GantryProcess;
let replies: ReplyListener;
let inferenceQueue: Queue;
let controlQueue: Queue;
const goodRequests = 20;

before(async () => {
  shared = await sharedDeployment(cleanup, 'unreadable');
  api = await startGantry({ ...shared, command: 'api' });
  cleanup.add(() => api.stop('SIGKILL'));
  worker = await startGantry({ ...shared, command: 'worker' });
  cleanup.add(() => worker.stop('SIGKILL'));
  const upload = await uploadModel(api.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'), '?wait=true');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  // Real traffic first: the worker consumes the model's queue, and the normal path is measured below.
  for (let index = 0; index < goodRequests; index++) {
    const reply = await infer(api.baseUrl, 'mlp', mlpRequest(index));
    assert.equal(reply.status, 200, describeReply(reply));
  }

  const subscriber = createRedis(shared.redisUrl, 'consumer', 'test-replies');
  const commands = createRedis(shared.redisUrl, 'consumer', 'test-commands');
  cleanup.add(() => {
    subscriber.disconnect();
    commands.disconnect();
  });
  replies = new ReplyListener(subscriber, commands, shared.prefix, logger);
  await replies.start();
  const connection = new Redis(shared.redisUrl, { maxRetriesPerRequest: null });
  cleanup.add(() => connection.disconnect());
  inferenceQueue = new Queue(inferenceQueueName('mlp'), { connection, prefix: shared.prefix });
  controlQueue = new Queue(controlQueueName, { connection, prefix: shared.prefix });
  for (const queue of [inferenceQueue, controlQueue]) {
    queue.on('error', () => undefined);
    cleanup.add(() => queue.close());
  }
});
after(() => cleanup.run());

/**
 * Resolves with the error a registered wait (an inference or load request) was answered with, and how long
 * after `since` it came; rejects when it was answered with a result, or not within 5 s.
 */
function errorAnswer(wait: ReplyWait<unknown>, since: () => number): Promise<{ error: GantryError; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer for ${wait.correlationId} within 5 s`)), 5000);
  });
  const answer = wait.reply.then(
    () => {
      throw new Error(`${wait.correlationId}: an unreadable job was answered with a result`);
    },
    (error: GantryError) => ({ error, ms: Date.now() - since() }),
  );
  return Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
}

/** A worker counter summed over the samples whose labels include every one of `labels` (all when empty). */
async function workerMetric(name: string, labels: string[] = []): Promise<number> {
  const response = await fetch(`${worker.workerUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  if (labels.length === 0) return sumMetric(text, name);
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && labels.every((label) => line.includes(label))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Waits (a little: it is counted just after the answer goes out) until a worker metric reaches `expected`. */
async function expectWorkerMetric(name: string, labels: string[], expected: number): Promise<void> {
  let value = NaN;
  await waitUntil(async () => (value = await workerMetric(name, labels)) >= expected, 2000, `${name}{${labels.join(',')}} to reach ${expected}`).catch(
    () => undefined,
  );
  assert.equal(value, expected, `${name}{${labels.join(',')}}`);
}

/** Waits until BullMQ holds the job as failed; returns its failed reason and how many times it was started. */
async function failedJob(queue: Queue, id: string): Promise<{ reason: string; attemptsStarted: number }> {
  await waitUntil(async () => (await queue.getJob(id))?.finishedOn !== undefined, 5000, `job ${id} to be failed`);
  const job = (await queue.getJob(id))!;
  assert.equal(await job.getState(), 'failed');
  return { reason: job.failedReason, attemptsStarted: job.attemptsStarted };
}

test('the normal path makes no lock check: short jobs are trusted for half a lock period', async () => {
  assert.equal(await workerMetric('gantry_worker_requests_total', ['outcome="success"']), goodRequests);
  assert.equal(await workerMetric('gantry_worker_job_lock_checks_total'), 0, 'no extra Redis round trip per job');
});

test('an inference job of a newer contract (v99) is answered 503 within a second, each of its requests', async () => {
  const waits = [replies.expectInference(), replies.expectInference()];
  const ids = waits.map((wait) => wait.correlationId);
  let addedAt = Date.now();
  const answers = Promise.all(waits.map((wait) => errorAnswer(wait, () => addedAt)));
  // A newer API's job: fields this worker does not know, and the ones it does in another shape.
  const job = await inferenceQueue.add('infer', {
    schemaVersion: 99,
    model: 'mlp',
    replyTo: replies.channel,
    requests: ids.map((correlationId) => ({ correlationId, tensors: 'v99 layout' })),
    payload: Buffer.alloc(1024).toString('base64'),
  });
  addedAt = Date.now();
  for (const { error, ms } of await answers) {
    assert.equal(error.code, ErrorCode.Unavailable, error.message);
    assert.equal(error.httpStatus, 503);
    assert.match(error.message, /job contract v99.*upgrade the workers/);
    assert.ok(ms < 1000, `answered ${ms} ms after the job was added`);
  }
  const failed = await failedJob(inferenceQueue, job.id!);
  assert.match(failed.reason, /contract v1/);
  assert.equal(failed.attemptsStarted, 1, 'not retried');
  await expectWorkerMetric('gantry_worker_unreadable_jobs_total', ['kind="inference"', 'reason="contract_version"', 'outcome="answered"'], 1);
});

test('a malformed inference job (valid replyTo, broken requests) is answered 500 within a second', async () => {
  const wait = replies.expectInference();
  const id = wait.correlationId;
  let addedAt = Date.now();
  const answer = errorAnswer(wait, () => addedAt);
  const job = await inferenceQueue.add('infer', {
    schemaVersion: 1,
    model: 'mlp',
    version: '1',
    sha256: 'not a digest',
    replyTo: replies.channel,
    deadline: Date.now() + 30_000,
    enqueuedAt: Date.now(),
    requests: [{ correlationId: id, inputs: [{ name: 'input', datatype: 'FP99', shape: [1, 256], byteLength: 1024 }], outputs: [] }],
    payload: Buffer.alloc(1024).toString('base64'),
  });
  addedAt = Date.now();
  const { error, ms } = await answer;
  assert.equal(error.code, ErrorCode.Internal, error.message);
  assert.match(error.message, /could not read the job/);
  assert.ok(ms < 1000, `answered ${ms} ms after the job was added`);
  assert.equal((await failedJob(inferenceQueue, job.id!)).attemptsStarted, 1);
  await expectWorkerMetric('gantry_worker_unreadable_jobs_total', ['kind="inference"', 'reason="malformed"', 'outcome="answered"'], 1);
});

test('a load job of a newer contract, and a malformed one, are answered within a second', async () => {
  const newerWait = replies.expectLoad();
  const malformedWait = replies.expectLoad();
  const newer = newerWait.correlationId;
  const malformed = malformedWait.correlationId;
  let addedAt = Date.now();
  const answers = [errorAnswer(newerWait, () => addedAt), errorAnswer(malformedWait, () => addedAt)];
  await controlQueue.add('load', { schemaVersion: 2, model: 'mlp', version: '2', replyTo: replies.channel, correlationId: newer, blob: { sha256: 'x' } });
  await controlQueue.add('load', { schemaVersion: 1, model: 'mlp', replyTo: replies.channel, correlationId: malformed });
  addedAt = Date.now();
  const [newerAnswer, malformedAnswer] = await Promise.all(answers);
  assert.equal(newerAnswer!.error.code, ErrorCode.Unavailable, newerAnswer!.error.message);
  assert.match(newerAnswer!.error.message, /job contract v2/);
  assert.equal(malformedAnswer!.error.code, ErrorCode.Internal, malformedAnswer!.error.message);
  for (const { ms } of [newerAnswer!, malformedAnswer!]) assert.ok(ms < 1000, `answered ${ms} ms after the jobs were added`);
  await expectWorkerMetric('gantry_worker_unreadable_jobs_total', ['kind="load"', 'outcome="answered"'], 2);
});

test('a job without a readable reply address, or naming a channel that is no reply channel, is failed and logged, never published', async () => {
  const eventsChannel = registryEventsChannel(shared.prefix);
  const tap = new Redis(shared.redisUrl);
  cleanup.add(() => tap.disconnect());
  const heard: string[] = [];
  tap.on('message', (_channel: string, message: string) => heard.push(message));
  await tap.subscribe(eventsChannel);

  const orphan = await inferenceQueue.add('infer', { schemaVersion: 99, requests: [{ correlationId: 'nobody-waits' }] });
  const misdirected = await inferenceQueue.add('infer', { schemaVersion: 99, replyTo: eventsChannel, requests: [{ correlationId: 'misdirected-reply' }] });
  for (const job of [orphan, misdirected]) {
    const failed = await failedJob(inferenceQueue, job.id!);
    assert.match(failed.reason, /no readable reply address/);
  }
  await expectWorkerMetric('gantry_worker_unreadable_jobs_total', ['kind="inference"', 'reason="contract_version"', 'outcome="unanswered"'], 2);
  await waitUntil(() => worker.output().includes(`"jobId":"${misdirected.id}"`), 5000, 'the log line of the misdirected job');
  assert.match(worker.output(), new RegExp(`"jobId":"${orphan.id}".*no readable reply address`));
  assert.deepEqual(
    heard.filter((message) => message.includes('misdirected-reply')),
    [],
    'no reply was published on the registry events channel',
  );

  // The worker still serves.
  const reply = await infer(api.baseUrl, 'mlp', mlpRequest(99));
  assert.equal(reply.status, 200, describeReply(reply));
});
