import { createHash, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { errors } from '../errors.js';
import { subscribeWhenReady } from '../queue/redis-connection.js';
import { ensureAdminKey, readAdminKey } from './admin-key.js';
import { keyIdOf } from './api-key-format.js';
import { parseAuthEvent, type AuthEvent } from './auth-events.js';
import { authEventsChannel } from '../redis-keys.js';
import type { KeyStore, StoredApiKey } from './key-store.js';
import { defaultTenant, type Principal, type Scope } from './principal.js';
import type { TenantRecord, TenantStore } from './tenant-store.js';

export interface AuthenticatorOptions {
  /** How long a cached key, tenant or admin hash is trusted without asking Redis (GANTRY_AUTH_CACHE_TTL_MS). */
  ttlMs: number;
  /** Cached keys, and separately cached unknown key ids (GANTRY_AUTH_CACHE_ENTRIES). */
  maxEntries: number;
  /** GANTRY_ADMIN_KEY, written back if Redis loses the admin key. */
  configuredAdminKey?: string;
  /** Told the key generated when Redis lost the admin key and none is configured (the API role logs it once). */
  onAdminKeyGenerated?: (key: string) => void;
}

/** Why a key was refused: logged (at debug, with the key's public id only), never told to the caller. */
export type RefusalReason = 'missing' | 'malformed' | 'unknown' | 'wrong secret' | 'expired' | 'revoked' | 'tenant gone';

interface CachedKey {
  stored: StoredApiKey;
  /** The stored hash as bytes, for the constant-time compare. */
  hash: Buffer;
  /** The key as presented once and verified against `hash`; it goes with the entry (revoked, patched, expired). */
  verified?: string;
  principal: Principal;
  expiresAtMs: number;
}

/** Longest credential looked at; anything longer is refused before it is hashed. */
const maxPresentedLength = 1024;

/** Constant-time string equality (the length is no secret: key formats are public). */
function sameSecret(presented: string, verified: string): boolean {
  if (presented.length !== verified.length) return false;
  let difference = 0;
  for (let index = 0; index < presented.length; index++) difference |= presented.charCodeAt(index) ^ verified.charCodeAt(index);
  return difference === 0;
}

/** sha256 of a presented key, as bytes (hashKey's hex, without the hex). */
function digestOf(presented: string): Buffer {
  return createHash('sha256').update(presented, 'utf8').digest();
}

/**
 * Turns a presented key into a principal. Every answer for a cached valid key comes from memory (a sha256 and
 * a constant-time compare, no Redis call); malformed keys are refused without Redis, unknown key ids are
 * remembered as unknown (bounded) so a flood of the same bad key costs no round trip each. Caches forget an
 * entry when any API process publishes a change to it (revoke, patch, delete: auth-events.ts), and entries
 * expire after `ttlMs` in case a message was lost; after a reconnect of the subscriber everything is forgotten.
 */
export class Authenticator {
  private readonly keys: LRUCache<string, CachedKey>;
  private readonly unknownKeyIds: LRUCache<string, true>;
  private readonly tenants: LRUCache<string, TenantRecord | 'missing'>;
  private readonly loading = new Map<string, Promise<CachedKey | undefined>>();
  /** Bumped by every invalidation: a lookup that started before one does not store what it read. */
  private epoch = 0;
  private adminHash: Buffer | undefined;
  /** The admin key as last presented and verified against adminHash (forgotten whenever the hash changes). */
  private adminVerified: string | undefined;
  private adminHashReadAt = 0;
  private adminRefresh: NodeJS.Timeout | undefined;
  private readonly channel: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly keyStore: KeyStore,
    private readonly tenantStore: TenantStore,
    private readonly options: AuthenticatorOptions,
  ) {
    const ttl = Math.max(1, options.ttlMs);
    this.keys = new LRUCache({ max: options.maxEntries, ttl });
    this.unknownKeyIds = new LRUCache({ max: options.maxEntries, ttl });
    this.tenants = new LRUCache({ max: options.maxEntries, ttl });
    this.channel = authEventsChannel(prefix);
  }

  /** Subscribes to invalidations on an already-created subscriber connection and reads the admin key. */
  async start(subscriber: Redis): Promise<void> {
    subscriber.on('messageBuffer', (from: Buffer, message: Buffer) => {
      if (from.length !== this.channel.length || from.toString() !== this.channel) return;
      const event = parseAuthEvent(message.toString('utf8'));
      if (event === undefined) this.forgetAll();
      else this.forget(event);
    });
    // Messages published while the subscriber was disconnected are lost: after a reconnect, trust nothing cached.
    subscriber.on('ready', () => this.forgetAll());
    await subscribeWhenReady(subscriber, this.channel);
    await this.refreshAdminHash().catch(() => undefined);
    // The admin hash is read on a timer, not per request: a lost rotation message holds for at most one period.
    if (this.options.ttlMs > 0) {
      this.adminRefresh = setInterval(() => void this.refreshAdminHash().catch(() => undefined), this.options.ttlMs);
      this.adminRefresh.unref();
    }
  }

  /** Forgets what `event` changed (from the channel, or at once from this process's own stores). */
  forget(event: AuthEvent): void {
    if (event.type === 'key') this.forgetKey(event.keyId);
    else if (event.type === 'tenant') this.forgetTenant(event.tenant);
    else {
      // Until the new hash is read, requests wait for it rather than pass with the old one.
      this.adminHash = undefined;
      this.adminVerified = undefined;
      void this.refreshAdminHash().catch(() => undefined);
    }
  }

  stop(): void {
    if (this.adminRefresh !== undefined) clearInterval(this.adminRefresh);
  }

  /**
   * The principal of a presented key (from Authorization: Bearer or x-api-key).
   * @throws 401 UNAUTHENTICATED (one message whatever the reason; `onRefused` hears the reason);
   *   403 PERMISSION_DENIED for a valid key of a disabled tenant.
   */
  authenticate(presented: string | undefined, onRefused?: (reason: RefusalReason, keyId?: string) => void): Principal | Promise<Principal> {
    // Synchronous whenever everything needed is cached (the hot path: no promise, no Redis); a promise otherwise.
    if (presented === undefined || presented.length === 0) throw this.refusal('missing', undefined, onRefused);
    if (presented.length > maxPresentedLength) throw this.refusal('malformed', undefined, onRefused);
    // A key this process verified (by its hash) while it is cached is recognised by comparing it with itself:
    // sha256 costs ~2 µs a request here, more than everything else authentication does.
    if (this.adminVerified !== undefined && sameSecret(presented, this.adminVerified)) return adminPrincipal;
    const keyId = keyIdOf(presented);
    const cached = keyId === undefined ? undefined : this.keys.get(keyId);
    if (cached?.verified !== undefined && sameSecret(presented, cached.verified)) return this.checkKeyState(cached, onRefused);
    const presentedHash = digestOf(presented);
    if (this.adminHash === undefined || (this.options.ttlMs === 0 && Date.now() > this.adminHashReadAt)) {
      // Normally kept fresh by the timer and by events; read here only when it never could be (Redis was away).
      return this.refreshAdminHash().then(() => this.afterAdminCheck(presented, presentedHash, onRefused));
    }
    return this.afterAdminCheck(presented, presentedHash, onRefused);
  }

  private afterAdminCheck(
    presented: string,
    presentedHash: Buffer,
    onRefused: ((reason: RefusalReason, keyId?: string) => void) | undefined,
  ): Principal | Promise<Principal> {
    if (this.adminHash !== undefined && timingSafeEqual(presentedHash, this.adminHash)) {
      if (this.options.ttlMs > 0) this.adminVerified = presented;
      return adminPrincipal;
    }
    const keyId = keyIdOf(presented);
    if (keyId === undefined) throw this.refusal('malformed', undefined, onRefused);
    const cached = this.keys.get(keyId);
    if (cached !== undefined) return this.checkKey(cached, presented, presentedHash, onRefused);
    if (this.unknownKeyIds.has(keyId)) throw this.refusal('unknown', keyId, onRefused);
    return this.lookUp(keyId).then((loaded) => {
      if (loaded === undefined) throw this.refusal('unknown', keyId, onRefused);
      return this.checkKey(loaded, presented, presentedHash, onRefused);
    });
  }

  private checkKey(
    cached: CachedKey,
    presented: string,
    presentedHash: Buffer,
    onRefused: ((reason: RefusalReason, keyId?: string) => void) | undefined,
  ): Principal | Promise<Principal> {
    if (!timingSafeEqual(presentedHash, cached.hash)) throw this.refusal('wrong secret', cached.stored.id, onRefused);
    cached.verified = presented;
    return this.checkKeyState(cached, onRefused);
  }

  /** The checks after the secret matched: revoked, expired, the tenant gone or disabled. */
  private checkKeyState(cached: CachedKey, onRefused: ((reason: RefusalReason, keyId?: string) => void) | undefined): Principal | Promise<Principal> {
    const keyId = cached.stored.id;
    if (cached.stored.revokedAt !== undefined) throw this.refusal('revoked', keyId, onRefused);
    if (Date.now() >= cached.expiresAtMs) throw this.refusal('expired', keyId, onRefused);
    const check = (tenant: TenantRecord | undefined) => {
      if (tenant === undefined) throw this.refusal('tenant gone', keyId, onRefused);
      if (tenant.disabled) throw errors.tenantDisabled(tenant.id);
      return cached.principal;
    };
    const tenant = this.tenants.get(cached.stored.tenant);
    if (tenant !== undefined) return check(tenant === 'missing' ? undefined : tenant);
    return this.tenant(cached.stored.tenant).then(check);
  }

  private refusal(reason: RefusalReason, keyId: string | undefined, onRefused: ((reason: RefusalReason, keyId?: string) => void) | undefined): Error {
    onRefused?.(reason, keyId);
    return errors.unauthenticated();
  }

  /** Cached entries (tests check the bounds). */
  get cachedCounts(): { keys: number; unknownKeyIds: number; tenants: number } {
    return { keys: this.keys.size, unknownKeyIds: this.unknownKeyIds.size, tenants: this.tenants.size };
  }

  private async refreshAdminHash(): Promise<void> {
    let record = await readAdminKey(this.redis, this.prefix);
    if (record === undefined) {
      // Redis lost its data (or someone deleted the record): GANTRY_ADMIN_KEY comes back as it was; without it a
      // new key is generated and logged, as on a first start, so the deployment is never left without an admin.
      const outcome = await ensureAdminKey(this.redis, this.prefix, this.options.configuredAdminKey);
      if (outcome.kind === 'generated') this.options.onAdminKeyGenerated?.(outcome.key);
      record = await readAdminKey(this.redis, this.prefix);
    }
    const hash = record === undefined ? undefined : Buffer.from(record.hash, 'hex');
    if (hash === undefined || this.adminHash === undefined || !hash.equals(this.adminHash)) this.adminVerified = undefined;
    this.adminHash = hash;
    this.adminHashReadAt = Date.now();
  }

  private async lookUp(keyId: string): Promise<CachedKey | undefined> {
    const hit = this.keys.get(keyId);
    if (hit !== undefined) return hit;
    if (this.unknownKeyIds.has(keyId)) return undefined;
    let pending = this.loading.get(keyId);
    if (pending === undefined) {
      pending = this.load(keyId).finally(() => this.loading.delete(keyId));
      this.loading.set(keyId, pending);
    }
    return pending;
  }

  private async load(keyId: string): Promise<CachedKey | undefined> {
    const epoch = this.epoch;
    const stored = await this.keyStore.get(keyId);
    const entry = stored === undefined ? undefined : toCachedKey(stored);
    if (this.options.ttlMs > 0 && epoch === this.epoch) {
      if (entry === undefined) this.unknownKeyIds.set(keyId, true);
      else this.keys.set(keyId, entry);
    }
    return entry;
  }

  private async tenant(id: string): Promise<TenantRecord | undefined> {
    const hit = this.tenants.get(id);
    if (hit !== undefined) return hit === 'missing' ? undefined : hit;
    const epoch = this.epoch;
    const record = await this.tenantStore.get(id);
    if (this.options.ttlMs > 0 && epoch === this.epoch) this.tenants.set(id, record ?? 'missing');
    return record;
  }

  private forgetKey(keyId: string): void {
    this.epoch++;
    this.keys.delete(keyId);
    this.unknownKeyIds.delete(keyId);
  }

  private forgetTenant(tenant: string): void {
    this.epoch++;
    this.tenants.delete(tenant);
  }

  private forgetAll(): void {
    this.epoch++;
    this.keys.clear();
    this.unknownKeyIds.clear();
    this.tenants.clear();
  }
}

/** The admin key's principal: the default tenant, every scope everywhere. */
export const adminPrincipal: Principal = Object.freeze({ tenant: defaultTenant, keyId: 'admin', scopes: new Set<Scope>(['admin']) });

function toCachedKey(stored: StoredApiKey): CachedKey {
  const principal: Principal = { tenant: stored.tenant, keyId: stored.id, scopes: new Set(stored.scopes) };
  if (stored.models !== undefined) principal.models = new Set(stored.models);
  const expiresAtMs = stored.expiresAt === undefined ? Infinity : Date.parse(stored.expiresAt);
  // A malformed stored hash (not 32 bytes) matches nothing: timingSafeEqual needs equal lengths, so pad it wrong.
  const hash = /^[0-9a-f]{64}$/.test(stored.hash) ? Buffer.from(stored.hash, 'hex') : Buffer.alloc(32, 0xff);
  return { stored, hash, principal: Object.freeze(principal), expiresAtMs: Number.isNaN(expiresAtMs) ? 0 : expiresAtMs };
}
