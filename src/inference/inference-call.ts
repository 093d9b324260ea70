import type { Principal } from '../auth/principal.js';
import type { DecodedInputData } from '../protocol/decoded-json-body.js';
import type { Tensor } from '../protocol/tensor.js';
import type { TypedContents } from '../protocol/typed-contents.js';
import type { CallerGone } from '../queue/caller-gone.js';

export type { TypedContents } from '../protocol/typed-contents.js';

/**
 * The data plane's interface: what a transport (REST route, gRPC service, later asynchronous jobs, batch files,
 * the CLI) hands the inference service once it has read its own wire format, and what it gets back to write in
 * its own. Nothing here is validated yet: the service checks everything, in the same order and with the same
 * messages whichever transport the call came from.
 */

/** Which transport a call came in on: a metric label, and how its outputs leave (gRPC always as raw bytes). */
export type TransportProtocol = 'rest' | 'grpc';

/** An input's data, as the transport received it. */
export type InputContent =
  /** REST JSON `data`: nested or flat, 64-bit integers as exact numbers or decimal strings. */
  | { kind: 'json'; data: unknown }
  /**
   * REST JSON `data` a parse thread already decoded into raw bytes (or into the error decoding it gave); undefined
   * when the thread did not decode it (an internal error: it decodes every input that can reach this point).
   */
  | { kind: 'decoded'; decoded: DecodedInputData | undefined }
  /** Raw little-endian bytes (REST binary extension, gRPC `raw_input_contents`); BYTES as 4-byte-length-prefixed elements. */
  | { kind: 'raw'; bytes: Uint8Array }
  /** gRPC typed contents. */
  | { kind: 'typed'; contents: TypedContents }
  /**
   * Content the transport can only read once every input's name, datatype and shape passed the service's checks.
   * The service calls every `read` first, in input order, before it decodes any content, and decodes what they
   * return. REST's binary extension splits its body this way, so that an unknown model, input or datatype is
   * reported before a malformed binary part, as it always was.
   */
  | { kind: 'deferred'; read: () => Exclude<InputContent, { kind: 'deferred' }> };

/** One input tensor of a call. */
export interface CallInput {
  name: string;
  /** As the caller wrote it: checked by the service. */
  datatype: string;
  /** As the caller wrote it: checked against the model's signature by the service. */
  shape: number[];
  /** The input's own parameters (REST's `binary_data_size` is read by the transport, never by the service). */
  parameters?: Record<string, unknown>;
  content: InputContent;
}

/** One output a call asks for. */
export interface CallOutput {
  name: string;
  /** Output parameters: `classification`, and on REST `binary_data`. */
  parameters?: Record<string, unknown>;
}

/** What the service learns about a call as it goes, for usage metering (filled in place, also when the call fails). */
export interface CallUsage {
  /** The qualified model name, once resolved. */
  model?: string;
  /** The version that serves the call, once known. */
  version?: string;
  /** Rows run and worker compute time, once answered. */
  rows?: number;
  computeNs?: number;
}

/** One inference call, decoded from its transport. */
export interface InferenceCall {
  /** Who is calling: model names resolve in its tenant and allow-list. */
  principal: Principal;
  /** The transport it came on: the metrics' `protocol` label; on gRPC every output is raw bytes. */
  protocol: TransportProtocol;
  /** The model as the caller named it (bare, or `<tenant>~<name>` for an admin). */
  model: string;
  /** The version as the caller named it; undefined or '' means the version that serves by default. */
  version?: string;
  /** The request id, echoed in the answer. */
  id?: string;
  inputs: CallInput[];
  /** Outputs asked for; undefined or empty means every output of the model. */
  outputs?: CallOutput[];
  /**
   * Request parameters: `priority`, `timeout` (microseconds), REST's `binary_data_output`, … Values as JSON gives
   * them: integers as numbers (a transport that reads 64-bit integers as strings, like gRPC's `int64_param`,
   * turns them into numbers first), so the service checks them the same way whichever transport they came on.
   */
  parameters?: Record<string, unknown>;
  /** The transport's own time limit (a gRPC deadline), in ms from now; the sooner of it and `timeout` wins. */
  timeoutMs?: number;
  /** Aborted when the caller goes away (HTTP connection closed, gRPC call cancelled): a queued request is dropped. */
  signal?: CallerGone;
  /**
   * A value the call carries beside its tensors, by lower-case name: REST request headers, gRPC metadata. A model's
   * traffic split reads its sticky header here (`stickyBy: "header:x-user-id"`); undefined when absent.
   */
  routingValue?: (header: string) => string | undefined;
  /** Filled in by the service as it learns the model, version and cost. */
  usage?: CallUsage;
}

/** One output of the answer. */
export interface ResultOutput {
  /** The output as the model produced it, or its top-N classification (a BYTES tensor). */
  tensor: Tensor;
  /** Whether it leaves as raw bytes: REST's `binary_data` / `binary_data_output`, always on gRPC. */
  binary: boolean;
}

/** What the service answers; the transport writes it in its own format. */
export interface InferenceResult {
  /** The model's name as the caller may see it (bare within its own tenant). */
  modelName: string;
  /** The version that served the call. */
  modelVersion: string;
  /** The call's id, when it had one. */
  id?: string;
  /** In the order the outputs were asked for, or the model's order when none were. */
  outputs: ResultOutput[];
}
