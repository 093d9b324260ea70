// The live stats the API streams (GET /v1/console/live-stats, server-sent events), kept for the whole tab:
// one stream while the console is open, so the charts have history whichever view was showing.
import { authorizationHeaders } from '../session-key';

/** One model's numbers in a `stats` event (src/api/console/live-stats-sampler.ts). */
export interface ModelLiveStats {
  model: string;
  requestsTotal: number;
  errorsTotal: number;
  requestsPerSecond: number | null;
  errorsPerSecond: number | null;
  latencySeconds: { p50: number; p90: number; p99: number } | null;
  queueDepth: number | null;
}

export interface LiveStatsEvent {
  at: number;
  intervalMs: number;
  windowSeconds: number;
  models: ModelLiveStats[];
  modelsOmitted: number;
}

/** The history the charts draw: the last `historyLength` events. */
export const historyLength = 300;

export interface LiveState {
  history: LiveStatsEvent[];
  /** Why the stream is not flowing, when it is not. */
  problem?: string;
}

type Listener = (state: LiveState) => void;

let state: LiveState = { history: [] };
const listeners = new Set<Listener>();
let controller: AbortController | undefined;

export function liveState(): LiveState {
  return state;
}

export function onLiveState(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function publish(next: LiveState): void {
  state = next;
  for (const listener of listeners) listener(state);
}

/** Starts the stream (again: after a new key); reconnects by itself until `stopLiveStats`. */
export function startLiveStats(): void {
  stopLiveStats();
  const own = new AbortController();
  controller = own;
  publish({ history: [] });
  void run(own.signal);
}

export function stopLiveStats(): void {
  controller?.abort();
  controller = undefined;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

// EventSource cannot send an Authorization header, so the stream is read with fetch and parsed here.
async function run(signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let retryMs = 2000;
    try {
      const response = await fetch('/v1/console/live-stats', { headers: authorizationHeaders(), signal });
      if (!response.ok || response.body === null) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        publish({ ...state, problem: `Live stats: ${body.error ?? `${response.status} ${response.statusText}`}` });
        // 401 and 403 will not change by retrying with the same key; a busy server may.
        if (response.status === 401 || response.status === 403) return;
        retryMs = Number(response.headers.get('retry-after') ?? '5') * 1000 || 5000;
      } else {
        if (state.problem !== undefined) publish({ history: state.history });
        await readEvents(response.body, signal);
        if (!signal.aborted) publish({ ...state, problem: 'Live stats: the stream ended; reconnecting…' });
      }
    } catch (error) {
      if (signal.aborted) return;
      publish({ ...state, problem: `Live stats: ${(error as Error).message}; reconnecting…` });
    }
    await sleep(retryMs, signal);
  }
}

async function readEvents(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let end = buffered.indexOf('\n\n');
    while (end >= 0) {
      handleEvent(buffered.slice(0, end));
      buffered = buffered.slice(end + 2);
      end = buffered.indexOf('\n\n');
    }
  }
}

function handleEvent(text: string): void {
  let name = 'message';
  const data: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
  }
  if (name !== 'stats' || data.length === 0) return;
  const event = JSON.parse(data.join('\n')) as LiveStatsEvent;
  const history = [...state.history, event].slice(-historyLength);
  publish({ history });
}
