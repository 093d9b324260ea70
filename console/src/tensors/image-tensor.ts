// An image file made into an input tensor shaped as the model's signature asks: NCHW or NHWC (or CHW, HWC),
// 3 channels (RGB) or 1 (grey), resized to fixed height and width; floats in 0..1, integers in 0..255.
import type { TensorMetadata } from '../api-types';
import type { InputTensor } from './tensor';

interface Layout {
  channelsFirst: boolean;
  batched: boolean;
  channels: number;
  height: number;
  width: number;
}

/** How an input's shape lays an image out, or undefined when it cannot hold one. */
export function imageLayout(input: TensorMetadata): Layout | undefined {
  const shape = input.shape;
  const batched = shape.length === 4;
  if (shape.length !== 3 && !batched) return undefined;
  const dims = batched ? shape.slice(1) : shape;
  const isChannels = (dimension: number | undefined) => dimension === 1 || dimension === 3;
  if (isChannels(dims[0])) return { channelsFirst: true, batched, channels: dims[0]!, height: dims[1]!, width: dims[2]! };
  if (isChannels(dims[2])) return { channelsFirst: false, batched, channels: dims[2]!, height: dims[0]!, width: dims[1]! };
  return undefined;
}

/** Decodes `file` (any image the browser reads) into the tensor `input` expects. */
export async function imageTensor(file: File, input: TensorMetadata): Promise<InputTensor> {
  const layout = imageLayout(input);
  if (layout === undefined)
    throw new Error(`Input '${input.name}' [${input.shape.join(', ')}] has no image layout (NCHW, NHWC, CHW or HWC with 1 or 3 channels).`);
  const bitmap = await createImageBitmap(file);
  const width = layout.width > 0 ? layout.width : bitmap.width;
  const height = layout.height > 0 ? layout.height : bitmap.height;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  if (context === null) throw new Error('This browser cannot draw the image on a canvas.');
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const pixels = context.getImageData(0, 0, width, height).data;
  const floats = input.datatype.startsWith('FP');
  const data: number[] = new Array(layout.channels * width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const pixel = (y * width + x) * 4;
      for (let channel = 0; channel < layout.channels; channel++) {
        // Grey: the mean of red, green and blue.
        const raw = layout.channels === 1 ? (pixels[pixel]! + pixels[pixel + 1]! + pixels[pixel + 2]!) / 3 : pixels[pixel + channel]!;
        const value = floats ? raw / 255 : Math.round(raw);
        const index = layout.channelsFirst ? channel * width * height + y * width + x : (y * width + x) * layout.channels + channel;
        data[index] = value;
      }
    }
  }
  const spatial = layout.channelsFirst ? [layout.channels, height, width] : [height, width, layout.channels];
  return { datatype: input.datatype, shape: layout.batched ? [1, ...spatial] : spatial, data };
}
