import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principal.js';
import { ErrorCode, GantryError, errors, type WireError } from '../errors.js';
import type { PreparedInference } from '../inference/inference-service.js';
import type { ResultRendering } from '../inference/result-rendering.js';
import { splitBinaryBody } from '../protocol/binary-extension.js';
import { checkJsonCost, couldExceedJsonCost, jsonCostBounds } from '../protocol/json-cost.js';
import { inferRequestSchema, type InferRequestBody } from '../protocol/oip-schemas.js';
import type { ModelTarget } from '../queue/inference-submission.js';
import { maxPayloadBytesPerJob } from '../queue/job-contracts.js';
import { encodeChunkInput } from './batch-chunk-input.js';
import { readBatchLines, type BatchBodyLimits } from './batch-line-reader.js';
import type { BatchOpening, BatchStore, ReceivedPart } from './batch-store.js';
import type { DurableRequest } from './durable-producer.js';
import { encodeStoredAnswer } from './stored-answer.js';

/** One line's request as the data plane gets it (the route builds the call: rest-call.ts restInferenceCall). */
export interface BatchLineCall {
  principal: Principal;
  model: string;
  version?: string;
  body: InferRequestBody;
}

/** What reading a batch body needs. */
export interface BatchSubmissionDependencies {
  /**
   * Checks and decodes one line as /infer would, without queueing it (InferenceService.prepare with the batch's
   * deadline and priority): handed in by the transport, since only transports call the data plane.
   */
  prepareLine: (call: BatchLineCall) => Promise<PreparedInference>;
  store: Pick<BatchStore, 'writeReceived'>;
  limits: BatchBodyLimits;
  /** GANTRY_BATCH_CHUNK_LINES: good lines per queue job. */
  chunkLines: number;
  /**
   * A chunk also closes once its decoded inputs reach this many bytes (default maxPayloadBytesPerJob, a queue
   * job's payload), so what one chunk holds here and in Redis is bounded by bytes, not by lines times line bytes.
   */
  maxChunkBytes?: number;
  /** GANTRY_MAX_BYTES_ELEMENTS: bounds the JSON of one line as /infer bounds a body. */
  maxBytesElements: number;
}

/** One batch body to read. */
export interface BatchSubmissionRequest {
  id: string;
  createdAt: number;
  principal: Principal;
  /** The model as the path names it, and the version every line runs on (resolved once for the batch). */
  model: string;
  version: string;
  body: Readable;
  /** Kept up to date while reading: how many chunk inputs were written (what a failed upload leaves to remove). */
  progress?: { chunks: number };
}

/** What the reading found: the batch's opening (batch-store.ts) and where its chunks run. */
export interface ReceivedBatch extends BatchOpening {
  /** Undefined when no line was good (nothing to queue). */
  target?: ModelTarget;
  rendering?: Omit<ResultRendering, 'id'>;
}

/**
 * Codes of a line's preparation that say nothing about the line but about the batch as a whole (the model is
 * unknown, not READY, the server is shutting down...): the whole batch is refused with them instead.
 */
const batchWideCodes = new Set<ErrorCode>([
  ErrorCode.NotFound,
  ErrorCode.Unavailable,
  ErrorCode.Unauthenticated,
  ErrorCode.PermissionDenied,
  ErrorCode.ResourceExhausted,
  ErrorCode.Internal,
]);

/** Up to this many lines' metadata and results are written to Redis at once (and held here meanwhile). */
const writeEvery = 512;

/** The first problem zod found, in words: where and what. */
function describeIssue(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  const issue = issues[0];
  if (issue === undefined) return 'it does not match the inference request schema';
  const where = issue.path.length === 0 ? 'the request' : `'${issue.path.map(String).join('.')}'`;
  return `${where}: ${issue.message}`;
}

/** A line's JSON (exact 64-bit integers, bounded cost), or the reason it is not a request. */
function parseLine(line: Buffer, maxBytesElements: number): { body: InferRequestBody; id?: string } | { error: GantryError; id?: string } {
  let header: unknown;
  try {
    const bounds = jsonCostBounds(maxBytesElements);
    if (couldExceedJsonCost(line.length, bounds)) checkJsonCost(line, bounds, 'The line');
    header = splitBinaryBody(line, undefined).header;
  } catch (error) {
    if (error instanceof GantryError) return { error };
    throw error;
  }
  const rawId = typeof header === 'object' && header !== null ? (header as { id?: unknown }).id : undefined;
  const id = typeof rawId === 'string' ? rawId : undefined;
  const parsed = inferRequestSchema.safeParse(header);
  if (!parsed.success) {
    return {
      error: errors.invalidArgument(`The line is not an inference request: ${describeIssue(parsed.error.issues)}.`),
      ...(id === undefined ? {} : { id }),
    };
  }
  if (parsed.data.inputs.some((input) => input.parameters?.binary_data_size !== undefined)) {
    return {
      error: errors.invalidArgument('A batch line carries its tensors as JSON: binary_data_size (the binary extension) is not supported in batch files.'),
      ...(id === undefined ? {} : { id }),
    };
  }
  return { body: parsed.data, ...(id === undefined ? {} : { id }) };
}

/**
 * Reads a batch body line by line into the batch store, holding at most one chunk of checked requests and a few
 * hundred lines' metadata at once (never the whole body). Each line is one OIP JSON inference request, checked and
 * decoded by the inference service exactly as /infer would (`prepareLine`); a line that is not JSON, not a request, or
 * that the service refuses for its content fails alone: its error is its result. Good lines are packed in input
 * order into chunks of `chunkLines` (or fewer, reaching `maxChunkBytes`), each written to the store as soon as it is full. Every line is prepared for
 * the batch's one version (`request.version`).
 *
 * @throws 413 naming the variable when a bound of the body is passed; the service's error when a line is refused
 *   for something that concerns the whole batch (unknown model, nothing READY: batchWideCodes); 400 for a body
 *   without lines; the stream's error when the body was cut off. Nothing was opened then: the caller discards.
 */
export async function receiveBatch(dependencies: BatchSubmissionDependencies, request: BatchSubmissionRequest): Promise<ReceivedBatch> {
  const { prepareLine, store, chunkLines } = dependencies;
  const maxChunkBytes = dependencies.maxChunkBytes ?? maxPayloadBytesPerJob;
  let target: ModelTarget | undefined;
  let commonRendering: string | undefined;
  let rendering: Omit<ResultRendering, 'id'> | undefined;
  let chunk: DurableRequest[] = [];
  let chunkBytes = 0;
  let chunks = 0;
  let queuedLines = 0;
  let invalidLines = 0;
  let lineNumber = 0;
  let pending: ReceivedPart = { lines: [], results: [] };

  const flush = async (input?: ReceivedPart['input']) => {
    if (pending.lines.length === 0 && pending.results.length === 0 && input === undefined) return;
    const part = input === undefined ? pending : { ...pending, input };
    pending = { lines: [], results: [] };
    await store.writeReceived(request.id, request.createdAt, part);
  };
  const closeChunk = async () => {
    if (chunk.length === 0) return;
    const input = { chunk: chunks, bytes: encodeChunkInput(chunk), lines: chunk.length };
    chunk = [];
    chunkBytes = 0;
    chunks += 1;
    if (request.progress !== undefined) request.progress.chunks = chunks;
    await flush(input);
  };
  const failLine = (line: number, id: string, error: WireError) => {
    invalidLines += 1;
    pending.lines.push([line, JSON.stringify({ i: id })]);
    pending.results.push([line, encodeStoredAnswer({ correlationId: String(line), error }, [])]);
  };

  for await (const text of readBatchLines(request.body, dependencies.limits)) {
    const line = lineNumber;
    lineNumber += 1;
    const parsed = parseLine(text, dependencies.maxBytesElements);
    const lineId = parsed.id ?? String(line);
    if ('error' in parsed) {
      failLine(line, lineId, parsed.error.toWire());
    } else {
      try {
        const prepared = await prepareLine({
          principal: request.principal,
          model: request.model,
          version: request.version,
          body: parsed.body,
        });
        if (prepared.rendering.binary.length > 0) {
          throw errors.invalidArgument(
            'A batch line is answered as JSON: binary_data / binary_data_output (the binary extension) is not supported in batch files; remove it.',
          );
        }
        target ??= prepared.target;
        const { id: requestId, ...shared } = prepared.rendering;
        const sharedJson = JSON.stringify(shared);
        if (commonRendering === undefined) {
          commonRendering = sharedJson;
          rendering = shared;
        }
        pending.lines.push([
          line,
          JSON.stringify({
            i: lineId,
            c: chunks,
            ...(requestId === undefined ? {} : { o: 1 }),
            ...(sharedJson === commonRendering ? {} : { r: shared }),
          }),
        ]);
        chunk.push({ correlationId: String(line), submission: prepared.submission });
        for (const input of prepared.submission.inputs) chunkBytes += input.data.byteLength;
        queuedLines += 1;
      } catch (error) {
        if (!(error instanceof GantryError) || batchWideCodes.has(error.code)) throw error;
        failLine(line, lineId, error.toWire());
      }
    }
    if (chunk.length >= chunkLines || chunkBytes >= maxChunkBytes) await closeChunk();
    else if (pending.lines.length >= writeEvery) await flush();
  }
  await closeChunk();
  await flush();
  if (lineNumber === 0) throw errors.invalidArgument('The batch has no lines: send one OIP JSON inference request per line (application/x-ndjson).');
  return {
    total: lineNumber,
    chunks,
    chunkLines,
    queuedLines,
    invalidLines,
    version: request.version,
    ...(target === undefined ? {} : { target }),
    ...(rendering === undefined ? {} : { rendering }),
  };
}
