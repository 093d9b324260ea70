import type { Datatype } from './datatypes.js';

/**
 * A tensor as it travels inside Gantry: raw little-endian bytes in row-major order. BYTES tensors hold each
 * element as a 4-byte little-endian length followed by the element's bytes.
 */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: Uint8Array;
}

/** What a request declares about one tensor before its bytes are read. */
export interface TensorDescriptor {
  name: string;
  datatype: Datatype;
  shape: number[];
}
