import { errors } from '../errors.js';
import { modelStatistics, type StatisticsSources } from '../inference/model-statistics-view.js';
import type { UnaryHandler, UnaryHandlers } from './grpc-call-context.js';

/** `ModelStatisticsRequest` as @grpc/proto-loader decodes it (`keepCase`, no defaults: an empty field is absent): empty means every model, every version. */
interface WireModelStatisticsRequest {
  name?: string;
  version?: string;
}

/**
 * ModelStatistics (Triton's extension): the totals REST's GET …/stats answers, in Triton's ModelStatistics,
 * InferStatistics, StatisticDuration and InferBatchStatistics messages, whose fields have the JSON answer's
 * names; counts and nanoseconds are uint64 there. An empty name asks for every model the caller can see, as
 * GET /v2/models/stats does; a version without a name is refused, as Triton refuses it.
 */
export function tritonModelStatisticsHandlers(sources: StatisticsSources): UnaryHandlers {
  const statistics: UnaryHandler<WireModelStatisticsRequest> = async (request, context) => {
    const name = request.name ?? '';
    const version = request.version ?? '';
    if (name === '') {
      if (version !== '') throw versionWithoutName();
      return modelStatistics(sources, context.principal);
    }
    return modelStatistics(sources, context.principal, name, version);
  };
  return { ModelStatistics: statistics as UnaryHandler<never, unknown> };
}

function versionWithoutName() {
  return errors.invalidArgument("ModelStatisticsRequest has a 'version' but no 'name'; name the model, or leave both empty for every model's statistics.");
}
