import type { Redis } from 'ioredis';
import { batchKey, batchPartKey, tenantBatchesKey } from '../redis-keys.js';
import { batchRecordFromFields, batchView, type BatchRecord, type BatchState } from './batch-record.js';
import { readDeliveries } from '../webhooks/webhook-deliveries.js';
import type { DeliveryAttempt } from '../webhooks/webhook-delivery.js';

/**
 * The parts of a batch beside its record (batchPartKey), all under the batch's hash tag `{<id>}`:
 * - `lines`: hash, line number → JSON `{i: line id, c?: chunk, o?: 1 when the request carried its own id, r?: a
 *   rendering other than the batch's}` (no `c`: the line failed when the body was read);
 * - `results`: hash, line number → the line's answer in stored form (stored-answer.ts), written once;
 * - `started`, `cancelled`: sets of chunk numbers a worker started, or the cancel took before one did;
 * - `sizes`: hash, chunk number → its lines (a chunk closes at GANTRY_BATCH_CHUNK_LINES lines or at a byte bound);
 * - `input:<chunk>`: a chunk's requests (batch-chunk-input.ts) between the end of the upload and its queueing;
 * - `enqueue-lease`: held by the one API process queueing the chunks.
 */
const part = {
  lines: 'lines',
  results: 'results',
  started: 'started',
  cancelled: 'cancelled',
  sizes: 'sizes',
  lease: 'enqueue-lease',
  input: (chunk: number) => `input:${chunk}`,
} as const;

/** The keys every script that may finish a batch gets, in this order (KEYS[1..6]). */
function scriptKeys(prefix: string, id: string): string[] {
  return [batchKey(prefix, id), ...[part.lines, part.results, part.started, part.cancelled, part.sizes].map((name) => batchPartKey(prefix, id, name))];
}

/**
 * Finishes the batch when every line has its result (answered = total): its final state (`cancelled` stays),
 * `finishedAt`, and from now on every key of the batch lasts for the retention. Answers 1 when it finished it.
 */
const finishIfDone = `
local function finishIfDone(now)
  local record = redis.call('HMGET', KEYS[1], 'state', 'total', 'answered', 'finishedAt', 'expiredLines', 'retentionMs')
  if not record[1] or record[1] == 'receiving' or not record[2] or record[4] then return 0 end
  if tonumber(record[3] or '0') < tonumber(record[2]) then return 0 end
  local state = record[1]
  if state ~= 'cancelled' then
    if tonumber(record[5] or '0') > 0 then state = 'expired' else state = 'succeeded' end
  end
  redis.call('HSET', KEYS[1], 'state', state, 'finishedAt', now)
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], record[6]) end
  return 1
end
`;

/**
 * The upload is complete: `receiving` → `queued` with the counts, every key kept until the deadline plus the
 * retention. A batch whose lines all failed when read finishes here. Answers -1 when the record is gone or not
 * receiving (it expired: the upload took longer than its receiving time), else finishIfDone's answer.
 * KEYS[1..6] scriptKeys, KEYS[7..] the chunks' inputs; ARGV: now, total, chunks, chunkLines, queuedLines,
 * invalidLines, ttl ms, version, target JSON, rendering JSON ('' for none).
 */
const openScript = `${finishIfDone}
if redis.call('HGET', KEYS[1], 'state') ~= 'receiving' then return -1 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'total', ARGV[2], 'chunks', ARGV[3], 'chunkLines', ARGV[4], 'queuedLines', ARGV[5],
  'invalidLines', ARGV[6], 'failed', ARGV[6], 'answered', ARGV[6], 'version', ARGV[8], 'target', ARGV[9])
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'rendering', ARGV[10]) end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
return finishIfDone(ARGV[1])`;

/**
 * A worker starts a chunk: answers the chunk's lines that have no result yet, unless the batch is gone or the
 * cancel took the chunk first (then none). The first start of a chunk counts its lines as started (running);
 * every start counts an attempt. KEYS[1..6] scriptKeys; ARGV: chunk, now, the chunk's line numbers.
 */
const beginScript = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'receiving' then return {} end
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then return {} end
if redis.call('SADD', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'startedLines', #ARGV - 2) end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2])
if state == 'queued' then redis.call('HSET', KEYS[1], 'state', 'running') end
local wanted = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then wanted[#wanted + 1] = ARGV[i] end
end
return wanted`;

/**
 * A worker's answers: each line's result is written once (a re-run after a crash overwrites nothing), counted
 * succeeded (s), failed (f) or expired (e, also failed). Answers 1 when this call finished the batch (exactly
 * one call does), else 0. KEYS[1..6] scriptKeys; ARGV: now, then per line: line number, kind, stored answer.
 */
const writeScript = `${finishIfDone}
if not redis.call('HGET', KEYS[1], 'total') then return 0 end
for i = 2, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 2]) == 1 then
    local kind = ARGV[i + 1]
    if kind == 's' then
      redis.call('HINCRBY', KEYS[1], 'succeeded', 1)
    else
      redis.call('HINCRBY', KEYS[1], 'failed', 1)
      if kind == 'e' then redis.call('HINCRBY', KEYS[1], 'expiredLines', 1) end
    end
    redis.call('HINCRBY', KEYS[1], 'answered', 1)
    redis.call('HINCRBY', KEYS[1], 'ranLines', 1)
  end
end
return finishIfDone(ARGV[1])`;

/**
 * Cancels a batch: every chunk no worker started is taken (its lines end `cancelled` and never run; a worker
 * that starts it later finds it taken), chunks already started finish. Answers {state before, finished now}:
 * state '' when gone; a receiving or finished batch is left as it is.
 * KEYS[1..6] scriptKeys; ARGV: now.
 */
const cancelScript = `${finishIfDone}
local record = redis.call('HMGET', KEYS[1], 'state', 'finishedAt', 'chunks')
if not record[1] then return {'', 0} end
if record[1] == 'receiving' or record[2] then return {record[1], 0} end
local taken = 0
for chunk = 0, tonumber(record[3]) - 1 do
  local name = tostring(chunk)
  if redis.call('SISMEMBER', KEYS[4], name) == 0 and redis.call('SADD', KEYS[5], name) == 1 then
    taken = taken + tonumber(redis.call('HGET', KEYS[6], name) or '0')
  end
end
redis.call('HINCRBY', KEYS[1], 'cancelledLines', taken)
redis.call('HINCRBY', KEYS[1], 'answered', taken)
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'cancelledAt', ARGV[1])
return {record[1], finishIfDone(ARGV[1])}`;

/**
 * The first line at or after ARGV[1] that has no final result (neither written nor cancelled), looking at most
 * ARGV[2] lines: {the end of the finished prefix, 1}, or {where to look on, 0}. The prefix only grows (results are written
 * once and kept), so where it ended last time (`prefixHint`) is where the scan starts: reading a running batch's
 * results again and again does not scan its beginning each time. KEYS[1..6] scriptKeys.
 */
const prefixScript = `
local record = redis.call('HMGET', KEYS[1], 'total', 'prefixHint')
local total = tonumber(record[1] or '0')
local line = math.max(tonumber(ARGV[1]), tonumber(record[2] or '0'))
local stop = math.min(total, line + tonumber(ARGV[2]))
local found = nil
while line < stop and not found do
  local name = tostring(line)
  if redis.call('HEXISTS', KEYS[3], name) == 0 then
    local meta = redis.call('HGET', KEYS[2], name)
    if not meta then
      found = line
    else
      local chunk = cjson.decode(meta).c
      if chunk == nil or redis.call('SISMEMBER', KEYS[5], tostring(chunk)) == 0 then found = line end
    end
  end
  if not found then line = line + 1 end
end
-- Only on a record that is there: a hint alone would be a hash without a TTL, never removed.
if record[1] and line > tonumber(record[2] or '0') then redis.call('HSET', KEYS[1], 'prefixHint', line) end
if found or line >= total then return {line, 1} end
return {line, 0}`;

/**
 * A chunk is in the queue: the count of queued chunks moves on (on a record that is there only: a field written
 * to an expired record would make a hash without a TTL) and the chunk's input goes. KEYS: record, input; ARGV: count.
 */
const markEnqueuedScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'enqueued', ARGV[1]) end
redis.call('DEL', KEYS[2])
return 1`;

/** How long an upload may take: its keys expire this long after the batch was created unless it finished. */
export const receivingTimeMs = 3600_000;

/** How long one API process holds the right to queue a batch's chunks without renewing it. */
const enqueueLeaseMs = 30_000;

/** Lines the finished-prefix script looks at per call (a long scan is split so Redis is not held long). */
const prefixScanLines = 10_000;

/** What a new batch's record starts with: the fields known before its body is read. */
export type NewBatch = Pick<
  BatchRecord,
  'id' | 'tenant' | 'keyId' | 'model' | 'modelShown' | 'version' | 'createdAt' | 'retentionMs' | 'deadline' | 'priority' | 'callbackUrl' | 'callbackSecret'
>;

/** What the reading of a body hands the store now and then while receiving (all of it written in one go). */
export interface ReceivedPart {
  /** line number → the `lines` JSON */
  lines: Array<[number, string]>;
  /** line number → stored answer, for lines that failed when read */
  results: Array<[number, Buffer]>;
  /** A full chunk's requests, encoded (batch-chunk-input.ts), and how many lines it holds. */
  input?: { chunk: number; bytes: Buffer; lines: number };
}

/** What the end of an upload writes. */
export interface BatchOpening {
  total: number;
  chunks: number;
  chunkLines: number;
  queuedLines: number;
  invalidLines: number;
  version: string;
  target?: unknown;
  rendering?: unknown;
}

/** One page of a tenant's batches, newest first. */
export interface BatchPage {
  batches: BatchRecord[];
  nextCursor?: string;
}

/** The answers of a range of lines: each line's `lines` JSON and stored result (null: none yet). */
export interface LineRange {
  lines: Array<string | null>;
  results: Array<Buffer | null>;
}

/**
 * Batch files' records in Redis, the one owner of every change to them: created and filled by the API while it
 * reads a body, opened when the body was read and checked, started and answered by workers (batch-results.ts),
 * cancelled by the API. Each change that must not race another is one Lua script on the batch's keys (one hash
 * tag). Cross-slot keys (the tenant's list) are written beside the scripts, never inside them.
 */
export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private keys(id: string): string[] {
    return scriptKeys(this.prefix, id);
  }

  /** Writes a new `receiving` record (expiring after receivingTimeMs) and lists it for its tenant. */
  async create(batch: NewBatch): Promise<void> {
    const key = batchKey(this.prefix, batch.id);
    const fields: Record<string, string> = {
      tenant: batch.tenant,
      keyId: batch.keyId,
      model: batch.model,
      modelShown: batch.modelShown,
      version: batch.version,
      state: 'receiving',
      createdAt: String(batch.createdAt),
      retentionMs: String(batch.retentionMs),
      deadline: String(batch.deadline),
      priority: String(batch.priority),
    };
    if (batch.callbackUrl !== undefined) fields.callbackUrl = batch.callbackUrl;
    if (batch.callbackSecret !== undefined) fields.callbackSecret = batch.callbackSecret;
    await this.redis
      .multi()
      .hset(key, fields)
      .pexpireat(key, batch.createdAt + receivingTimeMs)
      .exec();
    await this.redis.zadd(tenantBatchesKey(this.prefix, batch.tenant), batch.createdAt, batch.id);
  }

  /** Writes lines read so far (their metadata, the results of bad ones, a full chunk's input); all expire with the receiving record. */
  async writeReceived(id: string, createdAt: number, received: ReceivedPart): Promise<void> {
    const expireAt = createdAt + receivingTimeMs;
    const linesKey = batchPartKey(this.prefix, id, part.lines);
    const resultsKey = batchPartKey(this.prefix, id, part.results);
    const pipeline = this.redis.multi();
    if (received.lines.length > 0) {
      pipeline.hset(linesKey, ...received.lines.flatMap(([line, json]) => [String(line), json]));
      pipeline.pexpireat(linesKey, expireAt);
    }
    if (received.results.length > 0) {
      pipeline.hset(resultsKey, ...received.results.flatMap(([line, stored]) => [String(line), stored]));
      pipeline.pexpireat(resultsKey, expireAt);
    }
    if (received.input !== undefined) {
      const sizesKey = batchPartKey(this.prefix, id, part.sizes);
      pipeline.set(batchPartKey(this.prefix, id, part.input(received.input.chunk)), received.input.bytes, 'PXAT', expireAt);
      pipeline.hset(sizesKey, String(received.input.chunk), String(received.input.lines));
      pipeline.pexpireat(sizesKey, expireAt);
    }
    await pipeline.exec();
  }

  /**
   * Opens a fully read batch (see openScript). Answers 'gone' when it is no longer receiving (expired), 'finished'
   * when no line needs running (all failed when read), else 'queued'.
   */
  async open(id: string, opening: BatchOpening, ttlMs: number): Promise<'gone' | 'queued' | 'finished'> {
    const inputs = Array.from({ length: opening.chunks }, (_, chunk) => batchPartKey(this.prefix, id, part.input(chunk)));
    const keys = [...this.keys(id), ...inputs];
    const answer = (await this.redis.eval(
      openScript,
      keys.length,
      ...keys,
      String(Date.now()),
      String(opening.total),
      String(opening.chunks),
      String(opening.chunkLines),
      String(opening.queuedLines),
      String(opening.invalidLines),
      String(Math.max(1, Math.round(ttlMs))),
      opening.version,
      JSON.stringify(opening.target ?? null),
      opening.rendering === undefined ? '' : JSON.stringify(opening.rendering),
    )) as number;
    return answer === -1 ? 'gone' : answer === 1 ? 'finished' : 'queued';
  }

  /** A worker starts `chunk` (its lines `lines`): the lines that still want running (see beginScript). */
  async begin(id: string, chunk: number, lines: readonly string[]): Promise<string[]> {
    const keys = this.keys(id);
    return (await this.redis.eval(beginScript, keys.length, ...keys, String(chunk), String(Date.now()), ...lines)) as string[];
  }

  /** Writes a worker's answers (see writeScript); true when this call finished the batch. */
  async write(id: string, answers: ReadonlyArray<{ line: string; kind: 's' | 'f' | 'e'; stored: Buffer }>): Promise<boolean> {
    if (answers.length === 0) return false;
    const keys = this.keys(id);
    const values = answers.flatMap((answer) => [answer.line, answer.kind, answer.stored]);
    return ((await this.redis.eval(writeScript, keys.length, ...keys, String(Date.now()), ...values)) as number) === 1;
  }

  /** Cancels a batch (see cancelScript): its state before ('' when gone) and whether the cancel finished it. */
  async cancel(id: string): Promise<{ before: BatchState | ''; finished: boolean }> {
    const keys = this.keys(id);
    const [before, finished] = (await this.redis.eval(cancelScript, keys.length, ...keys, String(Date.now()))) as [string, number];
    return { before: before as BatchState | '', finished: finished === 1 };
  }

  /** The record, or undefined when it is gone (never created, expired). */
  async read(id: string): Promise<BatchRecord | undefined> {
    return batchRecordFromFields(id, await this.redis.hgetall(batchKey(this.prefix, id)));
  }

  /** The batch's webhook delivery attempts, oldest first. */
  deliveries(id: string): Promise<DeliveryAttempt[]> {
    return readDeliveries(this.redis, this.prefix, { kind: 'batch', id });
  }

  /** How many lines from the first on have their final result (all of them once the batch finished). */
  async finishedPrefix(record: BatchRecord): Promise<number> {
    const total = record.total ?? 0;
    if (record.finishedAt !== undefined) return total;
    const keys = this.keys(record.id);
    let line = 0;
    for (;;) {
      const [next, done] = (await this.redis.eval(prefixScript, keys.length, ...keys, String(line), String(prefixScanLines))) as [number, number];
      if (done === 1) return next;
      line = next;
    }
  }

  /** The metadata and results of lines [from, to). */
  async readLines(id: string, from: number, to: number): Promise<LineRange> {
    const fields = Array.from({ length: to - from }, (_, index) => String(from + index));
    if (fields.length === 0) return { lines: [], results: [] };
    const [lines, results] = await Promise.all([
      this.redis.hmget(batchPartKey(this.prefix, id, part.lines), ...fields),
      this.redis.hmgetBuffer(batchPartKey(this.prefix, id, part.results), ...fields),
    ]);
    return { lines, results };
  }

  /** A chunk's stored requests (null once queued and removed, or expired). */
  readInput(id: string, chunk: number): Promise<Buffer | null> {
    return this.redis.getBuffer(batchPartKey(this.prefix, id, part.input(chunk)));
  }

  /** Records that `chunk` is in the queue (chunks are queued in order: `enqueued` is the next to queue) and drops its input. */
  async markEnqueued(id: string, chunk: number): Promise<void> {
    await this.redis.eval(markEnqueuedScript, 2, batchKey(this.prefix, id), batchPartKey(this.prefix, id, part.input(chunk)), String(chunk + 1));
  }

  /** Takes (or renews, with the same `holder`) the right to queue a batch's chunks; false when another holds it. */
  async takeEnqueueLease(id: string, holder: string): Promise<boolean> {
    const key = batchPartKey(this.prefix, id, part.lease);
    const taken = await this.redis.set(key, holder, 'PX', enqueueLeaseMs, 'NX');
    if (taken === 'OK') return true;
    if ((await this.redis.get(key)) !== holder) return false;
    await this.redis.pexpire(key, enqueueLeaseMs);
    return true;
  }

  async releaseEnqueueLease(id: string): Promise<void> {
    await this.redis.del(batchPartKey(this.prefix, id, part.lease));
  }

  /** Removes what an upload that failed wrote (its record first, so nothing reads a half batch), and its listing. */
  async discard(id: string, tenant: string, chunks: number): Promise<void> {
    const inputs = Array.from({ length: chunks }, (_, chunk) => batchPartKey(this.prefix, id, part.input(chunk)));
    await this.redis.del(...this.keys(id), ...inputs);
    await this.redis.zrem(tenantBatchesKey(this.prefix, tenant), id);
  }

  /**
   * The tenant's batches that `keep` keeps, newest first, `limit` at most, after `cursor` (the previous page's
   * nextCursor). Batches whose records are gone (expired) are dropped from the tenant's list as they are met.
   */
  async list(
    tenant: string,
    limit: number,
    cursor?: { createdAt: number; id: string },
    keep: (record: BatchRecord) => boolean = () => true,
  ): Promise<BatchPage> {
    const listKey = tenantBatchesKey(this.prefix, tenant);
    const batches: BatchRecord[] = [];
    let max = cursor === undefined ? '+inf' : String(cursor.createdAt);
    let after = cursor;
    for (;;) {
      const entries = await this.redis.zrevrangebyscore(listKey, max, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 32);
      const members: Array<{ id: string; createdAt: number }> = [];
      for (let index = 0; index < entries.length; index += 2) members.push({ id: entries[index]!, createdAt: Number(entries[index + 1]) });
      // Members with the cursor's score come in reverse lexical order: those up to the cursor's id were shown.
      const fresh = members.filter((member) => after === undefined || member.createdAt < after.createdAt || member.id < after.id);
      const records = await this.readMany(fresh.map((member) => member.id));
      const gone = fresh.filter((_, index) => records[index] === undefined).map((member) => member.id);
      if (gone.length > 0) await this.redis.zrem(listKey, ...gone);
      for (const record of records) {
        if (record === undefined || record.tenant !== tenant || !keep(record)) continue;
        batches.push(record);
        if (batches.length === limit) {
          const last = record;
          return { batches, nextCursor: `${last.createdAt}.${last.id}` };
        }
      }
      if (members.length < limit + 32) return { batches };
      const last = members[members.length - 1]!;
      max = String(last.createdAt);
      after = last;
    }
  }

  /** How many of the tenant's batches are not finished yet (receiving ones included). */
  async countUnfinished(tenant: string): Promise<number> {
    return (await this.unfinished(tenant)).count;
  }

  /**
   * The tenant's unfinished batches (receiving ones included) and when the oldest was created: read from the
   * tenant's list and the records (a tenant holds its unfinished batches, at most GANTRY_MAX_BATCHES_PER_TENANT,
   * and the finished ones it keeps for their retention). Entries whose records are gone are dropped on the way.
   */
  async unfinished(tenant: string): Promise<{ count: number; running: number; oldestCreatedAt: number | undefined }> {
    const listKey = tenantBatchesKey(this.prefix, tenant);
    const entries = await this.redis.zrange(listKey, 0, -1, 'WITHSCORES');
    let count = 0;
    let running = 0;
    let oldestCreatedAt: number | undefined;
    for (let start = 0; start < entries.length; start += 1000) {
      const slice = entries.slice(start, start + 1000);
      const ids = slice.filter((_, index) => index % 2 === 0);
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hmget(batchKey(this.prefix, id), 'state', 'finishedAt');
      const answers = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      answers.forEach(([error, value], index) => {
        if (error !== null) return;
        const [state, finishedAt] = value as [string | null, string | null];
        if (state === null) gone.push(ids[index]!);
        else if (finishedAt === null) {
          count += 1;
          if (state === 'running') running += 1;
          const createdAt = Number(slice[index * 2 + 1]);
          oldestCreatedAt = oldestCreatedAt === undefined ? createdAt : Math.min(oldestCreatedAt, createdAt);
        }
      });
      if (gone.length > 0) await this.redis.zrem(listKey, ...gone);
    }
    return { count, running, oldestCreatedAt };
  }

  /** {@link unfinished} over several tenants together (the deployment's, for the metrics: pass every tenant). */
  async unfinishedAcross(tenants: Iterable<string>): Promise<{ count: number; running: number; oldestCreatedAt: number | undefined }> {
    let count = 0;
    let running = 0;
    let oldestCreatedAt: number | undefined;
    for (const tenant of tenants) {
      const found = await this.unfinished(tenant);
      count += found.count;
      running += found.running;
      if (found.oldestCreatedAt !== undefined) oldestCreatedAt = Math.min(oldestCreatedAt ?? Infinity, found.oldestCreatedAt);
    }
    return { count, running, oldestCreatedAt };
  }

  private async readMany(ids: readonly string[]): Promise<Array<BatchRecord | undefined>> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(batchKey(this.prefix, id));
    const answers = (await pipeline.exec()) ?? [];
    return answers.map(([error, fields], index) => (error === null ? batchRecordFromFields(ids[index]!, fields as Record<string, string>) : undefined));
  }
}

/** What the webhook dispatcher delivers for a finished batch (webhooks/webhook-source.ts WebhookCall). */
export interface BatchWebhook {
  url: string;
  secret?: string;
  body: { type: 'batch.finished'; batch: ReturnType<typeof batchView> };
  retentionMs: number;
}

/**
 * The webhook of a finished batch: its callback, and as body `{type: 'batch.finished', batch: <GET
 * /v1/batches/{id} body>}`; undefined when the batch is gone, has no callback or is not finished.
 * `retentionMs`: how long the batch's record still lives.
 */
export async function describeBatchWebhook(redis: Redis, prefix: string, id: string): Promise<BatchWebhook | undefined> {
  const store = new BatchStore(redis, prefix);
  const record = await store.read(id);
  if (record === undefined || record.callbackUrl === undefined || record.finishedAt === undefined) return undefined;
  const [deliveries, ttl] = await Promise.all([store.deliveries(id), redis.pttl(batchKey(prefix, id))]);
  return {
    url: record.callbackUrl,
    ...(record.callbackSecret === undefined ? {} : { secret: record.callbackSecret }),
    body: { type: 'batch.finished', batch: batchView(record, deliveries) },
    retentionMs: ttl > 0 ? ttl : record.retentionMs,
  };
}
