import type { Readable } from 'node:stream';
import { ErrorCode, GantryError } from '../errors.js';

/** The bounds of one batch body (README "Limits"). */
export interface BatchBodyLimits {
  /** GANTRY_MAX_BATCH_LINE_BYTES: most bytes of one line, its line break excluded. */
  maxLineBytes: number;
  /** GANTRY_MAX_BATCH_LINES: most lines (blank lines do not count). */
  maxLines: number;
  /** GANTRY_MAX_BATCH_BYTES: most bytes of the body in all. */
  maxBytes: number;
}

const newline = 0x0a;
const carriageReturn = 0x0d;

/** True for a line of spaces, tabs and carriage returns only. */
function isBlank(line: Buffer): boolean {
  for (const byte of line) if (byte !== 0x20 && byte !== 0x09 && byte !== carriageReturn) return false;
  return true;
}

/** The limit each refusal of the reader is, for `gantry_limit_rejections_total{limit}`. */
const refusedLimits = new WeakMap<GantryError, BatchBodyLimit>();

/** The bounds' names as gantry_limit_rejections_total labels them. */
export type BatchBodyLimit = 'batch_line_bytes' | 'batch_lines' | 'batch_bytes';

/** Which bound an error of {@link readBatchLines} is; undefined for any other error. */
export function batchBodyLimitOf(error: unknown): BatchBodyLimit | undefined {
  return error instanceof GantryError ? refusedLimits.get(error) : undefined;
}

function tooLarge(limit: BatchBodyLimit, message: string): GantryError {
  const error = new GantryError(ErrorCode.PayloadTooLarge, message);
  refusedLimits.set(error, limit);
  return error;
}

/**
 * The lines of a JSONL body as they arrive (LF or CRLF line breaks, the last line with or without one), without
 * blank lines: at most one line and one network chunk are held at once. Stops with 413 naming the variable as soon
 * as a line, the line count or the body passes its bound, before reading further.
 */
export async function* readBatchLines(body: Readable, limits: BatchBodyLimits): AsyncGenerator<Buffer> {
  let pieces: Buffer[] = [];
  let lineBytes = 0;
  let bodyBytes = 0;
  let lines = 0;
  const finishLine = (): Buffer | undefined => {
    let line = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, lineBytes);
    pieces = [];
    lineBytes = 0;
    if (line.length > 0 && line[line.length - 1] === carriageReturn) line = line.subarray(0, line.length - 1);
    if (isBlank(line)) return undefined;
    lines += 1;
    if (lines > limits.maxLines)
      throw tooLarge('batch_lines', `The batch has more than GANTRY_MAX_BATCH_LINES (${limits.maxLines}) lines; split it into several batches.`);
    return line;
  };
  const addPiece = (piece: Buffer) => {
    if (piece.length === 0) return;
    lineBytes += piece.length;
    // One byte of slack: a CRLF line's carriage return is not part of the line.
    if (lineBytes > limits.maxLineBytes + 1) {
      throw tooLarge('batch_line_bytes', `Line ${lines} of the batch is longer than GANTRY_MAX_BATCH_LINE_BYTES (${limits.maxLineBytes} bytes).`);
    }
    pieces.push(piece);
  };
  for await (const received of body) {
    const chunk = typeof received === 'string' ? Buffer.from(received, 'utf8') : (received as Buffer);
    bodyBytes += chunk.length;
    if (bodyBytes > limits.maxBytes) throw tooLarge('batch_bytes', `The batch body is larger than GANTRY_MAX_BATCH_BYTES (${limits.maxBytes} bytes).`);
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(newline, start);
      if (end === -1) break;
      addPiece(chunk.subarray(start, end));
      start = end + 1;
      const line = finishLine();
      if (line !== undefined) {
        if (line.length > limits.maxLineBytes) {
          throw tooLarge('batch_line_bytes', `Line ${lines - 1} of the batch is longer than GANTRY_MAX_BATCH_LINE_BYTES (${limits.maxLineBytes} bytes).`);
        }
        yield line;
      }
    }
    // The rest of the chunk begins the next line: copied, so the network chunk it came in is not kept alive.
    if (start < chunk.length) addPiece(Buffer.from(chunk.subarray(start)));
  }
  if (lineBytes > 0) {
    const line = finishLine();
    if (line !== undefined) {
      if (line.length > limits.maxLineBytes)
        throw tooLarge('batch_line_bytes', `Line ${lines - 1} of the batch is longer than GANTRY_MAX_BATCH_LINE_BYTES (${limits.maxLineBytes} bytes).`);
      yield line;
    }
  }
}
