// Uploads a model file with a progress bar (bytes, rate, time left), then follows the new version until it settles.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, apiGet, modelPath, uploadModel, type UploadProgress } from '../api';
import type { VersionDetail } from '../api-types';
import { formatBytes, formatSeconds } from '../format';
import { linkTo } from '../router';
import { ErrorBox, StateBadge } from './common';
import { WarmupCell } from './models-view';

/** A model name from a file name: its stem, with what a name may not hold made '-' (src/queue/names.ts). */
export function nameFromFile(fileName: string): string {
  const stem = fileName
    .replace(/\.onnx$/i, '')
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return stem.slice(0, 128);
}

function ProgressBar(props: { progress: UploadProgress }) {
  const { sentBytes, totalBytes, elapsedMs } = props.progress;
  const fraction = totalBytes > 0 ? sentBytes / totalBytes : 0;
  const rate = elapsedMs > 0 ? sentBytes / (elapsedMs / 1000) : 0;
  const left = rate > 0 ? (totalBytes - sentBytes) / rate : undefined;
  // One string: htm drops the whitespace around line breaks in a template.
  const summary = [
    `${Math.round(fraction * 100)}%`,
    `${formatBytes(sentBytes)} of ${formatBytes(totalBytes)}`,
    `${formatBytes(rate)}/s`,
    ...(left === undefined || fraction >= 1 ? [] : [`${formatSeconds(left)} left`]),
  ].join(' · ');
  return html`<div class="progress">
    <progress max=${totalBytes} value=${sentBytes} data-testid="upload-progress" data-fraction=${fraction.toFixed(3)}></progress>
    <span>${summary}</span>
  </div>`;
}

export function UploadView() {
  const [file, setFile] = useState<File | undefined>();
  const [name, setName] = useState('');
  const [progress, setProgress] = useState<UploadProgress | undefined>();
  const [version, setVersion] = useState<VersionDetail | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);

  // The upload answers at once (LOADING); the version is followed until a worker has loaded and warmed it up.
  useEffect(() => {
    if (version === undefined || (version.state !== 'LOADING' && version.state !== 'UNLOADING')) return undefined;
    const timer = setTimeout(() => {
      apiGet<VersionDetail>(`${modelPath(name)}/versions/${version.version}`).then(setVersion, (failure: ApiError) => setError(failure));
    }, 500);
    return () => clearTimeout(timer);
  }, [version]);
  useEffect(() => () => abort.current?.abort(), []);

  const pick = (event: Event) => {
    const picked = (event.target as HTMLInputElement).files?.[0];
    setFile(picked);
    if (picked !== undefined && name === '') setName(nameFromFile(picked.name));
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (file === undefined || name === '') return;
    setBusy(true);
    setError(undefined);
    setVersion(undefined);
    setProgress({ sentBytes: 0, totalBytes: file.size, elapsedMs: 0 });
    abort.current = new AbortController();
    try {
      setVersion(await uploadModel<VersionDetail>(name, file, setProgress, abort.current.signal));
    } catch (failure) {
      setError(failure as ApiError);
    } finally {
      setBusy(false);
    }
  };

  return html`<section>
    <h2>Upload a model</h2>
    <form class="upload" onSubmit=${submit} data-testid="upload-form">
      <label>ONNX file <input type="file" accept=".onnx,application/octet-stream" onChange=${pick} data-testid="upload-file" /></label>
      <label
        >Model name
        <input
          type="text"
          value=${name}
          onInput=${(event: Event) => setName((event.target as HTMLInputElement).value)}
          pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{0,127}"
          required
          data-testid="upload-name"
      /></label>
      <button type="submit" disabled=${busy || file === undefined} data-testid="upload-submit">Upload</button>
      ${busy ? html`<button type="button" onClick=${() => abort.current?.abort()}>Cancel</button>` : null}
    </form>
    ${progress === undefined ? null : html`<${ProgressBar} progress=${progress} />`}
    <${ErrorBox} error=${error} />
    ${
      version === undefined
        ? null
        : html`<div class="upload-result" data-testid="upload-result">
            <span>${`${name} version ${version.version}`}</span>
            <${StateBadge} state=${version.state} testId="upload-state" />
            ${version.state === 'READY' ? html`<span>warm-up <${WarmupCell} version=${version} /></span>` : null}
            ${version.reason === undefined ? null : html`<span class="error">${version.reason}</span>`}
            <a href=${linkTo('models')}>Models</a>
            <a href=${linkTo('try', name)}>Try it</a>
          </div>`
    }
  </section>`;
}
