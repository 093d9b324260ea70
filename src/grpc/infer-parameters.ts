/**
 * The protocol's `InferParameter` as @grpc/proto-loader gives it (`keepCase`, `longs: String`, `oneofs`): one of
 * the choices set, and `parameter_choice` naming which.
 */
export interface WireParameter {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
}

/** A 64-bit integer parameter as a plain number when it is one exactly, else as a bigint (the service judges it). */
function integerValue(decimal: string): number | bigint {
  const value = Number(decimal);
  return Number.isSafeInteger(value) ? value : BigInt(decimal);
}

/** One parameter's value: what a REST client would have written in JSON for it. A parameter with no choice set is null. */
function plainValue(parameter: WireParameter): unknown {
  switch (parameter.parameter_choice) {
    case 'bool_param':
      return parameter.bool_param ?? false;
    case 'int64_param':
      return integerValue(parameter.int64_param ?? '0');
    case 'uint64_param':
      return integerValue(parameter.uint64_param ?? '0');
    case 'double_param':
      return parameter.double_param ?? 0;
    case 'string_param':
      return parameter.string_param ?? '';
    default:
      return null;
  }
}

/**
 * A `map<string, InferParameter>` as plain values (`{"priority": 2, "timeout": 5000}`), so the inference service
 * reads gRPC and REST parameters the same way; undefined when there are none.
 */
export function plainParameters(parameters: Record<string, WireParameter> | undefined): Record<string, unknown> | undefined {
  if (parameters === undefined) return undefined;
  const names = Object.keys(parameters);
  if (names.length === 0) return undefined;
  const plain: Record<string, unknown> = {};
  for (const name of names) plain[name] = plainValue(parameters[name]!);
  return plain;
}

/** A plain parameter value as an `InferParameter` for a response (booleans, integers, doubles, text). */
export function wireParameter(value: unknown): WireParameter {
  if (typeof value === 'boolean') return { bool_param: value };
  if (typeof value === 'bigint') return { int64_param: value.toString() };
  if (typeof value === 'number') return Number.isInteger(value) ? { int64_param: String(value) } : { double_param: value };
  return { string_param: typeof value === 'string' ? value : JSON.stringify(value) };
}
