import type { InferenceResult } from '../inference/inference-call.js';
import type { ResultRendering } from '../inference/result-rendering.js';
import type { Tensor } from '../protocol/tensor.js';
import { encodeInferResponseParts } from '../protocol/binary-extension.js';
import { ErrorCode, type WireError } from '../errors.js';
import type { BatchRecord } from './batch-record.js';
import type { BatchStore } from './batch-store.js';
import { decodeStoredAnswer } from './stored-answer.js';

/** Lines read from Redis per round trip while streaming results (bounds what is held at once). */
const linesPerRead = 256;

/** The data plane's rendering of an answer (result-rendering.ts renderResult), handed in by the transport. */
export type RenderResult = (rendering: ResultRendering, outputs: readonly Tensor[]) => InferenceResult;

/** A line's `lines` entry (batch-store.ts). */
interface LineMeta {
  i: string;
  c?: number;
  o?: 1;
  r?: Omit<ResultRendering, 'id'>;
}

/** The result of a line the cancel took before it ran. */
const cancelledLine: WireError = { code: ErrorCode.Cancelled, message: 'The batch was cancelled before this line ran.' };

function errorLine(id: string, error: WireError): string {
  return `${JSON.stringify({ id, error: { error: error.message, code: error.code } })}\n`;
}

/**
 * One result line: `{"id": <line id>, "response": <the OIP JSON response /infer would have answered>}` (64-bit
 * integers written exactly, as /infer writes them) or `{"id": ..., "error": {"error": message, "code": CODE}}`.
 */
function resultLine(record: BatchRecord, meta: LineMeta, stored: Buffer | null, render: RenderResult): string {
  if (stored === null) return errorLine(meta.i, cancelledLine);
  const answer = decodeStoredAnswer(stored);
  if (!answer.ok) return errorLine(meta.i, answer.error);
  const shared = meta.r ?? record.rendering;
  if (shared === undefined) return errorLine(meta.i, { code: ErrorCode.Internal, message: 'The rendering of this line is missing.' });
  const rendering: ResultRendering = { ...shared, ...(meta.o === 1 ? { id: meta.i } : {}) };
  const result = render(rendering, answer.outputs);
  const encoded = encodeInferResponseParts(
    { model_name: result.modelName, model_version: result.modelVersion, ...(result.id === undefined ? {} : { id: result.id }) },
    result.outputs,
  );
  const response = encoded.serialized ?? JSON.stringify(inInferOrder(encoded.json as Record<string, unknown>));
  return `{"id":${JSON.stringify(meta.i)},"response":${response}}\n`;
}

/**
 * The JSON response with its fields in the order /infer's response schema writes them (model_name, model_version,
 * id, parameters, outputs; each output name, shape, datatype, parameters, data), so a line's response is the same
 * text /infer answers, not only the same values.
 */
function inInferOrder(json: Record<string, unknown>): Record<string, unknown> {
  const ordered = (value: Record<string, unknown>, keys: readonly string[]) =>
    Object.fromEntries(keys.filter((key) => value[key] !== undefined).map((key) => [key, value[key]]));
  const response = ordered(json, ['model_name', 'model_version', 'id', 'parameters']);
  response.outputs = ((json.outputs as Array<Record<string, unknown>> | undefined) ?? []).map((output) =>
    ordered(output, ['name', 'shape', 'datatype', 'parameters', 'data']),
  );
  return response;
}

/**
 * The results of lines [0, lineCount) of a batch as JSONL, in input order, read `linesPerRead` lines at a time:
 * memory stays bounded by one read whatever the batch's size. `lineCount` is the finished prefix
 * (BatchStore.finishedPrefix): every line before it has a result or was cancelled.
 */
export async function* batchResultLines(store: BatchStore, record: BatchRecord, lineCount: number, render: RenderResult): AsyncGenerator<Buffer> {
  for (let from = 0; from < lineCount; from += linesPerRead) {
    const to = Math.min(lineCount, from + linesPerRead);
    const { lines, results } = await store.readLines(record.id, from, to);
    let text = '';
    for (let index = 0; index < lines.length; index += 1) {
      const metaText = lines[index];
      // Gone only when the batch expired while it was being streamed: the stream ends short.
      if (metaText === null || metaText === undefined) return;
      text += resultLine(record, JSON.parse(metaText) as LineMeta, results[index] ?? null, render);
    }
    yield Buffer.from(text, 'utf8');
  }
}
