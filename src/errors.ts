/**
 * Every error Gantry reports has a code from this list. The code, not the class, is what crosses process
 * boundaries (a worker's failure travels to the API as `{code, message}`), so the mapping to HTTP lives here
 * once. The vocabulary follows Triton's (and gRPC's) status codes.
 */
export enum ErrorCode {
  InvalidArgument = 'INVALID_ARGUMENT',
  /** No API key, or one that is malformed, unknown, expired or revoked (401, with WWW-Authenticate: Bearer). */
  Unauthenticated = 'UNAUTHENTICATED',
  /** A valid key without the scope a route needs, or of a disabled tenant (403). */
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  AlreadyExists = 'ALREADY_EXISTS',
  FailedPrecondition = 'FAILED_PRECONDITION',
  InvalidModel = 'INVALID_MODEL',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  /** The model's output for this request is larger than the server sends back. */
  OutputTooLarge = 'OUTPUT_TOO_LARGE',
  /** The model store has no room (its budget or the disk). */
  InsufficientStorage = 'INSUFFICIENT_STORAGE',
  ResourceExhausted = 'RESOURCE_EXHAUSTED',
  Unsupported = 'UNSUPPORTED',
  Unavailable = 'UNAVAILABLE',
  DeadlineExceeded = 'DEADLINE_EXCEEDED',
  Cancelled = 'CANCELLED',
  Internal = 'INTERNAL',
}

const httpStatusByCode: Record<ErrorCode, number> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.PermissionDenied]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.AlreadyExists]: 409,
  [ErrorCode.FailedPrecondition]: 409,
  [ErrorCode.InvalidModel]: 422,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.OutputTooLarge]: 400,
  [ErrorCode.InsufficientStorage]: 507,
  [ErrorCode.ResourceExhausted]: 429,
  [ErrorCode.Unsupported]: 501,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.DeadlineExceeded]: 504,
  [ErrorCode.Cancelled]: 499,
  [ErrorCode.Internal]: 500,
};

export function httpStatusFor(code: ErrorCode): number {
  return httpStatusByCode[code];
}

const knownCodes = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && knownCodes.has(value);
}

export class GantryError extends Error {
  readonly code: ErrorCode;
  /** Seconds a client should wait before retrying (sent as Retry-After on 429/503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GantryError';
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get httpStatus(): number {
    return httpStatusFor(this.code);
  }

  /** The form an error takes on the queue and in reply messages. */
  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
}

/** Codes a client should retry after a pause: they get Retry-After wherever they were raised. */
const retryableCodes = new Set<ErrorCode>([ErrorCode.Unavailable, ErrorCode.ResourceExhausted]);

export function fromWire(wire: WireError): GantryError {
  const code = isErrorCode(wire.code) ? wire.code : ErrorCode.Internal;
  // The wire form has no Retry-After; a worker's 503 (model unloaded, thread budget) must still carry one.
  return new GantryError(code, wire.message, retryableCodes.has(code) ? { retryAfterSeconds: 1 } : {});
}

function describeVersion(name: string, version?: string): string {
  return version === undefined ? `model '${name}'` : `version '${version}' of model '${name}'`;
}

/**
 * A caller-supplied value as it may appear in an error message or a log line: JSON, cut to `maxCharacters`.
 * Errors never echo a large value back (a 50 MB parameter must not become a 50 MB answer).
 */
export function describeValue(value: unknown, maxCharacters = 40): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? 'an array' : typeof value;
  }
  return text.length > maxCharacters ? `${text.slice(0, maxCharacters)}… (${text.length} characters)` : text;
}

// Factories: call sites say what happened, the factory decides the code and the wording.
/**
 * True for the errors ioredis raises when Redis cannot be reached (offline queue disabled, connection closed,
 * retries exhausted), and for the replies of a Redis in the middle of a failover (a demoted master's READONLY,
 * MASTERDOWN, a replica still LOADING, a blocked command UNBLOCKED by the role change, no sentinel answering,
 * NOREPLICAS from a master with min-replicas-to-write cut off from its replicas):
 * those mean "try again shortly", not a bug.
 */
export function isRedisUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable|Connection is closed|ECONNREFUSED|ETIMEDOUT|ENOTCONN|connect ETIMEDOUT|All sentinels are unreachable/.test(error.message) ||
    /^(READONLY|MASTERDOWN|LOADING|UNBLOCKED|NOREPLICAS) /.test(error.message) ||
    /READONLY You can't write against a read only replica/.test(error.message)
  );
}

export const errors = {
  invalidArgument: (message: string) => new GantryError(ErrorCode.InvalidArgument, message),
  invalidModelName: (name: string) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `Invalid model name '${name.slice(0, 200)}': names start with a letter or digit and use only letters, digits, '_', '.' and '-' (at most 128 characters).`,
    ),
  invalidVersion: (version: string) =>
    new GantryError(ErrorCode.InvalidArgument, `Invalid version '${version.slice(0, 50)}': versions are positive integers such as "1".`),
  modelNotFound: (name: string, version?: string) => new GantryError(ErrorCode.NotFound, `Unknown ${describeVersion(name, version)}.`),
  modelNotReady: (name: string, version: string | undefined, state: string) =>
    new GantryError(ErrorCode.Unavailable, `${capitalize(describeVersion(name, version))} is not ready (state ${state}).`, {
      retryAfterSeconds: 1,
    }),
  noReadyVersion: (name: string) => new GantryError(ErrorCode.Unavailable, `Model '${name}' has no READY version yet.`, { retryAfterSeconds: 1 }),
  invalidModel: (reason: string) => new GantryError(ErrorCode.InvalidModel, `The uploaded file is not a loadable ONNX model: ${reason}`),
  uploadTooLarge: (limitBytes: number) => new GantryError(ErrorCode.PayloadTooLarge, `The upload exceeds GANTRY_MAX_UPLOAD_BYTES (${limitBytes} bytes).`),
  requestTooLarge: (limitBytes: number) =>
    new GantryError(ErrorCode.PayloadTooLarge, `The request body exceeds GANTRY_MAX_REQUEST_BYTES (${limitBytes} bytes).`),
  deadlineExceeded: (milliseconds: number) =>
    new GantryError(ErrorCode.DeadlineExceeded, `The inference did not finish within its timeout of ${milliseconds} ms.`),
  queueUnavailable: (detail: string) =>
    new GantryError(ErrorCode.Unavailable, `The inference queue is unavailable (${detail}); retry shortly.`, { retryAfterSeconds: 1 }),
  queueFull: (model: string, limit: number) =>
    new GantryError(ErrorCode.ResourceExhausted, `Model '${model}' has ${limit} requests waiting or running (its maxQueueSize); retry shortly.`, {
      retryAfterSeconds: 1,
    }),
  poisonedJob: (attempts: number) =>
    new GantryError(
      ErrorCode.Internal,
      `This request stopped the worker running it ${attempts} time(s) and will not be tried again; check the model and its inputs.`,
    ),
  // Limits (README "Limits"): each names what was too much, the limit and the variable that sets it.
  /** What a caller gets while Redis cannot be reached (isRedisUnavailableError): any transport, any route. */
  redisUnreachable: () => new GantryError(ErrorCode.Unavailable, 'Redis is unreachable; retry shortly.', { retryAfterSeconds: 1 }),
  serverBusy: (what: string, limitVariable: string) =>
    new GantryError(ErrorCode.Unavailable, `The server is busy: ${what} (${limitVariable}); retry shortly.`, { retryAfterSeconds: 1 }),
  jsonRequestTooLarge: (limitBytes: number) =>
    new GantryError(
      ErrorCode.PayloadTooLarge,
      `The JSON part of the request exceeds GANTRY_MAX_JSON_REQUEST_BYTES (${limitBytes} bytes); send large tensors with the binary tensor extension (binary_data_size).`,
    ),
  tooManyBytesElements: (count: number, limit: number) =>
    new GantryError(ErrorCode.InvalidArgument, `The request has ${count} BYTES elements, more than GANTRY_MAX_BYTES_ELEMENTS (${limit}).`),
  nestingTooDeep: (inputName: string, limit: number) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `Input '${inputName.slice(0, 100)}': 'data' is nested more than ${limit} levels deep; nest it as the shape says, or send it flat.`,
    ),
  jsonTooComplex: (what: string, excess: string) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `${what} is too costly to parse as JSON: ${excess}. Send tensor data flat rather than nested per element, or large tensors with the binary tensor extension (binary_data_size).`,
    ),
  outputTooLarge: (bytes: number, limitBytes: number) =>
    new GantryError(
      ErrorCode.OutputTooLarge,
      `The model's outputs for this request are ${bytes} bytes, more than GANTRY_MAX_RESPONSE_BYTES (${limitBytes}); ask for fewer outputs or a smaller input.`,
    ),
  jsonOutputTooLarge: (elements: number, limit: number) =>
    new GantryError(
      ErrorCode.OutputTooLarge,
      `The outputs answered as JSON have ${elements} elements, more than GANTRY_MAX_JSON_OUTPUT_ELEMENTS (${limit}); ask for them as binary data (parameter "binary_data_output": true).`,
    ),
  queuedBytesFull: (model: string, limitBytes: number) =>
    new GantryError(
      ErrorCode.ResourceExhausted,
      `Model '${model}' has ${limitBytes} bytes of requests waiting or running (GANTRY_MAX_QUEUED_BYTES_PER_MODEL); retry shortly.`,
      { retryAfterSeconds: 1 },
    ),
  runStopped: (limitMs: number) => new GantryError(ErrorCode.DeadlineExceeded, `The model ran longer than GANTRY_MAX_RUN_MS (${limitMs} ms) and was stopped.`),
  loadStopped: (limitMs: number) =>
    new GantryError(
      ErrorCode.InvalidModel,
      `The uploaded file is not a loadable ONNX model: it did not load and warm up within GANTRY_LOAD_DEADLINE_MS (${limitMs} ms) and was stopped.`,
    ),
  threadBudget: (threads: number, budget: number) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `This configuration needs ${threads} onnxruntime threads per worker (instances x (intraOpThreads + interOpThreads)), more than GANTRY_MAX_THREADS_PER_WORKER (${budget}).`,
    ),
  storeFull: (what: string) =>
    new GantryError(ErrorCode.InsufficientStorage, `The model store has no room: ${what}. Delete unused model versions, or raise the limit.`),
  modelUnloaded: () =>
    new GantryError(ErrorCode.Unavailable, 'The model was unloaded or deleted while this request waited for it or ran; retry if it is still served.', {
      retryAfterSeconds: 1,
    }),
  cancelled: () => new GantryError(ErrorCode.Cancelled, 'The client closed the connection before the inference ran.'),
  registryUnavailable: () =>
    new GantryError(
      ErrorCode.Unavailable,
      "The model registry is unavailable: Redis lost its data or holds another deployment's, and the registry is being rebuilt from the model store (GET /v2/health/ready says why; `gantry repair` rebuilds it by hand); retry shortly.",
      { retryAfterSeconds: 5 },
    ),
  blobNotInStore: (sha256: string, location: string) =>
    new GantryError(ErrorCode.NotFound, `The model file ${sha256} is not in the model store (${location}); upload the model again.`),
  storeBusy: () => new GantryError(ErrorCode.Unavailable, 'The model store is removing a file with these same bytes; retry shortly.', { retryAfterSeconds: 1 }),
  shuttingDown: () => new GantryError(ErrorCode.Unavailable, 'The server is shutting down; retry on another instance.', { retryAfterSeconds: 1 }),
  /** A job queued in a contract version this worker does not read (a rolling upgrade): 503, so callers retry. */
  unsupportedJobContract: (version: number, supportedVersion: number) =>
    new GantryError(
      ErrorCode.Unavailable,
      version > supportedVersion
        ? `No worker here understands job contract v${version} (this worker reads v${supportedVersion}); upgrade the workers, then retry.`
        : `This request was queued with job contract v${version}, which the workers no longer read (they read v${supportedVersion}); upgrade the API, then retry.`,
      { retryAfterSeconds: 1 },
    ),
  /** A job that does not match the job contract: a defect or foreign data, never the caller's input. */
  unreadableJob: () => new GantryError(ErrorCode.Internal, 'The worker could not read the job carrying this request; the details are in the worker log.'),
  // Authentication and authorization (docs/security.md). One message for every 401, whatever was wrong with the
  // key: a caller learns nothing about which keys exist; the log says why (never the key itself).
  unauthenticated: () =>
    new GantryError(
      ErrorCode.Unauthenticated,
      "Missing or invalid API key: send a valid, unexpired key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
    ),
  /** `needed` names the scope(s): "scope 'models:write'". */
  missingScope: (needed: string, route: string) =>
    new GantryError(
      ErrorCode.PermissionDenied,
      `This key may not call ${route}: that needs ${needed}, which the key lacks; use a key that has it, or ask an admin to add it.`,
    ),
  tenantDisabled: (tenant: string) =>
    new GantryError(ErrorCode.PermissionDenied, `Tenant '${tenant}' is disabled; ask an admin to enable it (PATCH /v1/tenants/${tenant} {"disabled": false}).`),
  cannotGrant: (what: string) =>
    new GantryError(
      ErrorCode.PermissionDenied,
      `This key cannot grant ${what}: a key may only hand out what it holds itself, and only an admin grants 'admin'.`,
    ),
  tenantNotFound: (tenant: string) => new GantryError(ErrorCode.NotFound, `Unknown tenant '${tenant.slice(0, 64)}'.`),
  tenantExists: (tenant: string) => new GantryError(ErrorCode.AlreadyExists, `Tenant '${tenant}' already exists.`),
  keyNotFound: (keyId: string) => new GantryError(ErrorCode.NotFound, `Unknown key '${keyId.slice(0, 64)}'.`),
  failedPrecondition: (message: string) => new GantryError(ErrorCode.FailedPrecondition, message),
  /** A per-tenant cap on control-plane records (tenants, keys): 409 naming the cap and its variable. */
  capReached: (what: string, limit: number, limitVariable: string) =>
    new GantryError(ErrorCode.FailedPrecondition, `The cap on ${what} (${limit}, ${limitVariable}) is reached; delete unused ones or raise the cap.`),
  // Rate limits and quotas (README "Limits per tenant and key"): 429 naming the limit, whose it is and when it resets.
  rateLimited: (whose: string, max: number, per: 'second' | 'minute', retryAfterSeconds: number) =>
    new GantryError(
      ErrorCode.ResourceExhausted,
      `Rate limit reached: ${whose} may send ${max} requests per ${per}; retry after ${retryAfterSeconds} s (Retry-After), or ask an admin to raise the limit.`,
      { retryAfterSeconds },
    ),
  quotaExceeded: (tenant: string, quota: string, used: string, limit: string, resetsAt: Date) =>
    new GantryError(
      ErrorCode.ResourceExhausted,
      `Quota ${quota} of tenant '${tenant}' is used up (${used} of ${limit}); it resets at ${resetsAt.toISOString()} (UTC). Ask an admin to raise it.`,
      { retryAfterSeconds: Math.max(1, Math.ceil((resetsAt.getTime() - Date.now()) / 1000)) },
    ),
  // Per-tenant caps on what a tenant holds (its limits' maxModels, maxVersions, maxStoredBytes; set by an admin).
  tenantModelCap: (tenant: string, limit: number) =>
    new GantryError(
      ErrorCode.FailedPrecondition,
      `Tenant '${tenant}' has ${limit} models, its cap (maxModels); delete a model it no longer needs, or ask an admin to raise the tenant's maxModels.`,
    ),
  tenantVersionCap: (tenant: string, limit: number) =>
    new GantryError(
      ErrorCode.FailedPrecondition,
      `Tenant '${tenant}' has ${limit} model versions, its cap (maxVersions, over all its models); delete old versions, or ask an admin to raise the tenant's maxVersions.`,
    ),
  /** `uploadBytes` undefined: refused before the upload's size was known, because the tenant is at its cap already. */
  tenantStoredBytesCap: (tenant: string, storedBytes: number, uploadBytes: number | undefined, limitBytes: number) =>
    new GantryError(
      ErrorCode.PayloadTooLarge,
      `${uploadBytes === undefined ? 'An upload' : `This upload of ${uploadBytes} bytes`} would take tenant '${tenant}' past its cap on stored model bytes (maxStoredBytes, ${limitBytes} bytes; ${storedBytes} stored now); delete unused versions, or ask an admin to raise the tenant's maxStoredBytes.`,
    ),
  tenantUploadsBusy: () =>
    new GantryError(ErrorCode.Unavailable, "Another upload of this tenant is being checked against the tenant's caps; retry shortly.", {
      retryAfterSeconds: 1,
    }),
  unsupported: (message: string) => new GantryError(ErrorCode.Unsupported, message),
  internal: (message = 'Internal error.') => new GantryError(ErrorCode.Internal, message),
};

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
