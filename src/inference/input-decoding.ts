import { describeValue, errors } from '../errors.js';
import { bf16Message } from '../protocol/binary-extension.js';
import { countBytesElements } from '../protocol/bytes-elements.js';
import { byteSizeOf, elementCount, isDatatype, type Datatype } from '../protocol/datatypes.js';
import type { DecodedInputData } from '../protocol/decoded-json-body.js';
import { decodeErrorFromWire, decodeJsonData } from '../protocol/json-tensor-codec.js';
import type { Tensor, TensorDescriptor } from '../protocol/tensor.js';
import { formatShape } from '../protocol/shape-text.js';
import { decodeTypedContents } from '../protocol/typed-contents.js';
import type { CallInput, InputContent } from './inference-call.js';

/** Content a service can decode: a deferred one once read. */
type ReadContent = Exclude<InputContent, { kind: 'deferred' }>;

/**
 * Each input's name, datatype and shape, with the datatype checked against the protocol's list.
 * @throws GantryError(INVALID_ARGUMENT) naming the input for BF16 (which onnxruntime-node cannot run) or an
 * unknown datatype.
 */
export function describeInputs(inputs: readonly CallInput[]): TensorDescriptor[] {
  return inputs.map((input) => {
    if (input.datatype === 'BF16') throw errors.invalidArgument(`Input '${input.name}': ${bf16Message}`);
    if (!isDatatype(input.datatype)) {
      throw errors.invalidArgument(
        `Input '${input.name}': unsupported datatype ${describeValue(input.datatype)}; supported are BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64 and BYTES.`,
      );
    }
    return { name: input.name, datatype: input.datatype, shape: input.shape };
  });
}

/**
 * Decodes every input into raw little-endian bytes, after its descriptor passed validateInputs. Deferred
 * contents are read first, all of them in input order, then every content is decoded in input order, so the
 * first bad input gives the same error whichever way its data came.
 * @throws GantryError(INVALID_ARGUMENT) naming the first input whose data does not fit its datatype and shape.
 */
export function decodeInputs(inputs: readonly CallInput[], descriptors: readonly TensorDescriptor[]): Tensor[] {
  const contents: ReadContent[] = inputs.map((input) => (input.content.kind === 'deferred' ? input.content.read() : input.content));
  return contents.map((content, index) => {
    const descriptor = descriptors[index]!;
    return { ...descriptor, data: decodeContent(descriptor, content) };
  });
}

function decodeContent(descriptor: TensorDescriptor, content: ReadContent): Uint8Array {
  const { name, datatype, shape } = descriptor;
  switch (content.kind) {
    case 'json':
      return decodeJsonData(name, datatype, shape, content.data);
    case 'decoded':
      return takeDecoded(content.decoded, name);
    case 'raw':
      checkRawSize(descriptor, content.bytes);
      return content.bytes;
    case 'typed':
      return decodeTypedContents(name, datatype, shape, content.contents);
  }
}

/** An input's data as a parse thread decoded it: its bytes, or the error decodeJsonData threw there. */
function takeDecoded(decoded: DecodedInputData | undefined, inputName: string): Uint8Array {
  // The thread decodes every input whose name, datatype and shape passed the checks that come before this.
  if (decoded === undefined) throw errors.internal(`Input '${inputName.slice(0, 100)}' was not decoded by the JSON parse thread.`);
  if (decoded.error !== undefined) throw decodeErrorFromWire(decoded.error);
  return decoded.bytes;
}

/**
 * Raw bytes must hold exactly the shape's elements: datatype size × element count, or for BYTES that many
 * length-prefixed elements (counted by walking the lengths, so no element is copied).
 */
function checkRawSize(descriptor: TensorDescriptor, bytes: Uint8Array): void {
  const { name, datatype, shape } = descriptor;
  const count = elementCount(shape);
  if (datatype === 'BYTES') {
    const found = countBytesElements(bytes, name, count);
    if (found !== count) {
      const holds = found > count ? `more than ${count}` : String(found);
      throw errors.invalidArgument(`Input '${name}': shape ${formatShape(shape)} needs ${count} BYTES elements but its binary data holds ${holds}.`);
    }
    return;
  }
  const expected = count * byteSizeOf(datatype as Datatype);
  if (bytes.byteLength !== expected) {
    throw errors.invalidArgument(
      `Input '${name}': ${datatype} shape ${formatShape(shape)} needs ${expected} bytes but its binary data holds ${bytes.byteLength}.`,
    );
  }
}
