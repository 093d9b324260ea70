/**
 * A small per-process cache of values read from Redis, for lookups on the request path: a value younger than
 * `ttlMs` is answered from memory; one up to twice as old is still answered (so under steady traffic no request
 * waits on Redis) while one background read replaces it; an older one (the process was idle) or a value never
 * read is waited for. So no answer is older than 2 x ttlMs, and under traffic about ttlMs plus a round trip.
 */
export class RefreshingCache<V> {
  private readonly entries = new Map<string, { value: V; fetchedAt: number; refreshing?: Promise<void> }>();
  private readonly loading = new Map<string, Promise<V>>();

  /**
   * @param load reads the current value (Redis); it may throw, which fails a first read and leaves a stale value in place.
   * @param ttlMs how long a value counts as fresh, in ms.
   * @param maxEntries values kept; past it the least recently read goes (bounded memory however many keys call).
   */
  constructor(
    private readonly load: (key: string) => Promise<V>,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly onRefreshError: (error: unknown) => void = () => undefined,
  ) {}

  async get(key: string): Promise<V> {
    const value = this.peek(key);
    return value !== undefined ? value : this.loadFirst(key);
  }

  /**
   * The value from memory when there is one young enough to answer (starting its background read when it is past
   * ttlMs), else undefined: then `get` has to wait for Redis. For hot paths that should not make a promise.
   */
  peek(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const ageMs = Date.now() - entry.fetchedAt;
    if (ageMs > 2 * this.ttlMs) return undefined;
    // Re-inserting keeps the Map in least-recently-read order for eviction.
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (ageMs > this.ttlMs && entry.refreshing === undefined) {
      entry.refreshing = this.load(key).then(
        (value) => this.store(key, value),
        (error: unknown) => {
          entry.refreshing = undefined;
          this.onRefreshError(error);
        },
      );
    }
    return entry.value;
  }

  /** Replaces a value at once (this process wrote it), without waiting for the next read. */
  set(key: string, value: V): void {
    this.store(key, value);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  private loadFirst(key: string): Promise<V> {
    let pending = this.loading.get(key);
    if (pending === undefined) {
      pending = this.load(key).then(
        (value) => {
          this.loading.delete(key);
          this.store(key, value);
          return value;
        },
        (error: unknown) => {
          this.loading.delete(key);
          throw error;
        },
      );
      this.loading.set(key, pending);
    }
    return pending;
  }

  private store(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, fetchedAt: Date.now() });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}
