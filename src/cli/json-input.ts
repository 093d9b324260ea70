/**
 * `--input name=@file.json`: a tensor written as JSON. Either nested arrays (`[[1, 2, 3]]`, the shape read from
 * the nesting) or an object `{"data": …, "shape": [...], "datatype": "FP32"}` (an OIP input without its name;
 * `shape` defaults to the nesting of `data`, `datatype` to the model's declared one). The values are checked
 * and encoded by the same codec the API uses, so a value the server would refuse is refused here first.
 */
import { isDatatype, type Datatype } from '../protocol/datatypes.js';
import { decodeJsonData } from '../protocol/json-tensor-codec.js';
import { GantryError } from '../errors.js';
import type { Tensor } from '../protocol/tensor.js';
import { InputFileError } from './input-file-error.js';

/** The shape of nested arrays, or a message saying where they are not rectangular. */
export function shapeOfNested(data: unknown): number[] {
  const shape: number[] = [];
  let level: unknown = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  // Every element at every level must have the same length as the first one's.
  const check = (value: unknown, depth: number, where: string) => {
    if (depth === shape.length) {
      if (Array.isArray(value)) throw new InputFileError(`The arrays are not rectangular: ${where} nests deeper than the first element.`);
      return;
    }
    if (!Array.isArray(value) || value.length !== shape[depth]) {
      throw new InputFileError(
        `The arrays are not rectangular: ${where} has ${Array.isArray(value) ? value.length : 'no'} elements where the first has ${shape[depth]}.`,
      );
    }
    value.forEach((item, index) => check(item, depth + 1, `${where}[${index}]`));
  };
  check(data, 0, 'data');
  return shape;
}

/** A datatype for values when neither the file nor the model names one: booleans BOOL, strings BYTES, numbers FP32. */
function guessedDatatype(data: unknown): Datatype {
  let first: unknown = data;
  while (Array.isArray(first)) first = first[0];
  if (typeof first === 'boolean') return 'BOOL';
  if (typeof first === 'string') return 'BYTES';
  return 'FP32';
}

/**
 * Reads a JSON input file's text as the tensor `name`.
 * @param declared the model's declared datatype for this input, when known (used unless the file names one).
 * @throws InputFileError saying what is wrong (not JSON, not rectangular, a value the datatype cannot hold).
 */
export function readJsonInput(name: string, text: string, declared?: Datatype): Tensor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputFileError(`It is not JSON (${(error as Error).message.slice(0, 120)}).`);
  }
  let data: unknown = parsed;
  let shape: number[] | undefined;
  let datatype: Datatype | undefined;
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const object = parsed as Record<string, unknown>;
    if (!('data' in object))
      throw new InputFileError('A JSON object input needs a "data" field (and optionally "shape" and "datatype"); or give the nested arrays alone.');
    data = object.data;
    if (object.shape !== undefined) {
      if (!Array.isArray(object.shape) || !object.shape.every((dimension) => Number.isSafeInteger(dimension) && (dimension as number) >= 0)) {
        throw new InputFileError('"shape" must be an array of non-negative integers.');
      }
      shape = object.shape as number[];
    }
    if (object.datatype !== undefined) {
      if (!isDatatype(object.datatype))
        throw new InputFileError(`"datatype" ${JSON.stringify(object.datatype).slice(0, 40)} is not an OIP datatype (FP32, INT64, BOOL, …).`);
      datatype = object.datatype;
    }
  }
  shape ??= shapeOfNested(data);
  datatype ??= declared ?? guessedDatatype(data);
  try {
    return { name, datatype, shape, data: decodeJsonData(name, datatype, shape, data) };
  } catch (error) {
    if (error instanceof GantryError) throw new InputFileError(error.message);
    throw error;
  }
}
