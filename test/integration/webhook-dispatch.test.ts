/**
 * Issue 16, webhook dispatch on real Redis (its own key prefix) to a real HTTP receiver on 127.0.0.1: the webhook
 * queue (webhook-queue.ts) and the dispatcher (webhook-dispatcher.ts) with a stub WebhookSource. The receiver
 * verifies the signature over the exact body; a receiver failing twice gets exactly three attempts, all recorded;
 * a callback the SSRF guard refuses is recorded once and never retried (nothing reaches the receiver); a host that
 * does not resolve is retried; a subject added twice is delivered once; retries survive a dispatcher restart; a
 * slow receiver does not hold up another's webhook; a subject without a callback delivers nothing.
 */
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue, type JobState } from 'bullmq';
import { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import type { FinishedSubject } from '../../src/jobs/durable-writer.js';
import { createLogger } from '../../src/logger.js';
import { createWebhookMetrics, type WebhookMetrics } from '../../src/metrics/webhook-metrics.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { webhookDeliveriesKey, webhookQueueName } from '../../src/redis-keys.js';
import type { DeliveryAttempt } from '../../src/webhooks/webhook-delivery.js';
import { WebhookDispatcher, webhookDispatcherOptions, type WebhookDispatcherOptions } from '../../src/webhooks/webhook-dispatcher.js';
import { WebhookQueue, webhookJobId, webhookJobSchemaVersion } from '../../src/webhooks/webhook-queue.js';
import type { WebhookCall, WebhookSource } from '../../src/webhooks/webhook-source.js';
import { signatureHeader, verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { waitUntil } from '../helpers/reliability-harness.js';
import { readyProducerRedis } from '../helpers/ready-producer.js';

const redisUrl = 'redis://127.0.0.1:6379';
const prefix = `test-webhook-dispatch-${randomBytes(4).toString('hex')}`;
const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');
const secret = 'whsec-test';

/** What the receiver got: one entry per request. */
interface Received {
  path: string;
  signature: string | undefined;
  body: string;
  /** Whether the test had closed the first dispatcher when this request came (the restart test). */
  afterRestart: boolean;
}

let server: Server;
let baseUrl: string;
const received: Received[] = [];
/** Statuses a path answers, in order (200 once they are used up). */
const scripts = new Map<string, number[]>();
/** Paths whose requests wait for this promise before answering. */
const holds = new Map<string, Promise<void>>();
let restarted = false;

let consumerRedis: Redis;
let producerRedis: Redis;
let queue: WebhookQueue;
let inspector: Queue;
const calls = new Map<string, WebhookCall>();
/** Subjects whose store cannot answer (reads fail as if Redis were away). */
const unreadable = new Set<string>();
const source: WebhookSource = {
  describe: (subject) =>
    unreadable.has(webhookJobId(subject)) ? Promise.reject(new Error('store unavailable')) : Promise.resolve(calls.get(webhookJobId(subject))),
};
const dispatchers: WebhookDispatcher[] = [];

before(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '';
      received.push({
        path,
        signature: request.headers[signatureHeader] as string | undefined,
        body: Buffer.concat(chunks).toString('utf8'),
        afterRestart: restarted,
      });
      const status = scripts.get(path)?.shift() ?? 200;
      void (holds.get(path) ?? Promise.resolve()).then(() => response.writeHead(status).end('ok'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  consumerRedis = createRedis(redisUrl, 'consumer', 'test-webhook-dispatcher');
  producerRedis = await readyProducerRedis(redisUrl, 'test-webhook-queue');
  queue = new WebhookQueue(producerRedis, prefix, logger);
  inspector = new Queue(webhookQueueName, { connection: producerRedis, prefix });
});

afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((dispatcher) => dispatcher.close()));
});

after(async () => {
  await queue.close();
  await inspector.close();
  await deleteKeys(redisUrl, prefix);
  consumerRedis.disconnect();
  producerRedis.disconnect();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Dispatcher options: loopback allowed, short waits; `overrides` change them per test. */
function options(overrides: Partial<WebhookDispatcherOptions['delivery']> & { allow?: string; concurrency?: number } = {}) {
  const { allow = '127.0.0.1', concurrency = 4, ...delivery } = overrides;
  const base = webhookDispatcherOptions(
    loadConfig({ GANTRY_QUEUE_PREFIX: prefix, GANTRY_WEBHOOK_ALLOW: allow, GANTRY_WEBHOOK_CONCURRENCY: String(concurrency) }),
  );
  return { ...base, delivery: { ...base.delivery, timeoutMs: 5000, attempts: 5, baseDelayMs: 50, maxDelayMs: 200, ...delivery } };
}

async function startDispatcher(dispatcherOptions: WebhookDispatcherOptions): Promise<{ dispatcher: WebhookDispatcher; metrics: WebhookMetrics }> {
  const metrics = createWebhookMetrics(new Registry());
  const dispatcher = new WebhookDispatcher(consumerRedis, source, { ...dispatcherOptions, metrics }, logger);
  dispatchers.push(dispatcher);
  await dispatcher.start();
  return { dispatcher, metrics };
}

/** A fresh subject whose webhook goes to `url` (a path on the receiver when it starts with '/'). */
function subjectCalling(url: string, body: unknown = { ok: true }): FinishedSubject {
  const subject: FinishedSubject = { kind: 'job', id: randomBytes(6).toString('hex') };
  calls.set(webhookJobId(subject), { url: url.startsWith('/') ? `${baseUrl}${url}` : url, secret, body, retentionMs: 60_000 });
  return subject;
}

async function deliveries(subject: FinishedSubject): Promise<DeliveryAttempt[]> {
  return (await producerRedis.lrange(webhookDeliveriesKey(prefix, subject), 0, -1)).map((entry) => JSON.parse(entry) as DeliveryAttempt);
}

const state = (subject: FinishedSubject): Promise<JobState | 'unknown'> => inspector.getJobState(webhookJobId(subject));
const waitForState = (subject: FinishedSubject, wanted: JobState) =>
  waitUntil(async () => (await state(subject)) === wanted, 15_000, `the webhook of ${subject.id} to be ${wanted}`);
const requestsTo = (path: string) => received.filter((request) => request.path === path);

async function counted(metrics: WebhookMetrics): Promise<Record<string, number>> {
  return Object.fromEntries((await metrics.deliveries.get()).values.map(({ labels, value }) => [String(labels.outcome), value]));
}

test('the receiver gets the exact body, signed: it verifies the signature; the job data carries only the subject', async () => {
  const { metrics } = await startDispatcher(options());
  const body = { id: 'job-1', state: 'succeeded', outputs: [{ name: 'y', data: [1.5, -2, 3] }], note: 'ünïcödé' };
  const subject = subjectCalling('/signed', body);
  await queue.add([subject]);
  await waitForState(subject, 'completed');

  const [request, ...more] = requestsTo('/signed');
  assert.equal(more.length, 0);
  assert.equal(request!.body, JSON.stringify(body));
  assert.deepEqual(JSON.parse(request!.body), body);
  assert.ok(request!.signature !== undefined, 'the request is signed');
  assert.equal(verifyWebhookSignature(request!.signature, secret, request!.body, Math.floor(Date.now() / 1000)), true);
  assert.equal(verifyWebhookSignature(request!.signature, 'another secret', request!.body, Math.floor(Date.now() / 1000)), false);

  const attempts = await deliveries(subject);
  assert.equal(attempts.length, 1);
  assert.equal(attempts[0]!.status, 200);
  assert.equal(attempts[0]!.error, undefined);
  const ttl = await producerRedis.pttl(webhookDeliveriesKey(prefix, subject));
  assert.ok(ttl > 0 && ttl <= 60_000, `the deliveries list lives as long as the subject (pttl ${ttl})`);

  const job = await inspector.getJob(webhookJobId(subject));
  assert.deepEqual(job?.data, { schemaVersion: webhookJobSchemaVersion, kind: 'job', id: subject.id });
  assert.equal(JSON.stringify(job?.data).includes(secret), false);
  assert.deepEqual(await counted(metrics), { delivered: 1 });
});

test('a receiver that answers 500 twice, then 200, gets exactly three attempts, and the deliveries list shows them', async () => {
  const { metrics } = await startDispatcher(options({ attempts: 5 }));
  scripts.set('/flaky', [500, 500, 200]);
  const subject = subjectCalling('/flaky');
  await queue.add([subject]);
  await waitForState(subject, 'completed');

  assert.equal(requestsTo('/flaky').length, 3);
  const attempts = await deliveries(subject);
  assert.deepEqual(
    attempts.map((attempt) => attempt.status),
    [500, 500, 200],
  );
  assert.match(attempts[0]!.error ?? '', /answered 500/);
  assert.equal(attempts[2]!.error, undefined);
  for (const request of requestsTo('/flaky'))
    assert.equal(verifyWebhookSignature(request.signature!, secret, request.body, Math.floor(Date.now() / 1000)), true, 'each attempt is signed');
  assert.deepEqual(await counted(metrics), { delivered: 1, failed_attempt: 2 });
});

test('a receiver that never answers 2xx gets GANTRY_WEBHOOK_ATTEMPTS attempts, then the webhook is given up', async () => {
  const { metrics } = await startDispatcher(options({ attempts: 3 }));
  scripts.set('/broken', [503, 500, 502, 500, 500]);
  const subject = subjectCalling('/broken');
  await queue.add([subject]);
  await waitForState(subject, 'failed');

  assert.equal(requestsTo('/broken').length, 3);
  assert.deepEqual(
    (await deliveries(subject)).map((attempt) => attempt.status),
    [503, 500, 502],
  );
  assert.deepEqual(await counted(metrics), { failed_attempt: 2, gave_up: 1 });
});

test('a callback to loopback (not on the allow-list) or the metadata address is refused once, never retried; a host that does not resolve is retried', async () => {
  const { metrics } = await startDispatcher({
    ...options({ allow: '', attempts: 2 }),
    resolve: (host) => (host === 'nowhere.invalid' ? Promise.reject(new Error('ENOTFOUND')) : Promise.resolve([{ address: '127.0.0.1', family: 4 }])),
  });
  const loopback = subjectCalling('/private');
  const metadata = subjectCalling('http://169.254.169.254/latest/meta-data/');
  const unresolvable = subjectCalling('http://nowhere.invalid/hook');
  await queue.add([loopback, metadata, unresolvable]);
  for (const subject of [loopback, metadata, unresolvable]) await waitForState(subject, 'failed');

  assert.equal(requestsTo('/private').length, 0, 'nothing reached the receiver');
  for (const subject of [loopback, metadata]) {
    const attempts = await deliveries(subject);
    assert.equal(attempts.length, 1, 'recorded once');
    assert.match(attempts[0]!.error ?? '', /^refused: .*not a public address/);
    assert.equal(attempts[0]!.status, undefined);
    assert.equal((await inspector.getJob(webhookJobId(subject)))?.attemptsMade, 1, 'not retried');
  }
  const unresolved = await deliveries(unresolvable);
  assert.equal(unresolved.length, 2, 'both attempts made');
  for (const attempt of unresolved) assert.match(attempt.error ?? '', /does not resolve/);
  assert.deepEqual(await counted(metrics), { refused: 2, failed_attempt: 1, gave_up: 1 });
});

test('the same subject added twice (and again once delivered) is delivered once', async () => {
  await startDispatcher(options());
  const subject = subjectCalling('/once');
  await queue.add([subject, subject]);
  await queue.add([subject]);
  await waitForState(subject, 'completed');
  await queue.add([subject]);

  assert.equal(await state(subject), 'completed', 'adding a delivered subject again queues nothing');
  const counts = await inspector.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'paused');
  assert.deepEqual(counts, { waiting: 0, prioritized: 0, delayed: 0, active: 0, paused: 0 });
  assert.equal(requestsTo('/once').length, 1);
  assert.equal((await deliveries(subject)).length, 1);
});

test('retries survive a restart: a dispatcher closed while a retry waits, and a new one makes the remaining attempts', async () => {
  // The first dispatcher's wait (set when its attempt failed) is long enough to close it before the retry is due.
  const first = await startDispatcher(options({ attempts: 3, baseDelayMs: 2000, maxDelayMs: 2000 }));
  scripts.set('/restart', [500, 500, 200]);
  const subject = subjectCalling('/restart');
  await queue.add([subject]);
  await waitUntil(async () => (await deliveries(subject)).length === 1 && (await state(subject)) === 'delayed', 10_000, 'the first attempt to fail');
  await first.dispatcher.close();
  restarted = true;

  await startDispatcher(options({ attempts: 3 }));
  await waitForState(subject, 'completed');
  const requests = requestsTo('/restart');
  assert.deepEqual(
    requests.map((request) => request.afterRestart),
    [false, true, true],
    'the second and third attempts came from the new dispatcher',
  );
  assert.deepEqual(
    (await deliveries(subject)).map((attempt) => attempt.status),
    [500, 500, 200],
  );
});

test('a slow receiver does not hold up another webhook', async () => {
  await startDispatcher(options({ concurrency: 2, timeoutMs: 20_000 }));
  let release!: () => void;
  holds.set(
    '/slow',
    new Promise<void>((resolve) => {
      release = resolve;
    }),
  );
  const slow = subjectCalling('/slow');
  await queue.add([slow]);
  await waitUntil(() => requestsTo('/slow').length === 1, 10_000, 'the slow receiver to be called');

  const fast = subjectCalling('/fast');
  try {
    await queue.add([fast]);
    // Well inside the slow delivery's timeout: a dispatcher delivering one at a time would still be waiting on it.
    await waitForState(fast, 'completed');
    assert.equal(await state(slow), 'active', 'the slow delivery is still under way');
  } finally {
    release();
  }
  await waitForState(slow, 'completed');
  assert.deepEqual(
    (await deliveries(slow)).map((attempt) => attempt.status),
    [200],
  );
});

test('a subject without a callback (or gone) delivers nothing and records nothing', async () => {
  const { metrics } = await startDispatcher(options());
  const subject: FinishedSubject = { kind: 'batch', id: randomBytes(6).toString('hex') };
  await queue.add([subject]);
  await waitForState(subject, 'completed');
  assert.equal(await producerRedis.exists(webhookDeliveriesKey(prefix, subject)), 0);
  assert.deepEqual(await counted(metrics), {});
});

test('a subject whose store cannot answer is retried, spending attempts, and given up once they are spent', async () => {
  await startDispatcher(options({ attempts: 2 }));
  const subject = subjectCalling('/unreadable');
  unreadable.add(webhookJobId(subject));
  await queue.add([subject]);
  await waitForState(subject, 'failed');
  const job = await inspector.getJob(webhookJobId(subject));
  assert.equal(job?.attemptsMade, 2);
  assert.match(job?.failedReason ?? '', /could not be read: store unavailable/);
  assert.equal(requestsTo('/unreadable').length, 0);
  assert.equal((await deliveries(subject)).length, 0, 'nothing was sent, so nothing is recorded');
});

test('a subject id BullMQ cannot use is refused when added', async () => {
  await assert.rejects(queue.add([{ kind: 'job', id: 'a:b' }]), /without ':'/);
});
