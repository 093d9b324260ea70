/** What a Redis server costs its clients (connections, commands per second): measured by tests and benchmarks. */
import { Redis } from 'ioredis';

/** What a Redis server costs its clients at one moment: connections, and commands per second over a window. */
export interface RedisFootprint {
  /** Connected clients, the measuring connection excluded. */
  clients: number;
  /** Connected clients by connection name (unnamed ones under ''), the measuring connection excluded. */
  clientsByName: Record<string, number>;
  /** Commands Redis processed per second over the window, the measuring commands excluded. */
  commandsPerSecond: number;
  /** Commands per second by command name over the window (from INFO commandstats), the busiest first. */
  commandsPerSecondByName: Record<string, number>;
}

async function commandCounts(redis: Redis): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const match of (await redis.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) counts.set(match[1]!, Number(match[2]));
  return counts;
}

/**
 * Measures a Redis that only the system under test uses (a private redis-server): its client count and the
 * commands per second it processes over `windowMs`. Meant for idle periods (what idle models cost).
 */
export async function measureRedisFootprint(redisUrl: string, windowMs: number): Promise<RedisFootprint> {
  const redis = new Redis(redisUrl, { connectionName: 'footprint-probe' });
  try {
    const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1] ?? Number.NaN);
    const countsBefore = await commandCounts(redis);
    const before = await processed();
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = await processed();
    const countsAfter = await commandCounts(redis);
    const seconds = (Date.now() - startedAt) / 1000;
    const clientsByName: Record<string, number> = {};
    const list = (await redis.client('LIST')) as string;
    let clients = 0;
    for (const line of list.split('\n')) {
      if (line.trim() === '') continue;
      const name = /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '';
      if (name === 'footprint-probe') continue;
      clients++;
      clientsByName[name] = (clientsByName[name] ?? 0) + 1;
    }
    const byName: [string, number][] = [];
    for (const [name, calls] of countsAfter) {
      // The probe's own INFO calls are not Gantry's.
      const delta = calls - (countsBefore.get(name) ?? 0) - (name === 'info' ? 2 : 0);
      if (delta > 0) byName.push([name, Math.round((delta / seconds) * 10) / 10]);
    }
    byName.sort((a, b) => b[1] - a[1]);
    // The second INFO stats counts itself; the first is inside the window's count.
    return { clients, clientsByName, commandsPerSecond: Math.max(0, after - before - 1) / seconds, commandsPerSecondByName: Object.fromEntries(byName) };
  } finally {
    redis.disconnect();
  }
}

/** Samples the client count every `intervalMs` until `stop()`, which resolves with the highest count seen. */
export function trackPeakClients(redisUrl: string, intervalMs = 200): { stop: () => Promise<number> } {
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await measureRedisFootprint(redisUrl, 0)).clients);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async () => {
      sampling = false;
      await sampler;
      return peak;
    },
  };
}

/** Runs `work` over `items` with at most `concurrency` at once. */
export async function eachLimited<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}
