import type { Tensor } from './tensor.js';
import { typedView } from './typed-view.js';

/**
 * Inference responses as JSON text with INT64/UINT64 outputs written as exact JSON numbers, as Triton writes them
 * (and tritonclient reads them). A JavaScript number cannot hold 18446744073709551615, and Node 20 has no
 * JSON.rawJSON, so responses with such outputs are written here as text instead of by JSON.stringify or
 * Fastify's serializer. Every other response keeps that faster path.
 */

/** Whether an output of this datatype needs the exact text when it is answered as JSON. */
export function needsExactJson(datatype: string): boolean {
  return datatype === 'INT64' || datatype === 'UINT64';
}

/** The tensor's elements as JSON number text, exact (the digits come from the BigInt64Array/BigUint64Array). */
function exactNumbers(tensor: Tensor): string {
  return typedView(tensor.datatype as 'INT64' | 'UINT64', tensor.data).join(',');
}

/**
 * The response object as JSON text, with the `data` of the outputs at the indices of `exact` written from those
 * tensors' bytes as exact numbers instead of from the object. Keys are in the object's order, as JSON.stringify
 * would write them, so the text reads back (with a parser that keeps 64-bit integers) as the same response.
 * @param response the response object: its envelope fields, then `outputs`, each with `data` last.
 * @param exact output index → the tensor whose `data` is written exactly.
 */
export function exactResponseText(response: { outputs: Array<Record<string, unknown>> }, exact: ReadonlyMap<number, Tensor>): string {
  const { outputs, ...envelope } = response;
  const outputTexts = outputs.map((output, index) => {
    const tensor = exact.get(index);
    if (tensor === undefined) return JSON.stringify(output);
    const fields = { ...output };
    delete fields.data;
    return `${JSON.stringify(fields).slice(0, -1)},"data":[${exactNumbers(tensor)}]}`;
  });
  // The envelope always has model_name, so its text ends in "}" after at least one member.
  return `${JSON.stringify(envelope).slice(0, -1)},"outputs":[${outputTexts.join(',')}]}`;
}
