/** One inference in the binary tensor extension, and how two answers to it are compared, by output datatype. */
import { inferenceHeaderContentLength, splitInferResponse, type InferRequest, type ReceivedOutput } from '../infer-encoding.js';

/**
 * An element passes when |cuda - cpu| <= abs + rel·|cpu|. onnxruntime's CUDA provider uses TF32 for FP32
 * MatMul/Conv by default on Ampere and newer (the H200 is Hopper: 10-bit mantissas, ~5e-4 relative rounding per
 * operand) and cuDNN picks its own convolution algorithms, so many layers in a row drift by ~1e-3; a real defect (a
 * wrong layout, buffer or batch row) moves outputs by 0.1 or more. FP64 has no TF32 path. Every other datatype
 * (integers, BOOL) must be bit-exact, and one without a row here that is not exact fails.
 */
export const floatTolerances: Record<string, { abs: number; rel: number; read: (bytes: Buffer) => ArrayLike<number> }> = {
  FP32: { abs: 1e-2, rel: 1e-2, read: (bytes) => new Float32Array(Uint8Array.from(bytes).buffer) },
  FP64: { abs: 1e-9, rel: 1e-9, read: (bytes) => new Float64Array(Uint8Array.from(bytes).buffer) },
};

export interface Comparison {
  elements: number;
  /** Largest |cuda - cpu| over float outputs (0 for exact datatypes that matched). */
  maxAbs: number;
  /** Elements outside the tolerance (exact datatypes: elements that differ). */
  outside: number;
  /** Why the answers cannot be compared element by element (other outputs, shapes or datatypes). */
  problem?: string;
}

/** POSTs the request and returns its outputs; throws unless the answer is a 200. */
export async function infer(url: string, request: InferRequest): Promise<ReceivedOutput[]> {
  const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${body.toString('utf8', 0, 500)}`);
  return splitInferResponse(body, response.headers.get(inferenceHeaderContentLength));
}

/** Elements whose bytes differ (width from the datatype: INT8, UINT8 and BOOL are one byte). */
function exactDifferences(datatype: string, actual: Buffer, expected: Buffer): number {
  const width = { INT64: 8, UINT64: 8, INT32: 4, UINT32: 4, INT16: 2, UINT16: 2, FP16: 2 }[datatype] ?? 1;
  let differing = 0;
  for (let offset = 0; offset < expected.byteLength; offset += width) {
    if (actual.compare(expected, offset, offset + width, offset, offset + width) !== 0) differing++;
  }
  return differing;
}

/** Compares `actual` (the device under test) with `expected` (the CPU), output by output. */
export function compareOutputs(actual: ReceivedOutput[], expected: ReceivedOutput[]): Comparison {
  const result: Comparison = { elements: 0, maxAbs: 0, outside: 0 };
  const describe = (outputs: ReceivedOutput[]) => outputs.map((o) => `${o.name}:${o.datatype}${JSON.stringify(o.shape)}`).join(' ');
  if (expected.length === 0 || describe(actual) !== describe(expected)) return { ...result, problem: `${describe(actual)} vs ${describe(expected)}` };
  expected.forEach((reference, index) => {
    const got = actual[index]!.binaryData;
    const want = reference.binaryData;
    if (got === undefined || want === undefined || got.byteLength !== want.byteLength) {
      result.problem = `${reference.name}: ${got?.byteLength} vs ${want?.byteLength} bytes`;
      return;
    }
    const tolerance = floatTolerances[reference.datatype];
    if (tolerance === undefined) {
      result.elements += reference.shape.reduce((a, b) => a * b, 1);
      result.outside += exactDifferences(reference.datatype, got, want);
      return;
    }
    const [a, b] = [tolerance.read(got), tolerance.read(want)];
    result.elements += b.length;
    for (let i = 0; i < b.length; i++) {
      const difference = Math.abs(a[i]! - b[i]!);
      // NaN on one side only is outside (NaN compares false); NaN on both sides agrees.
      if (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) continue;
      if (difference > result.maxAbs || Number.isNaN(difference)) result.maxAbs = Number.isNaN(difference) ? Infinity : difference;
      if (!(difference <= tolerance.abs + tolerance.rel * Math.abs(b[i]!))) result.outside++;
    }
  });
  return result;
}
