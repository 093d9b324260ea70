import type { Datatype } from './datatypes.js';

/** One declared input or output of a model; -1 marks a dynamic dimension, [] a scalar. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}
