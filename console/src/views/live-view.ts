// Live charts per model: requests per second, latency percentiles and queue depth, from the API's stream.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { formatSeconds } from '../format';
import { LiveChart } from '../live/live-chart';
import { liveState, onLiveState, type LiveState, type LiveStatsEvent, type ModelLiveStats } from '../live/live-stats';

/** Charts are drawn for this many models (the busiest); the table lists every model the stream sends. */
const chartedModels = 12;

function seriesOf(history: LiveStatsEvent[], model: string, read: (stats: ModelLiveStats) => number | null): Array<number | null> {
  return history.map((event) => {
    const stats = event.models.find((one) => one.model === model);
    return stats === undefined ? null : read(stats);
  });
}

function ModelCharts(props: { model: string; history: LiveStatsEvent[]; times: number[] }) {
  const { model, history, times } = props;
  const rate = [
    { label: 'requests/s', values: seriesOf(history, model, (stats) => stats.requestsPerSecond) },
    { label: 'errors/s', values: seriesOf(history, model, (stats) => stats.errorsPerSecond) },
  ];
  const latency = (['p50', 'p90', 'p99'] as const).map((quantile) => ({
    label: quantile,
    values: seriesOf(history, model, (stats) => (stats.latencySeconds === null ? null : stats.latencySeconds[quantile] * 1000)),
  }));
  const depth = [{ label: 'jobs', values: seriesOf(history, model, (stats) => stats.queueDepth) }];
  return html`<article class="live-model" data-testid=${`live-charts-${model}`}>
    <h3>${model}</h3>
    <div class="charts">
      <${LiveChart} title="Requests per second" unit="req/s" times=${times} series=${rate} testId=${`chart-rate-${model}`} />
      <${LiveChart} title="Latency" unit="ms" times=${times} series=${latency} testId=${`chart-latency-${model}`} />
      <${LiveChart} title="Queue depth" unit="jobs" times=${times} series=${depth} testId=${`chart-queue-${model}`} />
    </div>
  </article>`;
}

export function LiveView() {
  const [state, setState] = useState<LiveState>(liveState());
  useEffect(() => onLiveState(setState), []);
  const { history } = state;
  const latest = history[history.length - 1];
  const times = history.map((event) => event.at / 1000);
  const models = latest?.models ?? [];
  const busiest = [...models].sort((a, b) => b.requestsTotal - a.requestsTotal || a.model.localeCompare(b.model)).slice(0, chartedModels);
  return html`<section data-testid="live-view">
    <h2>Live</h2>
    <p class="muted">
      Requests and latency as this API process answered them (one sample a second; percentiles over the last ${latest?.windowSeconds ?? 10} s); queue depth
      across every process.
    </p>
    ${state.problem === undefined ? null : html`<p class="error" role="alert">${state.problem}</p>`}
    ${latest === undefined ? html`<p class="muted">Waiting for the first sample…</p>` : null}
    ${
      models.length === 0
        ? null
        : html`<table data-testid="live-table">
            <thead>
              <tr>
                <th>Model</th>
                <th>Requests</th>
                <th>Errors</th>
                <th>Requests/s</th>
                <th>p50</th>
                <th>p90</th>
                <th>p99</th>
                <th>Queue</th>
              </tr>
            </thead>
            <tbody>
              ${models.map(
                (stats) =>
                  html`<tr data-testid=${`live-row-${stats.model}`} data-requests-total=${stats.requestsTotal}>
                    <td>${stats.model}</td>
                    <td>${stats.requestsTotal}</td>
                    <td>${stats.errorsTotal}</td>
                    <td>${stats.requestsPerSecond === null ? '—' : stats.requestsPerSecond.toFixed(1)}</td>
                    ${(['p50', 'p90', 'p99'] as const).map((quantile) => html`<td>${stats.latencySeconds === null ? '—' : formatSeconds(stats.latencySeconds[quantile])}</td>`)}
                    <td>${stats.queueDepth ?? '—'}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    ${latest !== undefined && latest.modelsOmitted > 0 ? html`<p class="muted">${latest.modelsOmitted} quieter models are not shown.</p>` : null}
    ${busiest.map((stats) => html`<${ModelCharts} key=${stats.model} model=${stats.model} history=${history} times=${times} />`)}
  </section>`;
}
