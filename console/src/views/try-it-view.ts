// The "try it" form of a model, generated from its signature: one field per input, then the outputs it answered.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { apiJson, modelPath } from '../api';
import type { InferAnswer, ModelDetail, OutputTensor, VersionDetail } from '../api-types';
import { flatten, parseShape } from '../tensors/tensor';
import { useRequest } from '../use-request';
import { ErrorBox, Loading, StateBadge } from './common';
import { initialEntry, InputField, type InputEntry } from './input-field';

/** Outputs are shown up to this many elements each (the answer itself is complete). */
const maxShownElements = 10_000;

function shownOutputs(outputs: OutputTensor[]): OutputTensor[] {
  return outputs.map((output) => (output.data.length <= maxShownElements ? output : { ...output, data: output.data.slice(0, maxShownElements) }));
}

function requestInput(name: string, datatype: string, entry: InputEntry) {
  if (entry.fromFile !== undefined) return { name, ...entry.fromFile.tensor };
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.dataText);
  } catch (error) {
    throw new Error(`Input '${name}': the data is not JSON (${(error as Error).message}).`, { cause: error });
  }
  return { name, datatype, shape: parseShape(entry.shapeText), data: flatten(parsed) };
}

/** The version the form is for: the one picked, or (none picked) the newest READY one. */
function signatureVersion(versions: VersionDetail[], picked: string): VersionDetail | undefined {
  if (picked !== '') return versions.find((version) => version.version === picked);
  return [...versions].reverse().find((version) => version.state === 'READY') ?? versions[versions.length - 1];
}

export function TryItView(props: { model: string }) {
  const detail = useRequest<ModelDetail>(modelPath(props.model));
  const [picked, setPicked] = useState('');
  const [entries, setEntries] = useState<Record<string, InputEntry>>({});
  const [answer, setAnswer] = useState<InferAnswer | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);
  const versions = detail.value?.versions ?? [];
  const version = signatureVersion(versions, picked);
  const inputs = version?.inputs ?? [];

  // A new signature (another version) starts from its own prefilled fields.
  useEffect(() => setEntries(Object.fromEntries(inputs.map((input) => [input.name, initialEntry(input)]))), [version?.version, inputs.length]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = { inputs: inputs.map((input) => requestInput(input.name, input.datatype, entries[input.name] ?? initialEntry(input))) };
      const path =
        picked === '' ? `/v2/models/${encodeURIComponent(props.model)}/infer` : `/v2/models/${encodeURIComponent(props.model)}/versions/${picked}/infer`;
      setAnswer(await apiJson<InferAnswer>('POST', path, body));
    } catch (failure) {
      setAnswer(undefined);
      setError(failure as Error);
    } finally {
      setBusy(false);
    }
  };

  return html`<section data-testid="try-it">
    <h2>Try ${props.model}</h2>
    <${ErrorBox} error=${detail.error} />
    <${Loading} loading=${detail.loading && detail.value === undefined} />
    ${
      version === undefined
        ? null
        : html`<form onSubmit=${submit} data-testid="try-form">
            <label
              >Version
              <select value=${picked} onChange=${(event: Event) => setPicked((event.target as HTMLSelectElement).value)} data-testid="try-version">
                <option value="">default (what requests naming no version get)</option>
                ${versions.map((one) => html`<option value=${one.version}>${one.version} (${one.state})</option>`)}
              </select>
            </label>
            <p>Signature of version ${version.version} <${StateBadge} state=${version.state} /></p>
            ${inputs.map(
              (input) =>
                html`<${InputField}
                  key=${`${version.version}/${input.name}`}
                  input=${input}
                  entry=${entries[input.name] ?? initialEntry(input)}
                  onChange=${(entry: InputEntry) => setEntries((current) => ({ ...current, [input.name]: entry }))}
                />`,
            )}
            <button type="submit" disabled=${busy} data-testid="try-submit">${busy ? 'Running…' : 'Run inference'}</button>
          </form>`
    }
    <${ErrorBox} error=${error} />
    ${
      answer === undefined
        ? null
        : html`<div class="answer">
            <h3>Outputs of ${answer.model_name} version ${answer.model_version}</h3>
            <pre data-testid="outputs">${JSON.stringify(shownOutputs(answer.outputs))}</pre>
          </div>`
    }
  </section>`;
}
