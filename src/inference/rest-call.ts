import type { Principal } from '../auth/principal.js';
import { takeBinaryInputs } from '../protocol/binary-extension.js';
import type { Datatype } from '../protocol/datatypes.js';
import type { DecodedInputData } from '../protocol/decoded-json-body.js';
import type { InferRequestBody } from '../protocol/oip-schemas.js';
import type { CallInput, InferenceCall, InputContent } from './inference-call.js';
import type { CallerGone } from '../queue/caller-gone.js';

/** A REST inference request once its body was read: the JSON (or the JSON header) and what came with it. */
export interface RestInferRequest {
  principal: Principal;
  /** The model and version from the path. */
  model: string;
  version?: string | undefined;
  body: InferRequestBody;
  /** The binary part of a binary-extension body, after its JSON header. */
  binary?: Buffer | undefined;
  /** Inputs a parse thread already decoded (large bodies), by input index. */
  decoded?: Array<DecodedInputData | undefined> | undefined;
  /** Aborted when the client goes away before its answer was written. */
  signal?: CallerGone;
  /** The request's headers (lower-case names, as Node gives them): what a sticky traffic split reads. */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/** A header's value (the first, when it came several times). */
function headerValue(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Turns a REST inference request into the data plane's call. Nothing is checked here: with the binary extension
 * every input's content is deferred, and the body is split by `binary_data_size` (takeBinaryInputs) only when
 * the service reads the first of them, after the model, the inputs' names, datatypes and shapes were checked, so
 * errors come in the order they always did.
 */
export function restInferenceCall(request: RestInferRequest): InferenceCall {
  const { body, binary, decoded, headers } = request;
  const usesBinary = binary !== undefined || body.inputs.some((input) => input.parameters?.binary_data_size !== undefined);
  let split: Map<string, Uint8Array> | undefined;
  // The datatypes were checked by the time a deferred content is read.
  const binaryInputs = () =>
    (split ??= takeBinaryInputs(
      body.inputs.map((input) => ({ ...input, datatype: input.datatype as Datatype })),
      binary ?? Buffer.alloc(0),
    ));
  const jsonContent = (index: number): Exclude<InputContent, { kind: 'deferred' }> =>
    decoded === undefined ? { kind: 'json', data: body.inputs[index]!.data } : { kind: 'decoded', decoded: decoded[index] };

  const inputs: CallInput[] = body.inputs.map((input, index) => ({
    name: input.name,
    datatype: input.datatype,
    shape: input.shape,
    ...(input.parameters === undefined ? {} : { parameters: input.parameters }),
    content: usesBinary
      ? {
          kind: 'deferred',
          read: () => {
            const bytes = binaryInputs().get(input.name);
            return bytes === undefined ? jsonContent(index) : { kind: 'raw', bytes };
          },
        }
      : jsonContent(index),
  }));
  return {
    principal: request.principal,
    protocol: 'rest',
    model: request.model,
    ...(request.version === undefined ? {} : { version: request.version }),
    ...(body.id === undefined ? {} : { id: body.id }),
    inputs,
    ...(body.outputs === undefined
      ? {}
      : { outputs: body.outputs.map((output) => ({ name: output.name, ...(output.parameters === undefined ? {} : { parameters: output.parameters }) })) }),
    ...(body.parameters === undefined ? {} : { parameters: body.parameters }),
    ...(request.signal === undefined ? {} : { signal: request.signal }),
    ...(headers === undefined ? {} : { routingValue: (name: string) => headerValue(headers, name) }),
  };
}
