import type { Config } from '../config.js';
import { redisEndpointSettings } from '../queue/redis-connection.js';
import { commandRedisUrl, connectCommandRedis } from '../runtime/command-redis.js';
import { rotateAdminKey } from './admin-key.js';

/**
 * `gantry admin-key rotate`: a new admin key, printed on stdout, and the old one refused at once by every API
 * process of the deployment (REDIS_URL and GANTRY_QUEUE_PREFIX name it; without REDIS_URL, the private Redis of
 * a running `gantry start` on GANTRY_DATA_DIR, else 127.0.0.1:6379). Returns the process exit code.
 */
export async function runAdminKeyCommand(
  config: Config,
  argument: string | undefined,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  if (argument !== 'rotate') {
    print('Usage: gantry admin-key rotate    prints a new admin key and revokes the old one at once');
    return 2;
  }
  const redis = await connectCommandRedis(await commandRedisUrl(config), 'admin-key', redisEndpointSettings(config));
  if (redis === undefined) {
    print(
      'No Redis answers for this deployment. Set REDIS_URL (and GANTRY_QUEUE_PREFIX) as the API has them; with `gantry start` and its private redis-server, run this while it runs, with the same GANTRY_DATA_DIR.',
    );
    return 1;
  }
  try {
    const key = await rotateAdminKey(redis, config.GANTRY_QUEUE_PREFIX);
    print(`New admin key (shown this once; the old one is refused from now on by every API process):\n\n  ${key}\n`);
    if (config.GANTRY_ADMIN_KEY !== undefined) {
      print(
        'GANTRY_ADMIN_KEY is set here: its value no longer works. Put the new key where the variable is set, or remove the variable (a changed value would replace this key at the next start).',
      );
    }
    return 0;
  } finally {
    redis.disconnect();
  }
}
