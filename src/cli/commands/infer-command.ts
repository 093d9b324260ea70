/** `gantry infer MODEL --input name=@file …`: one inference, its outputs printed or written to .npy files. */
import type { InferResult, ModelMetadata } from '../../client/index.js';
import type { TensorSpec } from '../../protocol/signature.js';
import type { Tensor } from '../../protocol/tensor.js';
import { stringOption, stringOptions, type ClientCommand, type Invocation } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { needsSignature, parseInputArgument, readInputArgument, toClientInput, type InputArgument } from '../input-arguments.js';
import { parseOutputArgument, writeOutputFile } from '../output-files.js';
import { printJson } from '../output.js';
import type { ImageLayout } from '../png-input.js';
import { formatOutput, outputJson } from '../tensor-text.js';
import { UsageError } from '../usage-error.js';

export function imageLayoutOption(text: string | undefined): ImageLayout | undefined {
  if (text === undefined) return undefined;
  const lower = text.toLowerCase();
  if (lower !== 'nchw' && lower !== 'nhwc') throw new UsageError(`--image-layout is nchw or nhwc, got '${text.slice(0, 20)}'.`);
  return lower;
}

/**
 * Reads every --input of a command line into tensors. The model's metadata is fetched first only when an input
 * needs its declared datatype or shape (JSON values, images).
 */
export async function readInputs(invocation: Invocation, model: string, version: string | undefined): Promise<Tensor[]> {
  const argumentsGiven: InputArgument[] = stringOptions(invocation.values, 'input').map(parseInputArgument);
  if (argumentsGiven.length === 0) throw new UsageError('Give at least one --input name=@file.npy|@file.json|@image.png.');
  const names = new Set<string>();
  for (const argument of argumentsGiven) {
    if (names.has(argument.name)) throw new UsageError(`--input ${argument.name} is given twice.`);
    names.add(argument.name);
  }
  const layout = imageLayoutOption(stringOption(invocation.values, 'image-layout'));
  let metadata: ModelMetadata | undefined;
  if (argumentsGiven.some(needsSignature)) metadata = await invocation.client().models.metadata(model, version);
  const declared = (name: string): TensorSpec | undefined => metadata?.inputs.find((input) => input.name === name);
  return Promise.all(argumentsGiven.map((argument) => readInputArgument(argument, declared(argument.name), layout)));
}

/** Prints an inference answer (or its JSON), writing the outputs named by --output to files instead. */
export async function presentResult(invocation: Invocation, result: InferResult): Promise<void> {
  const outputFiles = stringOptions(invocation.values, 'output').map(parseOutputArgument);
  for (const wanted of outputFiles) {
    const tensor = result.outputs.find((output) => output.name === wanted.name);
    if (tensor === undefined)
      throw new UsageError(
        `--output ${wanted.name}: the answer has no output '${wanted.name}' (it has ${result.outputs.map((output) => output.name).join(', ')}).`,
      );
    await writeOutputFile(tensor, wanted.file);
    invocation.stderr.write(`wrote ${tensor.name} (${tensor.datatype} [${tensor.shape.join(',')}]) to ${wanted.file}\n`);
  }
  if (invocation.json) {
    printJson(invocation.stdout, {
      model_name: result.modelName,
      ...(result.modelVersion === undefined ? {} : { model_version: result.modelVersion }),
      ...(result.id === undefined ? {} : { id: result.id }),
      ...(result.parameters === undefined ? {} : { parameters: result.parameters }),
      outputs: result.outputs.map(outputJson),
    });
    return;
  }
  const written = new Set(outputFiles.map((output) => output.name));
  invocation.stdout.write(`model ${result.modelName}${result.modelVersion === undefined ? '' : ` version ${result.modelVersion}`}\n`);
  for (const output of result.outputs) if (!written.has(output.name)) invocation.stdout.write(formatOutput(output));
}

export const inputDetails = [
  '--input NAME=@FILE    an input from a file, by extension: .npy (NumPy), .json (nested arrays or',
  '                      {"data", "shape", "datatype"}), .png (laid out per the model\'s declared input); repeatable',
  '--input NAME=JSON     an input written inline: --input x=[[1,2,3]]',
  '--image-layout L      nchw or nhwc, for a PNG when the declared shape does not tell',
];

export const inferCommand: ClientCommand = {
  kind: 'client',
  words: ['infer'],
  summary: 'runs one inference from .npy, JSON or PNG inputs and prints the outputs (or writes them to .npy)',
  synopsis: 'MODEL --input NAME=@FILE [--input …] [--version V] [--output NAME=@FILE.npy] [--binary]',
  details: [
    ...inputDetails,
    '--version V           a version number or alias (default: the serving version)',
    '--output NAME=@F.npy  writes that output to a .npy file instead of printing it; repeatable',
    '--binary              send the inputs with the binary tensor extension (default: from 16 KiB of data)',
    "--priority N          the request's schedule priority (1 is the highest)",
    '',
    'Example: gantry infer tiny-mlp --input input=@x.npy --output output=@y.npy',
  ],
  options: {
    input: { type: 'string', multiple: true, short: 'i' },
    output: { type: 'string', multiple: true, short: 'o' },
    version: { type: 'string' },
    'image-layout': { type: 'string' },
    binary: { type: 'boolean' },
    priority: { type: 'string' },
  },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const model = invocation.positionals[0]!;
    const version = stringOption(invocation.values, 'version');
    const priorityText = stringOption(invocation.values, 'priority');
    const priority = priorityText === undefined ? undefined : Number(priorityText);
    if (priority !== undefined && (!Number.isSafeInteger(priority) || priority < 1))
      throw new UsageError(`--priority is a whole number from 1, got '${priorityText!.slice(0, 20)}'.`);
    // Checked before anything is sent: a typo in --output costs no inference.
    stringOptions(invocation.values, 'output').forEach(parseOutputArgument);
    const tensors = await readInputs(invocation, model, version);
    const inputs = Object.fromEntries(tensors.map((tensor) => [tensor.name, toClientInput(tensor)]));
    const result = await invocation.client().infer(model, inputs, {
      version,
      ...(invocation.values.binary === true ? { binary: true } : {}),
      ...(priority === undefined ? {} : { priority }),
    });
    await presentResult(invocation, result);
    return ExitCode.Ok;
  },
};
