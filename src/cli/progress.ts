/**
 * Progress for long CLI operations (an upload's bytes, a batch's lines). On a terminal: one line redrawn in place
 * (bar, percentage, amounts, rate, ETA), at most every 100 ms. Anywhere else (a pipe, a log file, CI): a plain line
 * at each further 10% or every 5 s, whichever comes first, so logs stay short and still show it moving. Progress
 * goes to stderr, leaving stdout to the command's result.
 */

/** Formats a byte count the way humans read sizes: 512 B, 12.3 KB, 4.5 MB, 1.2 GB (powers of 1000). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** Formats seconds as 45s, 3m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/** What a progress line shows. `unit` 'bytes' formats amounts as sizes; 'items' as plain counts with `noun`. */
export interface ProgressState {
  done: number;
  /** Undefined when the total is not known (then no bar, percentage or ETA). */
  total: number | undefined;
  elapsedMs: number;
  unit: 'bytes' | 'items';
  noun?: string;
}

function amount(state: ProgressState, value: number): string {
  return state.unit === 'bytes' ? formatBytes(value) : String(value);
}

/** The parts every rendering shares: "4.5 MB/10.0 MB  1.5 MB/s  ETA 4s". */
function details(state: ProgressState): string {
  const seconds = state.elapsedMs / 1000;
  const rate = seconds > 0 ? state.done / seconds : 0;
  const noun = state.unit === 'items' ? ` ${state.noun ?? 'items'}` : '';
  const amounts = state.total === undefined ? `${amount(state, state.done)}${noun}` : `${amount(state, state.done)}/${amount(state, state.total)}${noun}`;
  const rateText = state.unit === 'bytes' ? `${formatBytes(rate)}/s` : `${rate.toFixed(rate >= 10 ? 0 : 1)}/s`;
  let eta = '';
  if (state.total !== undefined && state.done < state.total) eta = rate > 0 ? `  ETA ${formatDuration((state.total - state.done) / rate)}` : '  ETA ?';
  return `${amounts}  ${rateText}${eta}`;
}

function percentOf(state: ProgressState): number {
  if (state.total === undefined) return 0;
  if (state.total === 0) return 100;
  return Math.min(100, Math.floor((state.done / state.total) * 100));
}

/** The terminal line: `label [██████░░░░░░]  45%  4.5 MB/10.0 MB  1.5 MB/s  ETA 4s`, the bar `barWidth` cells wide. */
export function renderBarLine(label: string, state: ProgressState, barWidth = 24): string {
  if (state.total === undefined) return `${label}  ${details(state)}`;
  const percent = percentOf(state);
  const filled = Math.round((percent / 100) * barWidth);
  return `${label} [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}] ${String(percent).padStart(3)}%  ${details(state)}`;
}

/** The plain line for logs and pipes: `label: 45% (4.5 MB/10.0 MB, 1.5 MB/s, ETA 4s)`. */
export function renderPlainLine(label: string, state: ProgressState): string {
  const parts = details(state).split('  ').join(', ');
  return state.total === undefined ? `${label}: ${parts}` : `${label}: ${percentOf(state)}% (${parts})`;
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const redrawIntervalMs = 100;
const plainIntervalMs = 5000;
const plainStepPercent = 10;

/** One progress display. `update` as often as you like; `finish` prints the final state once and ends the line. */
export class ProgressReporter {
  private readonly startedAt: number;
  private lastDrawAt = 0;
  private lastPlainPercent = -1;
  private drewOnTerminal = false;
  private finished = false;

  constructor(
    private readonly output: ProgressOutput,
    private readonly label: string,
    private readonly options: { unit: 'bytes' | 'items'; noun?: string; now?: () => number } = { unit: 'bytes' },
  ) {
    this.startedAt = this.now();
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private state(done: number, total: number | undefined): ProgressState {
    return {
      done,
      total,
      elapsedMs: this.now() - this.startedAt,
      unit: this.options.unit,
      ...(this.options.noun === undefined ? {} : { noun: this.options.noun }),
    };
  }

  update(done: number, total: number | undefined): void {
    if (this.finished) return;
    const at = this.now();
    const state = this.state(done, total);
    if (this.output.isTTY === true) {
      if (at - this.lastDrawAt < redrawIntervalMs) return;
      this.lastDrawAt = at;
      this.drawTerminal(state);
      return;
    }
    const percent = percentOf(state);
    const stepped = total !== undefined && Math.floor(percent / plainStepPercent) > Math.floor(this.lastPlainPercent / plainStepPercent);
    if (stepped || at - this.lastDrawAt >= plainIntervalMs) {
      this.lastDrawAt = at;
      this.lastPlainPercent = percent;
      this.output.write(`${renderPlainLine(this.label, state)}\n`);
    }
  }

  private drawTerminal(state: ProgressState): void {
    // A pseudo-terminal without a size (script(1), some CI runners) reports 0 columns.
    const columns = this.output.columns !== undefined && this.output.columns > 0 ? this.output.columns : 80;
    const barWidth = Math.max(10, Math.min(30, columns - 70));
    // \r back to the start of the line, ESC[2K clears it: the line is redrawn in place.
    this.output.write(`\r\x1b[2K${renderBarLine(this.label, state, barWidth).slice(0, Math.max(20, columns - 1))}`);
    this.drewOnTerminal = true;
  }

  /** Shows the final amounts (100% when done equals total) and ends the line. */
  finish(done: number, total: number | undefined): void {
    if (this.finished) return;
    this.finished = true;
    const state = this.state(done, total);
    if (this.output.isTTY === true) {
      this.drawTerminal(state);
      this.output.write('\n');
    } else if (this.lastPlainPercent !== percentOf(state) || total === undefined) this.output.write(`${renderPlainLine(this.label, state)}\n`);
  }

  /** Ends a terminal line that was drawn without printing more (before an error message). */
  abandon(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.drewOnTerminal) this.output.write('\n');
  }
}
