import { displayModelName, splitQualifiedName } from '../../auth/model-names.js';
import { isAdmin, type Principal } from '../../auth/principal.js';
import type { LiveStatsSample } from './live-stats-sampler.js';

/**
 * At most this many models per event (the busiest first, then by name): an admin of thousands of models gets a
 * bounded event each second, and the rest counted in `modelsOmitted`.
 */
export const maxModelsPerEvent = 200;

/** A sample as one caller may see it (JSON of the stream's `stats` events). */
export interface LiveStatsView extends Omit<LiveStatsSample, 'models'> {
  models: LiveStatsSample['models'];
  modelsOmitted: number;
}

/**
 * The models a caller's lists show (src/inference/visible-models.ts says the same against the registry): the
 * admin's are every tenant's, anyone else's its tenant's only; a key with a model allow-list sees those models
 * of its tenant only. Names are shown as the caller addresses them (bare within its tenant).
 */
export function liveStatsFor(principal: Principal, sample: LiveStatsSample): LiveStatsView {
  const allowed = principal.models;
  const visible = sample.models.filter(({ model }) => {
    const { tenant, name } = splitQualifiedName(model);
    if (allowed !== undefined) return tenant === principal.tenant && allowed.has(name);
    return isAdmin(principal) || tenant === principal.tenant;
  });
  const shown =
    visible.length <= maxModelsPerEvent
      ? visible
      : [...visible].sort((a, b) => (b.requestsPerSecond ?? 0) - (a.requestsPerSecond ?? 0) || a.model.localeCompare(b.model)).slice(0, maxModelsPerEvent);
  return {
    at: sample.at,
    intervalMs: sample.intervalMs,
    windowSeconds: sample.windowSeconds,
    models: shown.map((stats) => ({ ...stats, model: displayModelName(principal, stats.model) })),
    modelsOmitted: visible.length - shown.length,
  };
}
