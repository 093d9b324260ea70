/** `--output name=@file.npy`: an output tensor written as a .npy file (BYTES outputs have no .npy form here). */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Tensor } from '../client/index.js';
import { toFloat16Bits } from '../protocol/float16.js';
import { InputFileError } from './input-file-error.js';
import { writeNpy } from './npy.js';
import { UsageError } from './usage-error.js';

export interface OutputArgument {
  name: string;
  file: string;
}

export function parseOutputArgument(text: string): OutputArgument {
  const match = /^([^=]+)=@(.+)$/.exec(text);
  if (match === null || path.extname(match[2]!).toLowerCase() !== '.npy') {
    throw new UsageError(`--output takes name=@file.npy (an output written as a NumPy file); got '${text.slice(0, 60)}'.`);
  }
  return { name: match[1]!, file: match[2]! };
}

/** The output's elements as little-endian bytes in its datatype's layout (FP16 narrowed back from the client's Float32Array). */
function rawBytes(tensor: Tensor): Uint8Array {
  const { data, datatype } = tensor;
  if (datatype === 'BOOL') return Uint8Array.from(data as boolean[], (value) => (value ? 1 : 0));
  if (datatype === 'FP16') return new Uint8Array(Uint16Array.from(data as Float32Array, (value) => toFloat16Bits(value)).buffer);
  const view = data as Exclude<typeof data, string[] | boolean[]>;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Writes the output to its file. @throws InputFileError for a BYTES output or a file that cannot be written. */
export async function writeOutputFile(tensor: Tensor, file: string): Promise<void> {
  if (tensor.datatype === 'BYTES') throw new InputFileError(`--output ${tensor.name}: BYTES outputs have no .npy form here; print them (or use --json).`);
  const bytes = writeNpy({ datatype: tensor.datatype, shape: tensor.shape, data: rawBytes(tensor) });
  try {
    await writeFile(file, bytes);
  } catch (error) {
    throw new InputFileError(
      `--output ${tensor.name}: cannot write '${file.slice(0, 200)}' (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
    );
  }
}
