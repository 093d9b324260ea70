import { errors } from '../errors.js';
import { loadModel, repositoryIndex, unloadModel, type RepositorySources } from '../inference/repository-actions.js';
import type { UnaryHandler, UnaryHandlers } from './grpc-call-context.js';

/** The repository requests as @grpc/proto-loader decodes them (`keepCase`, no defaults: an empty field is absent); parameters map to ModelRepositoryParameter. */
interface WireRepositoryIndexRequest {
  repository_name?: string;
  ready?: boolean;
}
interface WireRepositoryModelRequest {
  repository_name?: string;
  model_name?: string;
  parameters?: Record<string, unknown>;
}

/**
 * Gantry has one model repository, its registry, and it has no name: REST's routes have no repository segment
 * either. tritonclient leaves repository_name empty; a named repository is refused rather than read as this one.
 */
function checkRepositoryName(repositoryName: string | undefined): void {
  if (repositoryName === undefined || repositoryName === '') return;
  throw errors.invalidArgument(
    `Repository '${repositoryName.slice(0, 100)}' does not exist: Gantry has one model repository, unnamed; leave repository_name empty.`,
  );
}

/**
 * RepositoryIndex, RepositoryModelLoad and RepositoryModelUnload (Triton's extension), over the same actions as
 * REST's POST /v2/repository/index, …/models/{m}/load and …/models/{m}/unload, with the same scopes and messages.
 */
export function tritonRepositoryHandlers(sources: RepositorySources): UnaryHandlers {
  const index: UnaryHandler<WireRepositoryIndexRequest> = async (request, context) => {
    checkRepositoryName(request.repository_name);
    return { models: await repositoryIndex(sources, context.principal, request.ready === true) };
  };
  const load: UnaryHandler<WireRepositoryModelRequest> = async (request, context) => {
    checkRepositoryName(request.repository_name);
    await loadModel(sources, context.principal, request.model_name ?? '', Object.keys(request.parameters ?? {}));
    return {};
  };
  // Unload takes "unload_dependents" and ignores it, as REST does: no Gantry model depends on another.
  const unload: UnaryHandler<WireRepositoryModelRequest> = async (request, context) => {
    checkRepositoryName(request.repository_name);
    await unloadModel(sources, context.principal, request.model_name ?? '');
    return {};
  };
  return {
    RepositoryIndex: index as UnaryHandler<never, unknown>,
    RepositoryModelLoad: load as UnaryHandler<never, unknown>,
    RepositoryModelUnload: unload as UnaryHandler<never, unknown>,
  };
}
