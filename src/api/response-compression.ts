import type { FastifyInstance } from 'fastify';
import { Readable, pipeline } from 'node:stream';
import { constants, createDeflate, createGzip, deflate, gzip } from 'node:zlib';

/** The codings an answer may be compressed with, as Accept-Encoding names them. */
export type ResponseCoding = 'gzip' | 'deflate';

/**
 * The coding to answer with for an Accept-Encoding header: the acceptable one (q above 0) of gzip and deflate
 * the client weighs highest, gzip on a tie; `*` stands for either when it is not named. None when the client
 * accepts neither (or sent no header): the answer then goes uncompressed, `identity` being always acceptable here.
 */
export function responseCodingFor(acceptEncoding: string | string[] | undefined): ResponseCoding | undefined {
  if (acceptEncoding === undefined) return undefined;
  const header = Array.isArray(acceptEncoding) ? acceptEncoding.join(',') : acceptEncoding;
  // What tritonclient.http sends (one bare coding) is answered without parsing.
  if (header === 'gzip' || header === 'deflate') return header;
  let gzipWeight: number | undefined;
  let deflateWeight: number | undefined;
  let anyWeight: number | undefined;
  for (const entry of header.split(',')) {
    const [rawName, ...parameters] = entry.split(';');
    const name = rawName!.trim().toLowerCase();
    let weight = 1;
    for (const parameter of parameters) {
      const match = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(parameter);
      if (match !== null) weight = Number(match[1]);
    }
    if (!Number.isFinite(weight)) continue;
    if (name === 'gzip' || name === 'x-gzip') gzipWeight = Math.max(gzipWeight ?? 0, weight);
    else if (name === 'deflate') deflateWeight = weight;
    else if (name === '*') anyWeight = weight;
  }
  const gzipFinal = gzipWeight ?? anyWeight ?? 0;
  const deflateFinal = deflateWeight ?? anyWeight ?? 0;
  if (gzipFinal <= 0 && deflateFinal <= 0) return undefined;
  return gzipFinal >= deflateFinal ? 'gzip' : 'deflate';
}

/**
 * Fastest zlib level: a tensor answer is mostly digits or float bytes, where higher levels save little more and
 * cost several times the CPU of the API process that every other caller shares.
 */
const compressionLevel = constants.Z_BEST_SPEED;

export interface ResponseCompressionOptions {
  /** Answers smaller than this many bytes go uncompressed (GANTRY_RESPONSE_COMPRESSION_MIN_BYTES). */
  minBytes: number;
}

/**
 * Compresses the answers of the routes in `app`'s context when the caller's Accept-Encoding asks for gzip or
 * deflate and the answer is at least `minBytes` long: a JSON answer off the event loop (zlib's thread pool), a
 * streamed binary-extension answer as it streams. The whole body is compressed, header and tensors together, and
 * Inference-Header-Content-Length keeps giving the length of the uncompressed JSON header, as Triton does:
 * a client decompresses the body, then splits it there. Every answer says `Vary: Accept-Encoding`.
 */
export function registerResponseCompression(app: FastifyInstance, options: ResponseCompressionOptions): void {
  const { minBytes } = options;
  app.addHook('onSend', (request, reply, payload, done) => {
    const vary = reply.getHeader('vary');
    if (vary === undefined) void reply.header('vary', 'Accept-Encoding');
    else if (!/accept-encoding/i.test(String(vary))) void reply.header('vary', `${String(vary)}, Accept-Encoding`);
    const coding = responseCodingFor(request.headers['accept-encoding']);
    if (coding === undefined || reply.hasHeader('content-encoding') || payload === null || payload === undefined) return done(null, payload);
    if (payload instanceof Readable) {
      const declaredLength = Number(reply.getHeader('content-length'));
      if (Number.isFinite(declaredLength) && declaredLength < minBytes) return done(null, payload);
      const compressor = coding === 'gzip' ? createGzip({ level: compressionLevel }) : createDeflate({ level: compressionLevel });
      // The answer's length is unknown until it is compressed: it goes out chunked.
      reply.removeHeader('content-length');
      void reply.header('content-encoding', coding);
      // A failing source or a client gone destroys both ends; Fastify sees the compressor fail and ends the answer.
      return done(
        null,
        pipeline(payload, compressor, () => {}),
      );
    }
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return done(null, payload);
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
    if (length < minBytes) return done(null, payload);
    const compress = coding === 'gzip' ? gzip : deflate;
    compress(payload, { level: compressionLevel }, (error, compressed) => {
      if (error !== null) return done(error);
      reply.removeHeader('content-length');
      void reply.header('content-encoding', coding);
      done(null, compressed);
    });
  });
}
