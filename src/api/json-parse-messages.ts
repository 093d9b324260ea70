import type { ErrorCode } from '../errors.js';
import type { DecodedInputData } from '../protocol/decoded-json-body.js';
import type { JsonCostBounds } from '../protocol/json-cost.js';

/** One body for a JSON parse thread; `body` is transferred (the API no longer holds it while it is parsed). */
export interface JsonParseRequest {
  id: number;
  body: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  headerLength: string | undefined;
  maxJsonBytes: number;
  bounds: JsonCostBounds;
}

export type JsonParseReply =
  | {
      id: number;
      ok: true;
      header: unknown;
      inputs: Array<DecodedInputData | undefined>;
      /** The binary part of a binary-extension body, handed back (transferred) with the body's buffer. */
      binary: { buffer: ArrayBuffer; byteOffset: number; byteLength: number } | undefined;
    }
  | {
      id: number;
      ok: false;
      error: { code: ErrorCode; message: string };
      /** The limit label when a limit refused the body (its cost). */
      limit: string | undefined;
    };
