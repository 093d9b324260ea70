import type { ChainableCommander, Redis } from 'ioredis';
import { errors } from '../errors.js';
import { blobCollectingKey, blobPendingKey, blobReferencesKey, unreferencedBlobsKey } from '../redis-keys.js';

/** How long a pending reference protects a blob whose upload died between publishing it and creating its version. */
export const pendingReferenceTtlMs = 10 * 60_000;

/** How long a garbage collection may hold one blob's claim before an upload waiting on it may go ahead. */
export const collectionClaimTtlMs = 30_000;

/** Redis time in milliseconds, inside a script (one clock for every API process, whatever their hosts' clocks). */
const nowInScript = `
redis.replicate_commands()
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/**
 * KEYS: pending zset, collecting claim. ARGV: upload id, ttl ms. Refused (0) while a collection has claimed the
 * blob: the upload waits until the file is gone, then publishes it anew.
 */
const takePendingScript = `${nowInScript}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/**
 * KEYS: references set, pending zset, unreferenced zset. ARGV: sha256, '1' when the grace period is already over.
 * Starts the blob's grace period when nothing references it (and it has not started already); a blob no caller
 * ever used (a refused upload) gets a grace period that started at 0, so the next collection removes it.
 */
const stampScript = `${nowInScript}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('SCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[3], 'LT', 0, ARGV[1])
else
  redis.call('ZADD', KEYS[3], 'NX', now, ARGV[1])
end
return 1`;

/**
 * KEYS: references set, pending zset, collecting claim, unreferenced zset. ARGV: sha256, grace ms, claim ttl ms,
 * the collection pass's token.
 * The collection's decision for one blob, atomic with uploads taking references: 'referenced' (kept; its grace
 * period is forgotten), 'waiting' (unreferenced for less than the grace period; its start is recorded on first
 * sight) or 'claimed' (the collection may remove it; uploads of the same bytes wait until it is done).
 */
const examineScript = `${nowInScript}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('SCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 'referenced'
end
local since = redis.call('ZSCORE', KEYS[4], ARGV[1])
if not since then
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  return 'waiting'
end
if now - tonumber(since) < tonumber(ARGV[2]) then return 'waiting' end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
return 'claimed'`;

/** KEYS: collecting claim. ARGV: token, ttl ms. Renews the claim only while this pass still holds it. */
const renewClaimScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** KEYS: unreferenced zset. Returns Redis now and the earliest grace-period start (ms), or only now when none. */
const earliestScript = `${nowInScript}
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then return {now, tonumber(first[2])} end
return {now}`;

export type BlobVerdict = 'referenced' | 'waiting' | 'claimed';

/**
 * Who uses each blob, in Redis: the versions referencing it (a set of "name/version"), uploads about to
 * reference it (pending, with an expiry), when it became unreferenced (the start of its grace period), and the
 * garbage collection's claim while it removes the file. The one owner of these keys.
 *
 * The protocol (docs/decisions.md): an upload takes a pending reference before its blob is published and turns
 * it into a version reference atomically with creating the version; a delete only drops its reference and starts
 * the grace period; only the collection removes files, after claiming the blob atomically with those checks.
 */
export class BlobReferences {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  referencesKey(sha256: string): string {
    return blobReferencesKey(this.prefix, sha256);
  }
  private pendingKey(sha256: string): string {
    return blobPendingKey(this.prefix, sha256);
  }
  private claimKey(sha256: string): string {
    return blobCollectingKey(this.prefix, sha256);
  }
  private unreferencedKey(): string {
    return unreferencedBlobsKey(this.prefix);
  }

  /**
   * Takes an upload's pending reference on a blob about to be published. Waits (at most the claim's lifetime)
   * while a collection is removing the same bytes, so the upload publishes its file after the removal.
   * @throws UNAVAILABLE when the claim outlives that wait (a collector stuck mid-removal).
   */
  async takePending(sha256: string, uploadId: string): Promise<void> {
    const deadline = Date.now() + collectionClaimTtlMs + 5000;
    for (;;) {
      const taken = await this.redis.eval(takePendingScript, 2, this.pendingKey(sha256), this.claimKey(sha256), uploadId, pendingReferenceTtlMs);
      if (Number(taken) === 1) return;
      if (Date.now() > deadline) throw errors.storeBusy();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Drops a pending reference of an upload that created no version. Unless something else references the blob, it
   * goes at the next collection, without a grace period: no caller ever used these bytes, and a refused upload must
   * not hold store space (GANTRY_MAX_STORE_BYTES) for the grace period. An upload of the same bytes racing it holds
   * its own pending reference, which keeps the file.
   */
  async releasePending(sha256: string, uploadId: string): Promise<void> {
    await this.redis.zrem(this.pendingKey(sha256), uploadId);
    await this.stampIfUnreferenced(sha256, { neverUsed: true });
  }

  /**
   * Queues, on a transaction that creates a version, the reference that version holds: the version's member in
   * the set, the upload's pending reference dropped, any grace period forgotten.
   */
  addReference(transaction: ChainableCommander, sha256: string, member: string, uploadId?: string): ChainableCommander {
    transaction.sadd(this.referencesKey(sha256), member).zrem(this.unreferencedKey(), sha256);
    if (uploadId !== undefined) transaction.zrem(this.pendingKey(sha256), uploadId);
    return transaction;
  }

  /** Queues, on a transaction that deletes a version, the removal of its reference (then call stampIfUnreferenced). */
  dropReference(transaction: ChainableCommander, sha256: string, member: string): ChainableCommander {
    return transaction.srem(this.referencesKey(sha256), member);
  }

  /**
   * Starts the blob's grace period when nothing references it any more; `neverUsed` (bytes of a refused upload or
   * of a version that never loaded) makes it due at once.
   */
  async stampIfUnreferenced(sha256: string, { neverUsed = false } = {}): Promise<void> {
    await this.redis.eval(stampScript, 3, this.referencesKey(sha256), this.pendingKey(sha256), this.unreferencedKey(), sha256, neverUsed ? '1' : '0');
  }

  async isReferenced(sha256: string): Promise<boolean> {
    return (await this.redis.scard(this.referencesKey(sha256))) > 0;
  }

  /** The collection's atomic decision for one blob (see examineScript); `token` names the pass's claims. */
  async examine(sha256: string, graceMs: number, token: string): Promise<BlobVerdict> {
    const keys = [this.referencesKey(sha256), this.pendingKey(sha256), this.claimKey(sha256), this.unreferencedKey()];
    return (await this.redis.eval(examineScript, keys.length, ...keys, sha256, graceMs, collectionClaimTtlMs, token)) as BlobVerdict;
  }

  /**
   * Renews a claim just before its file is removed; false when the claim expired meanwhile (an upload may have
   * taken a reference since), so the file must stay.
   */
  async renewClaim(sha256: string, token: string): Promise<boolean> {
    return Number(await this.redis.eval(renewClaimScript, 1, this.claimKey(sha256), token, collectionClaimTtlMs)) === 1;
  }

  /** Ends a claim: `removed` forgets the blob's grace period too (its file is gone). */
  async endClaim(sha256: string, removed: boolean): Promise<void> {
    const transaction = this.redis.multi().del(this.claimKey(sha256));
    if (removed) transaction.zrem(this.unreferencedKey(), sha256);
    await transaction.exec();
  }

  /** Every blob whose grace period has started (for the collection's bookkeeping). */
  async unreferencedBlobs(): Promise<string[]> {
    return this.redis.zrange(this.unreferencedKey(), 0, -1);
  }

  /** Forgets grace periods of blobs that are gone from the store or named by a record again. */
  async forgetGracePeriods(sha256s: string[]): Promise<void> {
    if (sha256s.length > 0) await this.redis.zrem(this.unreferencedKey(), ...sha256s);
  }

  /** Milliseconds until the earliest unreferenced blob's grace period ends (0 when due); undefined when none waits. */
  async msUntilNextDue(graceMs: number): Promise<number | undefined> {
    const [now, earliest] = (await this.redis.eval(earliestScript, 1, this.unreferencedKey())) as number[];
    if (earliest === undefined) return undefined;
    return Math.max(0, earliest + graceMs - now!);
  }
}
