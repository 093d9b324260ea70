import { elementCount, type Datatype } from '../../protocol/datatypes.js';
import type { ModelSignature, TensorSpec } from '../../protocol/signature.js';

/**
 * Elements an example body may hold, over all its inputs. A model whose inputs need more (an image model's
 * 1×3×224×224 floats) gets no inline example: the document stays small for a hundred models (at most about
 * 8 KB of example each), and such a model is called with the binary extension or a client anyway.
 */
export const maxExampleElements = 4096;

/** An example input: its declared shape with every dynamic dimension (-1) set to 1. */
export interface ExampleInput {
  name: string;
  shape: number[];
  datatype: Datatype;
  data: Array<number | boolean | string>;
}

/** The shape an example sends for a declared one: dynamic dimensions (-1, or anything not a size) become 1. */
export function exampleShape(declared: readonly number[]): number[] {
  return declared.map((dimension) => (Number.isSafeInteger(dimension) && dimension >= 0 ? dimension : 1));
}

/**
 * One element of a datatype that every model of it accepts as well as any other: 0 for integers (a valid index, a
 * valid id), 0.5 for floats (finite in FP16 too), false, and a short word for BYTES.
 */
function exampleElement(datatype: Datatype): number | boolean | string {
  switch (datatype) {
    case 'BOOL':
      return false;
    case 'BYTES':
      return 'text';
    case 'FP16':
    case 'FP32':
    case 'FP64':
      return 0.5;
    default:
      return 0;
  }
}

function exampleInput(spec: TensorSpec): ExampleInput {
  const shape = exampleShape(spec.shape);
  return {
    name: spec.name,
    shape,
    datatype: spec.datatype,
    data: new Array<number | boolean | string>(elementCount(shape)).fill(exampleElement(spec.datatype)),
  };
}

/**
 * A request body for the model's signature that the model answers as it is: every input at its declared shape
 * (dynamic dimensions 1), JSON data of one plausible value.
 * @returns undefined when the inputs need more than maxExampleElements elements together.
 */
export function exampleInferBody(signature: ModelSignature): { inputs: ExampleInput[] } | undefined {
  let elements = 0;
  for (const input of signature.inputs) {
    elements += elementCount(exampleShape(input.shape));
    if (elements > maxExampleElements) return undefined;
  }
  return { inputs: signature.inputs.map(exampleInput) };
}
