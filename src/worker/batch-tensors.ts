/**
 * The tensor work behind dynamic batching: which requests may share an execution, stacking their inputs and
 * cutting the outputs back. Whether a model may batch at all is registry/batching-support.ts's canBatch.
 */
import { elementCount } from '../protocol/datatypes.js';
import { readBytesElements } from '../protocol/bytes-elements.js';
import type { Tensor } from '../protocol/tensor.js';

/**
 * Requests share a batch only when everything but the batch dimension matches: the same inputs with the same
 * datatypes and trailing dimensions, and the same requested outputs. Different shapes never share a batch.
 */
export function batchCompatibilityKey(inputs: readonly Tensor[], outputs: readonly string[]): string {
  const parts = [...inputs]
    .sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0))
    .map((input) => `${input.name}:${input.datatype}:${input.shape.slice(1).join('x')}`);
  return `${parts.join('|')}=>${outputs.join(',')}`;
}

/** Rows along the batch dimension of a request (its inputs agree on it; the first input decides). */
export function batchRows(inputs: readonly Tensor[]): number {
  return inputs[0]?.shape[0] ?? 1;
}

/** Stacks the requests' inputs along dimension 0. Row-major layout makes that a plain concatenation of bytes. */
export function concatenateInputs(requests: ReadonlyArray<readonly Tensor[]>): Tensor[] {
  const first = requests[0]!;
  return first.map((template) => {
    const parts = requests.map((inputs) => inputs.find((input) => input.name === template.name)!);
    const rows = parts.reduce((sum, part) => sum + part.shape[0]!, 0);
    const bytes = parts.reduce((sum, part) => sum + part.data.byteLength, 0);
    const data = new Uint8Array(bytes);
    let offset = 0;
    for (const part of parts) {
      data.set(part.data, offset);
      offset += part.data.byteLength;
    }
    return { name: template.name, datatype: template.datatype, shape: [rows, ...template.shape.slice(1)], data };
  });
}

/**
 * Cuts a batched output back into per-request tensors, `rowsPerRequest[i]` rows each.
 * @returns undefined when the output's leading dimension is not the batch (the model does not batch the way its
 * signature suggests), so the caller can fall back to running the requests one by one.
 */
export function splitOutput(output: Tensor, rowsPerRequest: readonly number[]): Tensor[] | undefined {
  const totalRows = rowsPerRequest.reduce((sum, rows) => sum + rows, 0);
  if (output.shape[0] !== totalRows) return undefined;
  const trailing = output.shape.slice(1);
  const pieces: Tensor[] = [];
  if (output.datatype === 'BYTES') {
    const elementsPerRow = elementCount(trailing);
    const elements = readBytesElements(output.data, output.name);
    let elementIndex = 0;
    let offset = 0;
    for (const rows of rowsPerRequest) {
      let length = 0;
      for (let index = 0; index < rows * elementsPerRow; index++) length += 4 + elements[elementIndex++]!.byteLength;
      pieces.push({ name: output.name, datatype: output.datatype, shape: [rows, ...trailing], data: output.data.subarray(offset, offset + length) });
      offset += length;
    }
    return pieces;
  }
  const bytesPerRow = totalRows === 0 ? 0 : output.data.byteLength / totalRows;
  let offset = 0;
  for (const rows of rowsPerRequest) {
    const length = rows * bytesPerRow;
    pieces.push({ name: output.name, datatype: output.datatype, shape: [rows, ...trailing], data: output.data.subarray(offset, offset + length) });
    offset += length;
  }
  return pieces;
}
