import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { ErrorCode, GantryError, errors } from '../errors.js';
import { inferenceHeaderContentLength, splitBinaryBody } from '../protocol/binary-extension.js';
import { describeJsonPart, jsonPartLength, type DecodedInputData } from '../protocol/decoded-json-body.js';
import { checkJsonCost, couldExceedJsonCost, isJsonTooCostly, jsonCostBounds } from '../protocol/json-cost.js';
import { readBoundedBody } from './bounded-body.js';
import { inflightBudgetExceeded, type InflightReservation } from '../limits/inflight-bytes.js';
import { JsonParsePool, limitOfParseError, offThreadParseMinBytes, parseThreadHeapMb } from './json-parse-pool.js';
import { readDecompressedBody, requestCodingOf, type RequestCoding } from './request-decompression.js';
import { registerResponseCompression } from './response-compression.js';
import type { ApiServices } from './services.js';

/** What the preParsing hook decided about a body, for the parser that reads it. */
interface BodyRead {
  reply: FastifyReply;
  binary: boolean;
  /** How the body is compressed (Content-Encoding); limits and the in-flight budget apply to it decompressed. */
  coding: RequestCoding;
  limitBytes: number;
  contentLength: number | undefined;
  reservation: InflightReservation;
}

/** What the inference route keeps on a request between reading its body and handling it. */
export interface InferBodyState {
  read: BodyRead;
  /** The binary part of a binary-extension body (after the JSON header). */
  binary?: Buffer;
  /** Inputs a parse thread decoded already (bodies of offThreadParseMinBytes and more), by input index. */
  decoded?: Array<DecodedInputData | undefined>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the inference route's preParsing hook; null on every other route. */
    inferBody: InferBodyState | null;
  }
}

/**
 * A Content-Type Fastify can parse (`type/subtype`, parameters aside); any other value it refuses with 415
 * before a body parser is even chosen.
 */
const parsableMediaType = /^\s*[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+\s*(?:;|$)/;

/**
 * How the inference route reads its bodies, within the limits (README "Limits"). Like Triton it reads any
 * body whatever its Content-Type (tritonclient.http sends none): as JSON, or as a JSON header plus raw tensors
 * when Inference-Header-Content-Length is present; a `Content-Encoding: gzip | deflate` body is decompressed as
 * it arrives, the limits and the header length applying to it decompressed. Before a byte is read, a body too
 * large for its kind (binary or JSON) or for the in-flight budget is refused; then it is read into one buffer,
 * its JSON part checked for parse cost, and parsed on the event loop when small or in a parse thread when large
 * (which also decodes the inputs' `data`). The handler finds the JSON header as the request body and the rest on
 * `request.inferBody`. Answers are compressed for callers that ask (Accept-Encoding). Registered inside the
 * route's own context, so other routes keep Fastify's parsers.
 */
export function registerInferenceBodyReading(app: FastifyInstance, services: ApiServices): void {
  const { config, metrics } = services;
  // A binary-extension body starts with Inference-Header-Content-Length bytes of JSON; the raw tensors follow.
  // The JSON header goes on to schema validation like any JSON body; the raw part is kept aside for the handler.
  // Per-request state lives on the request itself (a decoration): WeakMaps keyed by every request cost the
  // garbage collector measurably on the tiny MLP (ephemerons are traced on every collection).
  app.decorateRequest('inferBody', null);
  // One budget per API process, shared with the gRPC transport (services.inflightBytes).
  const inflight = services.inflightBytes;
  // A JSON body is bounded by both limits (an operator who lowers the request limit lowers it for JSON too).
  const maxJsonBytes = Math.min(config.GANTRY_MAX_JSON_REQUEST_BYTES, config.GANTRY_MAX_REQUEST_BYTES);
  const refuse = (reply: FastifyReply, limit: string, error: Error): Error => {
    metrics.limitRejections.inc({ limit });
    // The rest of a refused body is not worth reading: close the connection after the answer.
    void reply.header('connection', 'close');
    return error;
  };
  const busy = () => inflightBudgetExceeded(inflight);
  const tooLarge = (binary: boolean) =>
    binary || maxJsonBytes === config.GANTRY_MAX_REQUEST_BYTES
      ? errors.requestTooLarge(config.GANTRY_MAX_REQUEST_BYTES)
      : errors.jsonRequestTooLarge(maxJsonBytes);
  // What a JSON body may cost to parse (containers, strings), checked before any parse.
  const costBounds = jsonCostBounds(config.GANTRY_MAX_BYTES_ELEMENTS);
  // Large JSON parts are parsed off the event loop (so no body can stall other callers or liveness); threads
  // start on the first such body and end with the app.
  const parsePool =
    config.GANTRY_JSON_PARSE_THREADS > 0
      ? new JsonParsePool({
          threads: config.GANTRY_JSON_PARSE_THREADS,
          maxOldGenerationSizeMb: parseThreadHeapMb(maxJsonBytes),
          onThreadError: (error) => app.log.error({ err: error }, 'A JSON parse thread failed'),
        })
      : undefined;
  if (parsePool !== undefined) app.addHook('onClose', () => parsePool.close());
  registerResponseCompression(app, { minBytes: config.GANTRY_RESPONSE_COMPRESSION_MIN_BYTES });
  const decompressedTooLarge = (coding: RequestCoding, limitBytes: number, binary: boolean) =>
    new GantryError(
      ErrorCode.PayloadTooLarge,
      `The request body, decompressed (Content-Encoding: ${coding}), exceeds ${limitBytes} bytes, the limit of ${binary || maxJsonBytes === config.GANTRY_MAX_REQUEST_BYTES ? 'GANTRY_MAX_REQUEST_BYTES' : 'GANTRY_MAX_JSON_REQUEST_BYTES'}.`,
    );

  // Before a byte of the body is read: refuse what is too large or does not fit the in-flight budget, and tie
  // the body's reservation to the response, so it is released exactly once on every path.
  // A callback hook, not an async one: no promise per request on the hot path.
  app.addHook('preParsing', (request, reply, payload, done) => {
    const binary = request.headers[inferenceHeaderContentLength] !== undefined;
    const limitBytes = binary ? config.GANTRY_MAX_REQUEST_BYTES : maxJsonBytes;
    let coding: RequestCoding;
    try {
      coding = requestCodingOf(request.headers['content-encoding']);
    } catch (error) {
      return done(error as Error);
    }
    // A Content-Type Fastify cannot parse would be refused (415) before the catch-all parser below is chosen.
    const contentType = request.headers['content-type'];
    if (contentType !== undefined && !parsableMediaType.test(contentType)) delete request.headers['content-type'];
    const lengthHeader = request.headers['content-length'];
    const sentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
    const reservation = inflight.open();
    reply.raw.once('close', () => reservation.release());
    if (sentLength !== undefined) {
      if (sentLength > limitBytes) return done(refuse(reply, binary ? 'request_body' : 'json_body', tooLarge(binary)));
      // A compressed body is reserved as it inflates: its Content-Length says nothing of what it will hold.
      if (coding === 'identity' && !reservation.grow(sentLength)) return done(refuse(reply, 'inflight_bytes', busy()));
    }
    const contentLength = coding === 'identity' ? sentLength : undefined;
    request.inferBody = { read: { reply, binary, coding, limitBytes, contentLength, reservation } };
    done(null, payload);
  });

  // Every body is read here, whatever its Content-Type says, or without one.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', async (request: FastifyRequest, payload: Readable) => {
    const state = request.inferBody;
    if (state === null) throw errors.internal('The request body was not prepared for reading.');
    const { read } = state;
    const limitOptions = {
      limitBytes: read.limitBytes,
      reservation: read.reservation,
      tooLarge: () => refuse(read.reply, read.binary ? 'request_body' : 'json_body', tooLarge(read.binary)),
      busy: () => refuse(read.reply, 'inflight_bytes', busy()),
    };
    let body: Buffer;
    try {
      body =
        read.coding === 'identity'
          ? await readBoundedBody(payload, { ...limitOptions, contentLength: read.contentLength })
          : await readDecompressedBody(payload, {
              ...limitOptions,
              coding: read.coding,
              decompressedTooLarge: () => refuse(read.reply, 'decompressed_body', decompressedTooLarge(read.coding, read.limitBytes, read.binary)),
            });
    } catch (error) {
      // A body that ended early or was cut: its reservation goes now, not when the (dead) response closes.
      read.reservation.release();
      throw error;
    }
    const headerLength = request.headers[inferenceHeaderContentLength] as string | undefined;
    const jsonLength = jsonPartLength(body.byteLength, headerLength, maxJsonBytes);
    if (parsePool !== undefined && jsonLength !== undefined && jsonLength >= offThreadParseMinBytes) {
      const socket = request.raw.socket;
      let parsed: Awaited<ReturnType<JsonParsePool['parse']>>;
      try {
        parsed = await parsePool.parse(body, { headerLength, maxJsonBytes, bounds: costBounds, isCancelled: () => socket.destroyed });
      } catch (error) {
        const limit = limitOfParseError(error);
        if (limit !== undefined) metrics.limitRejections.inc({ limit });
        throw error;
      }
      if (parsed.binary.byteLength > 0) state.binary = parsed.binary;
      state.decoded = parsed.inputs;
      return parsed.header;
    }
    let split: ReturnType<typeof splitBinaryBody>;
    try {
      // Only a JSON part long enough to hold more containers or strings than allowed needs the scan.
      if (jsonLength !== undefined && couldExceedJsonCost(jsonLength, costBounds)) {
        checkJsonCost(body.subarray(0, jsonLength), costBounds, describeJsonPart(headerLength, jsonLength));
      }
      split = splitBinaryBody(body, headerLength, maxJsonBytes);
    } catch (error) {
      if (error instanceof GantryError && error.code === ErrorCode.PayloadTooLarge) metrics.limitRejections.inc({ limit: 'json_body' });
      if (isJsonTooCostly(error)) metrics.limitRejections.inc({ limit: 'json_cost' });
      throw error;
    }
    const { header, binary } = split;
    if (header === undefined) {
      throw errors.invalidArgument(
        'Raw binary requests (Inference-Header-Content-Length: 0) are not supported: send a JSON header that describes the inputs, then their bytes.',
      );
    }
    if (binary.byteLength > 0) state.binary = binary;
    return header;
  });
}
