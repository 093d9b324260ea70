import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

/**
 * `gantry repair`: rebuilds the model registry in Redis from the metadata kept beside each blob in the model
 * store. Returns the process exit code.
 */
export async function runRepairCommand(_config: Config, logger: Logger): Promise<number> {
  logger.error('gantry repair is not implemented yet');
  return 1;
}
