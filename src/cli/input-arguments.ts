/**
 * `--input name=@file.npy|@file.json|@image.png` (or `name=JSON` inline) turned into the tensors the client sends.
 * The reader is chosen by the file's extension. JSON values and images take their datatype and layout from the
 * model's declared input (its metadata), which the caller fetches only when an input needs it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TensorInput } from '../client/index.js';
import { readBytesStrings } from '../protocol/bytes-elements.js';
import type { TensorSpec } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { typedView } from '../protocol/typed-view.js';
import { InputFileError } from './input-file-error.js';
import { readJsonInput } from './json-input.js';
import { readNpy } from './npy.js';
import { planImage, readPngInput, type ImageLayout } from './png-input.js';
import { UsageError } from './usage-error.js';

/** One `--input`: the input's name, and a file (with its kind) or inline JSON text. */
export interface InputArgument {
  name: string;
  source: { kind: 'npy' | 'json' | 'png'; file: string } | { kind: 'inline'; text: string };
}

/** Parses `name=@file` / `name=JSON`; the kind of a file comes from its extension. */
export function parseInputArgument(text: string): InputArgument {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new UsageError(`--input takes name=@file.npy, name=@file.json, name=@image.png or name=JSON; got '${text.slice(0, 60)}'.`);
  const name = text.slice(0, equals);
  const value = text.slice(equals + 1);
  if (!value.startsWith('@')) return { name, source: { kind: 'inline', text: value } };
  const file = value.slice(1);
  const extension = path.extname(file).toLowerCase();
  const kind = extension === '.npy' ? 'npy' : extension === '.json' ? 'json' : extension === '.png' ? 'png' : undefined;
  if (kind === undefined)
    throw new UsageError(`--input ${name}=@${file.slice(0, 80)}: the file must end in .npy, .json or .png (its extension chooses the reader).`);
  return { name, source: { kind, file } };
}

/** Whether reading this input needs the model's declared signature (JSON values and images do; .npy files carry their own). */
export function needsSignature(argument: InputArgument): boolean {
  return argument.source.kind !== 'npy';
}

/** Reads one input into a tensor. @throws InputFileError naming the file and what is wrong with it. */
export async function readInputArgument(argument: InputArgument, declared: TensorSpec | undefined, imageLayout?: ImageLayout): Promise<Tensor> {
  const { name, source } = argument;
  if (source.kind === 'inline') {
    try {
      return readJsonInput(name, source.text, declared?.datatype);
    } catch (error) {
      if (error instanceof InputFileError) throw new InputFileError(`--input ${name}: ${error.message}`);
      throw error;
    }
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(source.file);
  } catch (error) {
    throw new InputFileError(
      `--input ${name}: cannot read '${source.file.slice(0, 200)}' (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
    );
  }
  try {
    if (source.kind === 'npy') {
      const array = readNpy(bytes);
      return { name, ...array };
    }
    if (source.kind === 'json') return readJsonInput(name, bytes.toString('utf8'), declared?.datatype);
    return readPngInput(name, bytes, planImage(declared === undefined ? undefined : { ...declared, name }, imageLayout));
  } catch (error) {
    if (error instanceof InputFileError) throw new InputFileError(`--input ${name}=@${source.file.slice(0, 200)}: ${error.message}`);
    throw error;
  }
}

/** A tensor as the client takes it: a view of its bytes in the datatype's typed array (BYTES as strings). */
export function toClientInput(tensor: Tensor): TensorInput {
  if (tensor.datatype === 'BYTES') return { data: readBytesStrings(tensor.data, tensor.name), shape: tensor.shape, datatype: 'BYTES' };
  return { data: typedView(tensor.datatype, tensor.data), shape: tensor.shape, datatype: tensor.datatype };
}
