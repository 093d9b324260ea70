/**
 * Every error Gantry reports has a code from this list. The code, not the class, is what crosses process
 * boundaries (a worker's failure travels to the API as `{code, message}`), so the mapping to HTTP lives here
 * once. The vocabulary follows Triton's (and gRPC's) status codes.
 */
export enum ErrorCode {
  InvalidArgument = 'INVALID_ARGUMENT',
  NotFound = 'NOT_FOUND',
  AlreadyExists = 'ALREADY_EXISTS',
  FailedPrecondition = 'FAILED_PRECONDITION',
  InvalidModel = 'INVALID_MODEL',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  ResourceExhausted = 'RESOURCE_EXHAUSTED',
  Unsupported = 'UNSUPPORTED',
  Unavailable = 'UNAVAILABLE',
  DeadlineExceeded = 'DEADLINE_EXCEEDED',
  Cancelled = 'CANCELLED',
  Internal = 'INTERNAL',
}

const httpStatusByCode: Record<ErrorCode, number> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.AlreadyExists]: 409,
  [ErrorCode.FailedPrecondition]: 409,
  [ErrorCode.InvalidModel]: 422,
  [ErrorCode.PayloadTooLarge]: 413,
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

export function fromWire(wire: WireError): GantryError {
  return new GantryError(isErrorCode(wire.code) ? wire.code : ErrorCode.Internal, wire.message);
}

function describeVersion(name: string, version?: string): string {
  return version === undefined ? `model '${name}'` : `version '${version}' of model '${name}'`;
}

// Factories: call sites say what happened, the factory decides the code and the wording.
export const errors = {
  invalidArgument: (message: string) => new GantryError(ErrorCode.InvalidArgument, message),
  invalidModelName: (name: string) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `Invalid model name '${name.slice(0, 200)}': names start with a letter or digit and use only letters, digits, '_', '.' and '-' (at most 128 characters).`,
    ),
  invalidVersion: (version: string) =>
    new GantryError(ErrorCode.InvalidArgument, `Invalid version '${version.slice(0, 50)}': versions are positive integers such as "1".`),
  modelNotFound: (name: string, version?: string) =>
    new GantryError(ErrorCode.NotFound, `Unknown ${describeVersion(name, version)}.`),
  modelNotReady: (name: string, version: string | undefined, state: string) =>
    new GantryError(ErrorCode.Unavailable, `${capitalize(describeVersion(name, version))} is not ready (state ${state}).`, {
      retryAfterSeconds: 1,
    }),
  noReadyVersion: (name: string) =>
    new GantryError(ErrorCode.Unavailable, `Model '${name}' has no READY version yet.`, { retryAfterSeconds: 1 }),
  invalidModel: (reason: string) => new GantryError(ErrorCode.InvalidModel, `The uploaded file is not a loadable ONNX model: ${reason}`),
  uploadTooLarge: (limitBytes: number) =>
    new GantryError(ErrorCode.PayloadTooLarge, `The upload exceeds GANTRY_MAX_UPLOAD_BYTES (${limitBytes} bytes).`),
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
  cancelled: () => new GantryError(ErrorCode.Cancelled, 'The client closed the connection before the inference ran.'),
  shuttingDown: () => new GantryError(ErrorCode.Unavailable, 'The server is shutting down; retry on another instance.', { retryAfterSeconds: 1 }),
  unsupported: (message: string) => new GantryError(ErrorCode.Unsupported, message),
  internal: (message = 'Internal error.') => new GantryError(ErrorCode.Internal, message),
};

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
