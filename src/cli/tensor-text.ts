/**
 * How `gantry infer` shows an output to a person: its name, datatype and shape, then its values nested as the
 * shape says, summarised like NumPy's print (past 1000 values, each axis shows its first and last 3 entries around
 * `...`). Floats with 6 significant digits; 64-bit integers exact.
 */
import type { Tensor, TensorValues } from '../client/index.js';
import { elementCount } from '../protocol/datatypes.js';
import { formatShape } from '../protocol/shape-text.js';

/** Values past which printing summarises, and the entries each axis keeps at either end. */
export const summariseAbove = 1000;
const edgeItems = 3;

function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return String(value);
    if (!Number.isFinite(value)) return String(value);
    return String(Number(value.toPrecision(6)));
  }
  if (typeof value === 'string') return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
  return String(value);
}

/** The values of `data` nested by `shape`, summarised when there are more than `summariseAbove`. */
export function formatValues(data: TensorValues, shape: readonly number[]): string {
  if (shape.length === 0) return formatValue(data[0]);
  const summarise = data.length > summariseAbove;
  const strides = shape.map((_, axis) => elementCount(shape.slice(axis + 1)));
  const render = (axis: number, offset: number, indent: string): string => {
    const size = shape[axis]!;
    const indices =
      summarise && size > 2 * edgeItems
        ? [...Array.from({ length: edgeItems }, (_, index) => index), -1, ...Array.from({ length: edgeItems }, (_, index) => size - edgeItems + index)]
        : Array.from({ length: size }, (_, index) => index);
    if (axis === shape.length - 1) return `[${indices.map((index) => (index < 0 ? '...' : formatValue(data[offset + index]))).join(', ')}]`;
    const inner = indices.map((index) => (index < 0 ? '...' : render(axis + 1, offset + index * strides[axis]!, `${indent} `)));
    const separator = `,${'\n'.repeat(shape.length - axis - 1)}${indent} `;
    return `[${inner.join(separator)}]`;
  };
  return render(0, 0, '');
}

/** `name  DATATYPE  [shape]` and the values under it. */
export function formatOutput(tensor: Tensor): string {
  return `${tensor.name}  ${tensor.datatype}  ${formatShape(tensor.shape)}\n${formatValues(tensor.data, tensor.shape)}\n`;
}

/** An output as the OIP JSON response writes it (flat data; 64-bit integers as bigints, printed exactly). */
export function outputJson(tensor: Tensor): { name: string; datatype: string; shape: number[]; data: unknown[] } {
  return { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, data: Array.from(tensor.data as ArrayLike<unknown>) };
}
