// Every model the key may see, each version with its state and warm-up result; versions loading are polled.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { modelPath } from '../api';
import type { ModelDetail, ModelList, VersionDetail } from '../api-types';
import { formatBytes, formatDate } from '../format';
import { linkTo } from '../router';
import { useRequest } from '../use-request';
import { ErrorBox, Loading, StateBadge } from './common';

/** Version details (warm-up results) are read for this many models; the rest show their summaries. */
const detailedModels = 50;
const isSettling = (state: string) => state === 'LOADING' || state === 'UNLOADING';

export function WarmupCell(props: { version: VersionDetail }) {
  const { warmup, reason } = props.version;
  if (warmup === undefined) return html`<span class="muted">${reason ?? '—'}</span>`;
  return html`<span class=${`warmup warmup-${warmup.status}`} title=${warmup.reason ?? ''}
    >${warmup.status}${warmup.reason === undefined ? '' : `: ${warmup.reason.slice(0, 80)}`}</span
  >`;
}

function ModelRows(props: { name: string; summary: ModelList['models'][number]; detailed: boolean }) {
  // Read again whenever the list shows a version change (a new one, a new state): warm-up results come with it.
  const changes = props.summary.versions.map((version) => `${version.version}:${version.state}`).join(',');
  const detail = useRequest<ModelDetail>(props.detailed ? modelPath(props.name) : undefined, undefined, changes);
  const versions: VersionDetail[] =
    detail.value?.versions ?? props.summary.versions.map((version) => ({ ...version, name: props.name, platform: 'onnx' }) as VersionDetail);
  return html`${versions.map(
    (version, index) =>
      html`<tr data-testid=${`model-row-${props.name}-${version.version}`}>
        ${index === 0 ? html`<td rowspan=${versions.length}><a href=${linkTo('model', props.name)}>${props.name}</a></td>` : null}
        <td>${version.version}</td>
        <td><${StateBadge} state=${version.state} testId=${`state-${props.name}-${version.version}`} /></td>
        <td><${WarmupCell} version=${version} /></td>
        <td>${formatBytes(version.size)}</td>
        <td>${formatDate(version.createdAt)}</td>
        ${index === 0 ? html`<td rowspan=${versions.length}><a class="button" href=${linkTo('try', props.name)}>Try it</a></td>` : null}
      </tr>`,
  )}`;
}

/** Every model the key may see: read each second while a version loads or unloads, else every 5 s. */
function useModelList() {
  const [settling, setSettling] = useState(false);
  const list = useRequest<ModelList>('/v1/models', settling ? 1000 : 5000);
  const models = list.value?.models ?? [];
  const nowSettling = models.some((model) => model.versions.some((version) => isSettling(version.state)));
  useEffect(() => setSettling(nowSettling), [nowSettling]);
  return { list, models };
}

export function ModelsView() {
  const { list, models } = useModelList();
  return html`<section>
    <h2>Models</h2>
    <${ErrorBox} error=${list.error} />
    <${Loading} loading=${list.loading && list.value === undefined} />
    ${list.value !== undefined && models.length === 0 ? html`<p class="muted">No models yet. <a href=${linkTo('upload')}>Upload one.</a></p>` : null}
    ${
      models.length === 0
        ? null
        : html`<table class="models" data-testid="models-table">
            <thead>
              <tr>
                <th>Model</th>
                <th>Version</th>
                <th>State</th>
                <th>Warm-up</th>
                <th>Size</th>
                <th>Uploaded</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              ${models.map((model, index) => html`<${ModelRows} key=${model.name} name=${model.name} summary=${model} detailed=${index < detailedModels} />`)}
            </tbody>
          </table>`
    }
  </section>`;
}
