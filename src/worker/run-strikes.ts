import type { Logger } from '../logger.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { RunRequester } from './run-watchdog.js';

/**
 * Counts a stopped run against each model version whose requests were in it; a version that reaches
 * `maxStrikes` (GANTRY_MAX_RUN_STRIKES) becomes UNAVAILABLE with the reason, so one model whose runs never end
 * cannot restart the worker forever.
 * @param limitMs GANTRY_MAX_RUN_MS, named in the reason.
 */
export async function recordRunStrikes(
  registry: ModelRegistry,
  requesters: readonly RunRequester[],
  options: { maxStrikes: number; limitMs: number; logger: Logger },
): Promise<void> {
  const versions = new Map<string, { model: string; version: string }>();
  for (const { model, version } of requesters) {
    if (model !== undefined && version !== undefined) versions.set(`${model}\u0000${version}`, { model, version });
  }
  for (const { model, version } of versions.values()) {
    const strikes = await registry.recordRunStrike(model, version);
    options.logger.error({ model, version, strikes, maxStrikes: options.maxStrikes }, 'run stopped at GANTRY_MAX_RUN_MS; strike recorded');
    if (strikes < options.maxStrikes) continue;
    const reason = `its runs were stopped ${strikes} times for running longer than GANTRY_MAX_RUN_MS (${options.limitMs} ms); fix the model or the inputs that make it run so long, then upload or load it again`;
    await registry.lifecycle.markUnavailable(model, version, reason);
    options.logger.error({ model, version, strikes }, 'version made UNAVAILABLE after repeated stopped runs');
  }
}
