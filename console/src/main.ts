// The console's entry point (bundled by scripts/build-console.mjs into dist/console).
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { html, render } from 'htm/preact';
import { App } from './app';

render(html`<${App} />`, document.getElementById('app')!);
