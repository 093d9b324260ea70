// One uPlot chart of a few series over time, redrawn as new samples arrive.
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  values: Array<number | null>;
}

const colors = ['#2563eb', '#d97706', '#dc2626', '#059669', '#7c3aed'];

function chartData(times: number[], series: ChartSeries[]): uPlot.AlignedData {
  return [times, ...series.map((one) => one.values)];
}

/** The largest value any series holds (the test reads it from `data-max` to see a request on the chart). */
function largest(series: ChartSeries[]): number {
  let max = 0;
  for (const one of series) for (const value of one.values) if (value !== null && value > max) max = value;
  return max;
}

export function LiveChart(props: { title: string; unit: string; times: number[]; series: ChartSeries[]; testId: string }) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const labels = props.series.map((one) => one.label).join('|');

  useEffect(() => {
    if (container.current === null) return undefined;
    const options: uPlot.Options = {
      title: props.title,
      width: Math.max(280, container.current.clientWidth || 360),
      height: 180,
      scales: { x: { time: true }, y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{}, { label: props.unit, size: 60 }],
      series: [{}, ...props.series.map((one, index) => ({ label: one.label, stroke: colors[index % colors.length], width: 2, spanGaps: false }))],
    };
    chart.current = new uPlot(options, chartData(props.times, props.series), container.current);
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
    // A new set of series needs a new chart; new values only new data (below).
  }, [labels, props.title, props.unit]);

  useEffect(() => {
    chart.current?.setData(chartData(props.times, props.series));
  }, [props.times, props.series]);

  return html`<div class="chart" ref=${container} data-testid=${props.testId} data-max=${largest(props.series)} data-points=${props.times.length}></div>`;
}
