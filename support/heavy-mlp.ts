import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, uniformFloats } from './onnx-builder.js';
import { mulberry32 } from './prng.js';

/**
 * A compute-bound model with the tiny MLP's signature (input [batch, 256] → output [batch, 16]) and three 1024-wide
 * hidden layers, about 50 times the tiny MLP's multiply-adds: the slower shadow (shadow-overhead.ts) and the model
 * whose throughput grows with workers (worker-scaling.ts).
 */
export function heavyMlp(): Uint8Array {
  const random = mulberry32(7);
  const widths = [256, 1024, 1024, 1024, 16];
  const initializers = [];
  const nodes = [];
  let previous = 'input';
  for (let layer = 0; layer < widths.length - 1; layer++) {
    const weight = `W${layer}`;
    initializers.push(
      makeTensor(weight, DataType.FLOAT, [widths[layer]!, widths[layer + 1]!], uniformFloats(random, widths[layer]! * widths[layer + 1]!, 0.05)),
    );
    const last = layer === widths.length - 2;
    const linear = last ? 'output' : `linear${layer}`;
    nodes.push(makeNode('MatMul', [previous, weight], [linear]));
    if (!last) {
      nodes.push(makeNode('Relu', [linear], [`hidden${layer}`]));
      previous = `hidden${layer}`;
    }
  }
  const graph = makeGraph({
    name: 'heavy_mlp',
    inputs: [makeValueInfo('input', DataType.FLOAT, ['batch', 256])],
    outputs: [makeValueInfo('output', DataType.FLOAT, ['batch', 16])],
    initializers,
    nodes,
  });
  return encodeModel(makeModel(graph, 'Gantry bench model: 256 -> 1024 -> 1024 -> 1024 -> 16.'));
}
