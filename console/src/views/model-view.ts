// One model: each version's state, warm-up, signature and serving workers; its aliases and traffic policy.
import { html } from 'htm/preact';
import { modelPath } from '../api';
import type { AliasList, ModelDetail, TensorMetadata } from '../api-types';
import { formatBytes, formatDate } from '../format';
import { linkTo } from '../router';
import { useRequest } from '../use-request';
import { ErrorBox, Loading, StateBadge } from './common';
import { WarmupCell } from './models-view';

function Signature(props: { title: string; tensors: TensorMetadata[] | undefined }) {
  if (props.tensors === undefined || props.tensors.length === 0) return null;
  return html`<div>
    <h4>${props.title}</h4>
    <ul class="signature">
      ${props.tensors.map((tensor) => html`<li><code>${tensor.name}</code> ${tensor.datatype} [${tensor.shape.join(', ')}]</li>`)}
    </ul>
  </div>`;
}

export function ModelView(props: { model: string }) {
  const detail = useRequest<ModelDetail>(modelPath(props.model), 5000);
  const aliases = useRequest<AliasList>(`${modelPath(props.model)}/aliases`);
  const traffic = useRequest<Record<string, unknown>>(`${modelPath(props.model)}/traffic`);
  return html`<section data-testid="model-view">
    <h2>${props.model} <a class="button" href=${linkTo('try', props.model)}>Try it</a></h2>
    <${ErrorBox} error=${detail.error} />
    <${Loading} loading=${detail.loading && detail.value === undefined} />
    ${(detail.value?.versions ?? []).map(
      (version) =>
        html`<article class="version">
          <h3>Version ${version.version} <${StateBadge} state=${version.state} /></h3>
          <p>
            Warm-up: <${WarmupCell} version=${version} />
            <span>${` · ${formatBytes(version.size)} · uploaded ${formatDate(version.createdAt)} · ${version.platform}`}</span>
            ${version.sha256 === undefined ? null : html`<span> · </span><code title=${version.sha256}>${version.sha256.slice(0, 12)}…</code>`}
          </p>
          ${version.reason === undefined ? null : html`<p class="error">${version.reason}</p>`}
          ${version.unservedReason === undefined ? null : html`<p class="error">${version.unservedReason}</p>`}
          <div class="columns"><${Signature} title="Inputs" tensors=${version.inputs} /><${Signature} title="Outputs" tensors=${version.outputs} /></div>
        </article>`,
    )}
    <h3>Aliases</h3>
    <${ErrorBox} error=${aliases.error} />
    ${
      aliases.value === undefined
        ? null
        : aliases.value.aliases.length === 0
          ? html`<p class="muted">None: requests naming no version get the newest READY one.</p>`
          : html`<ul>
              ${aliases.value.aliases.map((alias) => html`<li><code>${alias.alias}</code> → version ${alias.version}</li>`)}
            </ul>`
    }
    <h3>Traffic policy</h3>
    <${ErrorBox} error=${traffic.error} />
    ${
      traffic.value === undefined
        ? null
        : Object.keys(traffic.value).length === 0
          ? html`<p class="muted">None: no canary split or shadow.</p>`
          : html`<pre data-testid="traffic">${JSON.stringify(traffic.value, null, 2)}</pre>`
    }
  </section>`;
}
