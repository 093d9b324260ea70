import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { errors, type GantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import { jobSchemaVersion } from '../queue/job-contracts.js';
import { payloadKeyPrefix, replyChannel } from '../redis-keys.js';
import { encodeReply } from '../queue/reply-codec.js';

/** Which queue a job came from: the shape of its reply depends on it. */
export type JobKind = 'inference' | 'load';

export interface UnreadableJobDependencies {
  /** The deployment's key prefix (GANTRY_QUEUE_PREFIX): only reply channels under it are answered. */
  prefix: string;
  redis: Redis;
  metrics: Pick<WorkerMetrics, 'unreadableJobs'>;
  logger: Logger;
}

/** Bounds on what is read from a job that failed its contract: its fields are not trusted. */
const maxIdentifierLength = 256;
const maxCorrelationIds = 4096;
const maxLoggedIssues = 5;

/** Where a job's callers wait, read leniently from data that failed the contract. */
interface ReplyAddress {
  replyTo: string;
  correlationIds: string[];
}

/**
 * Answers a job that does not match its contract (a newer contract during a rolling upgrade, or malformed data)
 * and ends it without retries: every caller whose reply address can be read gets an error at once instead of
 * waiting for its timeout. Always throws an UnrecoverableError, so BullMQ records the job as failed (kept with
 * the reason under the producer's removeOnFail bounds) and never runs it again.
 */
export async function answerUnreadableJob(job: Job, kind: JobKind, issues: z.ZodError, dependencies: UnreadableJobDependencies): Promise<never> {
  const { redis, metrics, logger, prefix } = dependencies;
  const data: unknown = job.data;
  const version = fieldOf(data, 'schemaVersion');
  const isOtherVersion = typeof version === 'number' && version !== jobSchemaVersion;
  const reason = isOtherVersion ? 'contract_version' : 'malformed';
  const error: GantryError = isOtherVersion ? errors.unsupportedJobContract(version, jobSchemaVersion) : errors.unreadableJob();
  const address = readReplyAddress(data, kind, prefix);
  const context = {
    queue: job.queueName,
    jobId: job.id,
    kind,
    schemaVersion: typeof version === 'number' ? version : undefined,
    // Paths and messages only: the values may be tensor bytes.
    issues: issues.issues.slice(0, maxLoggedIssues).map((issue) => `${issue.path.map(String).join('.') || '(job)'}: ${issue.message}`),
  };

  let answered = false;
  if (address !== undefined) {
    const wire = error.toWire();
    const reply =
      kind === 'load'
        ? encodeReply({ kind: 'load', correlationId: address.correlationIds[0]!, error: wire })
        : encodeReply({ kind: 'infer', results: address.correlationIds.map((correlationId) => ({ correlationId, error: wire })) });
    try {
      await redis.publish(address.replyTo, reply);
      answered = true;
    } catch (publishError) {
      logger.warn({ ...context, err: (publishError as Error).message }, 'could not answer an unreadable job');
    }
  }
  await deletePayload(data, kind, dependencies);
  metrics.unreadableJobs.inc({ kind, reason, outcome: answered ? 'answered' : 'unanswered' });
  const message = answered
    ? `job does not match contract v${jobSchemaVersion}; its ${address!.correlationIds.length} caller(s) were answered ${error.code}`
    : `job does not match contract v${jobSchemaVersion} and has no readable reply address (replyTo under ${replyChannel(prefix, '')} and correlation ids); its callers wait for their timeout`;
  // A newer contract is an upgrade in progress; anything else is a defect or foreign data in the queue.
  if (isOtherVersion) logger.warn(context, message);
  else logger.error(context, message);
  throw new UnrecoverableError(message);
}

function fieldOf(data: unknown, name: string): unknown {
  return typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[name] : undefined;
}

function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= maxIdentifierLength;
}

/**
 * The reply channel and correlation ids of a job, if they can be read: the channel must be an API's reply
 * channel of this deployment (so a bad job cannot make the worker publish on another channel, such as the
 * registry events), and at least one correlation id must be a string.
 */
function readReplyAddress(data: unknown, kind: JobKind, prefix: string): ReplyAddress | undefined {
  const replyTo = fieldOf(data, 'replyTo');
  if (!isIdentifier(replyTo) || !replyTo.startsWith(replyChannel(prefix, ''))) return undefined;
  const correlationIds: string[] = [];
  if (kind === 'load') {
    const correlationId = fieldOf(data, 'correlationId');
    if (isIdentifier(correlationId)) correlationIds.push(correlationId);
  } else {
    const requests = fieldOf(data, 'requests');
    if (Array.isArray(requests)) {
      for (const request of requests.slice(0, maxCorrelationIds)) {
        const correlationId = fieldOf(request, 'correlationId');
        if (isIdentifier(correlationId)) correlationIds.push(correlationId);
      }
    }
  }
  return correlationIds.length === 0 ? undefined : { replyTo, correlationIds };
}

/** A large inference job's input bytes wait in a key of their own; nobody will read them now. */
async function deletePayload(data: unknown, kind: JobKind, { redis, prefix }: UnreadableJobDependencies): Promise<void> {
  const key = fieldOf(data, 'payloadKey');
  if (kind !== 'inference' || typeof key !== 'string' || !key.startsWith(payloadKeyPrefix(prefix))) return;
  // It expires with the job's deadline anyway.
  await redis.del(key).catch(() => 0);
}
