/**
 * `--input name=@image.png`: a PNG as an image tensor, laid out the way the model's declared input asks. No
 * resizing or normalisation beyond scaling: the CLI feeds the pixels as they are, so the image must already have
 * the size the model takes.
 * - Layout: NCHW when the declared shape's channel axis is second ([1,3,224,224], or [3,224,224] without a batch
 *   axis), NHWC when it is last ([1,224,224,3]); `--image-layout` decides when the shape does not tell (both
 *   axes dynamic: floats default to NCHW, UINT8 to NHWC); a rank-2 input takes the image as grey [H,W].
 * - Channels: the declared channel count (1 grey, 3 RGB, 4 RGBA); 3 when it is dynamic.
 * - Values: UINT8 inputs get 0..255; FP16/FP32/FP64 inputs get 0..1 (pixel / 255). Other datatypes are refused.
 * Without a declared signature the image becomes UINT8 [1,H,W,3].
 */
import { PNG } from 'pngjs';
import { byteSizeOf, elementCount, type Datatype } from '../protocol/datatypes.js';
import { toFloat16Bits } from '../protocol/float16.js';
import { formatShape } from '../protocol/shape-text.js';
import type { TensorSpec } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { typedView } from '../protocol/typed-view.js';
import { InputFileError } from './input-file-error.js';

export type ImageLayout = 'nchw' | 'nhwc';

/** How the pixels are placed: layout, channels, whether a batch axis leads, and the datatype. */
export interface ImagePlan {
  layout: ImageLayout | 'hw';
  channels: 1 | 3 | 4;
  batchAxis: boolean;
  datatype: 'UINT8' | 'FP16' | 'FP32' | 'FP64';
  /** Declared height and width, -1 when dynamic (checked against the image). */
  height: number;
  width: number;
}

const channelCounts = new Set([1, 3, 4]);

function channelsOf(dimension: number | undefined): 1 | 3 | 4 {
  return dimension !== undefined && channelCounts.has(dimension) ? (dimension as 1 | 3 | 4) : 3;
}

/**
 * The plan for an input declared as `spec` (or undeclared), with `layout` from `--image-layout` when given.
 * @throws InputFileError when the declared input cannot take an image (rank, datatype, a channel count of 2 or 5).
 */
export function planImage(spec: TensorSpec | undefined, layout?: ImageLayout): ImagePlan {
  if (spec === undefined) return { layout: layout ?? 'nhwc', channels: 3, batchAxis: true, datatype: 'UINT8', height: -1, width: -1 };
  const { shape, datatype } = spec;
  if (datatype !== 'UINT8' && datatype !== 'FP16' && datatype !== 'FP32' && datatype !== 'FP64') {
    throw new InputFileError(`Input '${spec.name}' is ${datatype}: an image fills UINT8 (0..255) or FP16/FP32/FP64 (0..1) inputs only.`);
  }
  if (shape.length === 2) return { layout: 'hw', channels: 1, batchAxis: false, datatype, height: shape[0]!, width: shape[1]! };
  if (shape.length !== 3 && shape.length !== 4) {
    throw new InputFileError(`Input '${spec.name}' has shape ${formatShape(shape)}: an image fills a [H,W], [C,H,W], [H,W,C], [N,C,H,W] or [N,H,W,C] input.`);
  }
  const batchAxis = shape.length === 4;
  const axes = batchAxis ? shape.slice(1) : shape;
  const firstIsChannel = channelCounts.has(axes[0]!);
  const lastIsChannel = channelCounts.has(axes[2]!);
  let chosen = layout;
  if (chosen === undefined) {
    if (firstIsChannel && !lastIsChannel) chosen = 'nchw';
    else if (lastIsChannel && !firstIsChannel) chosen = 'nhwc';
    else chosen = datatype === 'UINT8' ? 'nhwc' : 'nchw';
  }
  const [channelAxis, height, width] = chosen === 'nchw' ? [axes[0]!, axes[1]!, axes[2]!] : [axes[2]!, axes[0]!, axes[1]!];
  if (channelAxis !== -1 && !channelCounts.has(channelAxis)) {
    throw new InputFileError(
      `Input '${spec.name}' has ${channelAxis} channels in ${chosen.toUpperCase()} layout: an image gives 1 (grey), 3 (RGB) or 4 (RGBA).`,
    );
  }
  return { layout: chosen, channels: channelsOf(channelAxis), batchAxis, datatype, height, width };
}

/**
 * Decodes a PNG and lays it out as the tensor `name` according to `plan`.
 * @throws InputFileError when the bytes are not a PNG or the image's size is not the declared one.
 */
export function readPngInput(name: string, bytes: Buffer, plan: ImagePlan): Tensor {
  let image: { width: number; height: number; data: Buffer };
  try {
    image = PNG.sync.read(bytes);
  } catch (error) {
    throw new InputFileError(`It is not a readable PNG (${(error as Error).message.slice(0, 120)}).`);
  }
  const { width, height } = image;
  if ((plan.height !== -1 && plan.height !== height) || (plan.width !== -1 && plan.width !== width)) {
    throw new InputFileError(
      `The image is ${width}×${height} (width×height) but input '${name}' takes ${plan.width === -1 ? 'any' : plan.width}×${plan.height === -1 ? 'any' : plan.height}: resize it first.`,
    );
  }
  const channels = plan.channels;
  const shape = plan.layout === 'hw' ? [height, width] : plan.layout === 'nchw' ? [channels, height, width] : [height, width, channels];
  if (plan.batchAxis) shape.unshift(1);
  const datatype: Datatype = plan.datatype;
  const data = new Uint8Array(elementCount(shape) * byteSizeOf(datatype));
  const target = typedView(plan.datatype, data) as Uint8Array | Uint16Array | Float32Array | Float64Array;
  const pixels = width * height;
  const scale =
    plan.datatype === 'UINT8'
      ? (value: number) => value
      : plan.datatype === 'FP16'
        ? (value: number) => toFloat16Bits(value / 255)
        : (value: number) => value / 255;
  for (let pixel = 0; pixel < pixels; pixel++) {
    const red = image.data[pixel * 4]!;
    const green = image.data[pixel * 4 + 1]!;
    const blue = image.data[pixel * 4 + 2]!;
    const alpha = image.data[pixel * 4 + 3]!;
    // ITU-R BT.601 luma, the grey conversion most image libraries use.
    const values = channels === 1 ? [Math.round(0.299 * red + 0.587 * green + 0.114 * blue)] : channels === 3 ? [red, green, blue] : [red, green, blue, alpha];
    for (let channel = 0; channel < channels; channel++) {
      const index = plan.layout === 'nchw' ? channel * pixels + pixel : pixel * channels + channel;
      target[index] = scale(values[channel]!);
    }
  }
  return { name, datatype, shape, data };
}
