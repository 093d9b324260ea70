// One input of the try-it form: JSON data and a shape, or a picked .npy or image file.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { TensorMetadata } from '../api-types';
import { imageLayout, imageTensor } from '../tensors/image-tensor';
import { readNpy } from '../tensors/npy';
import { concreteShape, elementCount, type InputTensor } from '../tensors/tensor';

/** What the user gave for one input: typed JSON, or a tensor read from a file. */
export interface InputEntry {
  shapeText: string;
  dataText: string;
  fromFile?: { fileName: string; tensor: InputTensor };
}

/** Prefilled data is written out up to this many elements (zeros, or "" for BYTES); bigger inputs start empty. */
const maxPrefilledElements = 4096;

export function initialEntry(input: TensorMetadata): InputEntry {
  const shape = concreteShape(input.shape);
  const count = elementCount(shape);
  const zero = input.datatype === 'BYTES' ? '""' : input.datatype === 'BOOL' ? 'false' : '0';
  return { shapeText: shape.join(', '), dataText: count <= maxPrefilledElements ? `[${new Array(count).fill(zero).join(', ')}]` : '[]' };
}

export function InputField(props: { input: TensorMetadata; entry: InputEntry; onChange: (entry: InputEntry) => void }) {
  const { input, entry } = props;
  const [problem, setProblem] = useState<string | undefined>();
  const acceptsImages = imageLayout(input) !== undefined && input.datatype !== 'BYTES';
  const pick = async (event: Event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    setProblem(undefined);
    if (file === undefined) {
      props.onChange({ shapeText: entry.shapeText, dataText: entry.dataText });
      return;
    }
    try {
      const tensor = file.name.toLowerCase().endsWith('.npy') ? readNpy(await file.arrayBuffer()) : await imageTensor(file, input);
      props.onChange({ ...entry, shapeText: tensor.shape.join(', '), fromFile: { fileName: file.name, tensor } });
    } catch (error) {
      setProblem((error as Error).message);
    }
  };
  const id = `input-${input.name}`;
  return html`<fieldset class="input" data-testid=${id}>
    <legend><code>${input.name}</code> ${input.datatype} [${input.shape.join(', ')}]</legend>
    <label
      >Shape
      <input
        type="text"
        value=${entry.shapeText}
        disabled=${entry.fromFile !== undefined}
        onInput=${(event: Event) => props.onChange({ ...entry, shapeText: (event.target as HTMLInputElement).value })}
        data-testid=${`${id}-shape`}
    /></label>
    <label
      >Data (JSON, flat or nested)
      <textarea
        rows="4"
        disabled=${entry.fromFile !== undefined}
        onInput=${(event: Event) => props.onChange({ ...entry, dataText: (event.target as HTMLTextAreaElement).value })}
        data-testid=${`${id}-data`}
      >
${entry.dataText}</textarea>
    </label>
    <label
      >Or a file (${acceptsImages ? '.npy or an image' : '.npy'})
      <input type="file" accept=${acceptsImages ? '.npy,image/*' : '.npy'} onChange=${pick} data-testid=${`${id}-file`}
    /></label>
    ${
      entry.fromFile === undefined
        ? null
        : html`<p class="muted" data-testid=${`${id}-file-summary`}>
            From ${entry.fromFile.fileName}: ${entry.fromFile.tensor.datatype} [${entry.fromFile.tensor.shape.join(', ')}]
            ${entry.fromFile.tensor.datatype === input.datatype ? '' : html`<span class="error"> (the model wants ${input.datatype})</span>`}
          </p>`
    }
    ${problem === undefined ? null : html`<p class="error">${problem}</p>`}
  </fieldset>`;
}
