import type { Multipart, MultipartValue } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { errors } from '../errors.js';

/** How a multipart model upload's parts are handled: the file streamed to the store, the warm-up text checked. */
export interface MultipartUploadHandlers<Stored> {
  /** Streams the field `file` into the store (the stream ends truncated when the file passes the upload limit). */
  storeFile(file: Readable & { truncated?: boolean }): Promise<Stored>;
  /** Gives back what storeFile stored, when the upload is refused after it (a bad warm-up field after the file). */
  abandon(stored: Stored): Promise<void>;
  /** Checks the text field `warmup` (size, shape); returns its text, or throws the 400/413 that says what is wrong. */
  checkWarmup(field: MultipartValue): string;
}

/**
 * Reads a refused upload's file to its end and drops it (the multipart limit still bounds it): answering while the
 * client is still sending makes many clients see a reset connection instead of the 400 or 413 that says what was
 * wrong.
 */
export async function discardStream(stream: Readable): Promise<void> {
  stream.resume();
  await finished(stream).catch(() => undefined);
}

/**
 * Reads a multipart model upload: the ONNX file in the field `file` and an optional warm-up sample in the text field
 * `warmup`, in either order. A sample before the file is checked before a byte of the file is stored (a bad one costs
 * no upload); one after it is checked once the file is stored, which is then given back if the sample is refused.
 * An empty `warmup` field counts as none. Other text fields are ignored. A refusal is thrown only after the rest of the body was read, so the client gets it.
 * @throws GantryError 400 without a file field, with two samples or a bad sample; 413 for a file or sample too large.
 */
export async function readMultipartUpload<Stored>(
  request: FastifyRequest,
  handlers: MultipartUploadHandlers<Stored>,
): Promise<{ stored: Stored; warmupText?: string }> {
  let stored: Stored | undefined;
  let warmupText: string | undefined;
  let refusal: unknown;
  const refuse = (error: unknown) => {
    refusal ??= error;
  };
  try {
    for await (const part of request.parts() as AsyncIterableIterator<Multipart>) {
      if (part.type === 'field') {
        if (part.fieldname !== 'warmup' || refusal !== undefined) continue;
        // An empty field is no sample: forms (swagger-ui's "Try it out" among them) send every field they show.
        if (typeof part.value === 'string' && part.value.trim() === '') continue;
        if (warmupText !== undefined) refuse(errors.invalidArgument("Give one warm-up sample: the upload has more than one field 'warmup'."));
        else {
          try {
            warmupText = handlers.checkWarmup(part);
          } catch (error) {
            refuse(error);
          }
        }
        continue;
      }
      if (part.fieldname !== 'file' || stored !== undefined || refusal !== undefined) {
        if (part.fieldname !== 'file')
          refuse(errors.invalidArgument(`A multipart upload takes the ONNX file in the field 'file', not '${part.fieldname.slice(0, 40)}'.`));
        await discardStream(part.file);
        continue;
      }
      stored = await handlers.storeFile(part.file);
    }
  } catch (error) {
    refuse(error);
  }
  if (refusal === undefined && stored === undefined) refuse(errors.invalidArgument("A multipart upload needs the ONNX file in a field named 'file'."));
  if (refusal !== undefined) {
    if (stored !== undefined) await handlers.abandon(stored);
    throw refusal;
  }
  return { stored: stored!, ...(warmupText === undefined ? {} : { warmupText }) };
}
