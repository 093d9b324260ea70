import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { WireError } from '../errors.js';
import { asyncJobKey, asyncJobResultKey, jobIdempotencyKey, runningJobsKey, tenantJobsKey, unfinishedJobsKey } from '../redis-keys.js';
import { recordFields, recordFromFields, type JobRecord, type JobState } from './job-record.js';
import { readDeliveries } from '../webhooks/webhook-deliveries.js';
import type { DeliveryAttempt } from '../webhooks/webhook-delivery.js';

/**
 * Marks a job running when a worker starts it; answers 1 when it still wants running. A job that is gone
 * (expired from Redis), final or cancelled is not run. Attempts count every start (a re-run after a crash too).
 * KEYS[1] record; ARGV[1] now (ms).
 */
const beginScript = `
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'running')
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 1`;

/**
 * Writes a job's answer once, with its final state, unless the job already is final (answered by an earlier
 * run, cancelled): a re-run after a worker crash overwrites nothing. The result and the record then last for
 * the job's retention. Answers {1, tenant} when this call finished the job, {2, tenant} when it also has a
 * callback, 0 otherwise.
 * KEYS[1] record, KEYS[2] result; ARGV[1] stored answer, ARGV[2] state, ARGV[3] error JSON or '', ARGV[4] now.
 */
const writeScript = `
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
local retention = tonumber(redis.call('HGET', KEYS[1], 'retentionMs'))
redis.call('SET', KEYS[2], ARGV[1], 'PX', retention)
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'finishedAt', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], retention)
local tenant = redis.call('HGET', KEYS[1], 'tenant')
if redis.call('HEXISTS', KEYS[1], 'callback') == 1 then return {2, tenant} end
return {1, tenant}`;

/**
 * Cancels a job that is not final: a queued one never runs, a running one finishes its run but its answer is
 * not written (the write script refuses a final job). Answers the state it was in ('' when gone).
 * KEYS[1] record; ARGV[1] now.
 */
const cancelScript = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'queued' or state == 'running' then
  local retention = tonumber(redis.call('HGET', KEYS[1], 'retentionMs'))
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finishedAt', ARGV[1], 'cancelledWhile', state)
  redis.call('PEXPIRE', KEYS[1], retention)
end
return state`;

/**
 * Claims an Idempotency-Key for a new job, or answers the job that holds it: `<id> <body sha256>`. A claim whose
 * job was never created (the API died in between) is taken over by the caller. KEYS[1] the claim; ARGV[1]
 * `<new id> <sha> <claimed at ms>`, ARGV[2] ttl ms.
 */
const claimScript = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''`;

/** What a creation with an Idempotency-Key found. */
export type IdempotencyClaim = { kind: 'new' } | { kind: 'same'; id: string } | { kind: 'different'; id: string };
// 'same' may name a job whose record is still being written (a concurrent creation): the caller says so.

/** Oldest unfinished entries checked against their records per pruning. */
const pruneBatch = 100;

/** How long a creation may take between claiming its Idempotency-Key and writing its record. */
const claimCreationMs = 30_000;

/**
 * The asynchronous jobs' records in Redis, one owner for every change to them: created by the API, started and
 * answered by workers (through job-results.ts), cancelled by the API. Each change that must not race another is
 * one Lua script on the job's own keys (one hash tag: `{<id>}`).
 */
export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Writes a new record (queued) and lists it under its tenant. It lives until its deadline plus its retention. */
  async create(record: JobRecord): Promise<void> {
    const key = asyncJobKey(this.prefix, record.id);
    const ttlMs = Math.max(1000, record.deadline - Date.now() + record.retentionMs);
    await this.redis.multi().hset(key, recordFields(record)).pexpire(key, ttlMs).exec();
    await Promise.all([
      this.redis.zadd(tenantJobsKey(this.prefix, record.tenant), record.createdAt, record.id),
      this.redis.zadd(unfinishedJobsKey(this.prefix, record.tenant), record.createdAt, record.id),
      this.redis.zadd(unfinishedJobsKey(this.prefix), record.createdAt, record.id),
    ]);
  }

  /** A job finished (answered, cancelled): it no longer counts as unfinished. */
  async markFinished(id: string, tenant: string): Promise<void> {
    await Promise.all([
      this.redis.zrem(unfinishedJobsKey(this.prefix, tenant), id),
      this.redis.zrem(unfinishedJobsKey(this.prefix), id),
      this.redis.zrem(runningJobsKey(this.prefix), id),
    ]);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return recordFromFields(await this.redis.hgetall(asyncJobKey(this.prefix, id)));
  }

  /** The stored answer of a finished job; undefined when there is none (not finished, expired, cancelled). */
  async result(id: string): Promise<Buffer | undefined> {
    return (await this.redis.getBuffer(asyncJobResultKey(this.prefix, id))) ?? undefined;
  }

  deliveries(id: string): Promise<DeliveryAttempt[]> {
    return readDeliveries(this.redis, this.prefix, { kind: 'job', id });
  }

  /** A worker starts the job: true when it still wants running. */
  async begin(id: string): Promise<boolean> {
    const wanted = (await this.redis.eval(beginScript, 1, asyncJobKey(this.prefix, id), String(Date.now()))) === 1;
    // Only for the gauges: an entry a crash leaves behind is pruned when it is met (unfinished()).
    if (wanted) await this.redis.zadd(runningJobsKey(this.prefix), Date.now(), id);
    return wanted;
  }

  /** A worker's answer, written once. @returns whether this call finished the job, and whether it has a callback. */
  async write(id: string, stored: Buffer, state: Extract<JobState, 'succeeded' | 'failed' | 'expired'>, error: WireError | undefined) {
    const outcome = (await this.redis.eval(
      writeScript,
      2,
      asyncJobKey(this.prefix, id),
      asyncJobResultKey(this.prefix, id),
      stored,
      state,
      error === undefined ? '' : JSON.stringify(error),
      String(Date.now()),
    )) as number | [number, string];
    if (!Array.isArray(outcome)) return { finished: false, hasCallback: false };
    await this.markFinished(id, outcome[1]);
    return { finished: true, hasCallback: outcome[0] === 2 };
  }

  /** Cancels the job. @returns the state it was in, undefined when it does not exist. */
  async cancel(id: string): Promise<JobState | undefined> {
    const was = (await this.redis.eval(cancelScript, 1, asyncJobKey(this.prefix, id), String(Date.now()))) as string;
    return was === '' ? undefined : (was as JobState);
  }

  /**
   * One page of a tenant's jobs, newest first, after `cursor` (the last job of the previous page). Ids whose
   * records expired are dropped from the listing as they are met.
   */
  async list(tenant: string, limit: number, cursor: { createdAt: number; id: string } | undefined): Promise<JobRecord[]> {
    const key = tenantJobsKey(this.prefix, tenant);
    const found: JobRecord[] = [];
    // Equal scores come in descending id order: after the cursor are lower scores, or its score and lower ids.
    const isAfterCursor = (id: string, score: number) => cursor === undefined || score < cursor.createdAt || (score === cursor.createdAt && id < cursor.id);
    let max = cursor === undefined ? '+inf' : String(cursor.createdAt);
    const pageSize = limit * 2 + 1;
    while (found.length < limit) {
      const page = await this.redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, pageSize);
      const expired: string[] = [];
      let lowest: number | undefined;
      for (let index = 0; index < page.length && found.length < limit; index += 2) {
        const id = page[index]!;
        const score = Number(page[index + 1]);
        lowest = score;
        if (!isAfterCursor(id, score)) continue;
        const record = await this.get(id);
        if (record === undefined) expired.push(id);
        else found.push(record);
      }
      if (expired.length > 0) await this.redis.zrem(key, ...expired);
      if (page.length < pageSize * 2 || lowest === undefined) break;
      // The next page starts below the lowest score seen (jobs created in the same millisecond are rare).
      max = `(${lowest}`;
    }
    return found;
  }

  /**
   * Unfinished jobs of a tenant (or of the deployment), and when the oldest was created. When asked to, the
   * oldest entries are first checked against their records, and those a crash left behind (their job finished or
   * gone) are dropped: a cap that seems reached is confirmed before it refuses anyone.
   */
  async unfinished(tenant: string | undefined, options: { prune: boolean }): Promise<{ count: number; running: number; oldestCreatedAt: number | undefined }> {
    const key = unfinishedJobsKey(this.prefix, tenant);
    if (options.prune) {
      await this.prune(key, ['queued', 'running']);
      if (tenant === undefined) await this.prune(runningJobsKey(this.prefix), ['running']);
    }
    const [count, first, running] = await Promise.all([
      this.redis.zcard(key),
      this.redis.zrange(key, 0, 0, 'WITHSCORES'),
      tenant === undefined ? this.redis.zcard(runningJobsKey(this.prefix)) : Promise.resolve(0),
    ]);
    return { count, running: Math.min(running, count), oldestCreatedAt: first[1] === undefined ? undefined : Number(first[1]) };
  }

  /** Drops the oldest entries of a job listing whose records are no longer in one of `states` (or gone). */
  private async prune(key: string, states: readonly string[]): Promise<void> {
    const oldest = await this.redis.zrange(key, 0, pruneBatch - 1);
    const found = await Promise.all(oldest.map((id) => this.redis.hget(asyncJobKey(this.prefix, id), 'state')));
    const stale = oldest.filter((_, index) => !states.includes(found[index] ?? ''));
    if (stale.length > 0) await this.redis.zrem(key, ...stale);
  }

  /**
   * Claims `idempotencyKey` (per tenant and key) for the job `id` with this body. The claim lasts the retention;
   * a claim whose job record is gone (it was never created, or expired) is replaced.
   */
  async claimIdempotencyKey(
    principal: { tenant: string; keyId: string },
    idempotencyKey: string,
    id: string,
    bodySha256: string,
    ttlMs: number,
  ): Promise<IdempotencyClaim> {
    const keySha = createHash('sha256').update(idempotencyKey).digest('hex');
    const claimKey = jobIdempotencyKey(this.prefix, principal.tenant, principal.keyId, keySha);
    for (let round = 0; round < 2; round += 1) {
      const held = (await this.redis.eval(claimScript, 1, claimKey, `${id} ${bodySha256} ${Date.now()}`, String(ttlMs))) as string;
      if (held === '') return { kind: 'new' };
      const [heldId, heldSha, claimedAt] = held.split(' ');
      // A claim younger than this whose record is not there yet is a creation in progress, answered as that job.
      const claimIsStale = Date.now() - Number(claimedAt ?? 0) > claimCreationMs;
      if (claimIsStale && (await this.redis.exists(asyncJobKey(this.prefix, heldId!))) === 0) {
        // Only the claim seen is removed: another creation may have replaced it in between.
        await this.redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, claimKey, held);
        continue;
      }
      return heldSha === bodySha256 ? { kind: 'same', id: heldId! } : { kind: 'different', id: heldId! };
    }
    return { kind: 'new' };
  }
}
