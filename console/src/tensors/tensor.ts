/** One input tensor as the try-it form sends it (JSON tensors of the Open Inference Protocol). */
export interface InputTensor {
  datatype: string;
  shape: number[];
  /** Row-major, flat: numbers, booleans, or strings for BYTES. */
  data: Array<number | boolean | string>;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/** A signature's shape with every variable dimension (-1) made 1: the shape the form starts from. */
export function concreteShape(shape: readonly number[]): number[] {
  return shape.map((dimension) => (dimension < 0 ? 1 : dimension));
}

/** Nested JSON arrays flattened row-major (OIP accepts both; the form always sends flat data). */
export function flatten(value: unknown): Array<number | boolean | string> {
  if (!Array.isArray(value)) return [value as number];
  const flat: Array<number | boolean | string> = [];
  const walk = (item: unknown) => {
    if (Array.isArray(item)) for (const inner of item) walk(inner);
    else flat.push(item as number);
  };
  walk(value);
  return flat;
}

/** "1, 256" → [1, 256]; throws a message naming the problem. */
export function parseShape(text: string): number[] {
  const parts = text
    .split(/[\s,[\]]+/)
    .map((part) => part.trim())
    .filter((part) => part !== '');
  const shape = parts.map(Number);
  if (shape.some((dimension) => !Number.isInteger(dimension) || dimension < 0))
    throw new Error(`The shape "${text.slice(0, 40)}" must be whole numbers ≥ 0, such as 1, 256.`);
  return shape;
}
