/**
 * `gantry batches submit|ls|show|wait|results|cancel`: batch files (docs/jobs.md), one OIP inference request per
 * JSONL line. `submit` streams the file up and, unless --no-wait, shows the batch's progress (lines finished out
 * of the total) until it ends.
 */
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Batch, BatchState } from '../../client/index.js';
import { booleanOption, stringOption, type ClientCommand, type Invocation } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { InputFileError } from '../input-file-error.js';
import { formatFields, formatTable, printJson } from '../output.js';
import { ProgressReporter } from '../progress.js';
import { UsageError } from '../usage-error.js';

const batchPollMs = 500;

function batchPath(id: string): string {
  return `/v1/batches/${encodeURIComponent(id)}`;
}

/** Lines with an outcome: succeeded, failed (expired and invalid ones included) or cancelled. */
function finishedLines(batch: Batch): number {
  return batch.succeeded + batch.failed + batch.cancelled;
}

function batchFields(batch: Batch): string {
  return formatFields([
    ['id', batch.id],
    ['model', `${batch.model} version ${batch.version}`],
    ['state', batch.state],
    [
      'lines',
      `${batch.total} (succeeded ${batch.succeeded}, failed ${batch.failed}, running ${batch.running}, queued ${batch.queued}, cancelled ${batch.cancelled})`,
    ],
    ['created', batch.createdAt],
    ['finished', batch.finishedAt],
    ['expires', batch.expiresAt],
  ]);
}

function readBatch(invocation: Invocation, id: string): Promise<Batch> {
  return invocation.client().batches.get(id);
}

/** Polls a batch until it ends, with progress on stderr; exit 1 when lines failed or it did not succeed. */
async function waitWithProgress(invocation: Invocation, batch: Batch, quiet: boolean): Promise<number> {
  const progress = quiet ? undefined : new ProgressReporter(invocation.stderr, `Batch ${batch.id}`, { unit: 'items', noun: 'lines' });
  let current: Batch;
  try {
    current = await invocation
      .client()
      .batches.wait(batch.id, { pollMs: batchPollMs, onProgress: (seen) => progress?.update(finishedLines(seen), seen.total) });
    progress?.finish(finishedLines(current), current.total);
  } finally {
    progress?.abandon();
  }
  if (invocation.json) printJson(invocation.stdout, current);
  else invocation.stdout.write(batchFields(current));
  return current.state === 'succeeded' && current.failed === 0 ? ExitCode.Ok : ExitCode.Failure;
}

const submit: ClientCommand = {
  kind: 'client',
  words: ['batches', 'submit'],
  summary: 'submits a JSONL file of inference requests and shows its progress until it ends',
  synopsis: 'MODEL FILE.jsonl [--no-wait] [--retention S] [--quiet]',
  details: [
    'FILE.jsonl      one OIP inference request per line ({"inputs": [...]}), streamed up',
    '--no-wait       answer once the batch is accepted',
    '--retention S   seconds the results are kept once the batch finished',
    '--quiet, -q     no progress',
    '',
    'Exit code 1 when any line failed or the batch was cancelled or expired; fetch the lines with batches results.',
  ],
  options: { 'no-wait': { type: 'boolean' }, retention: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
  positionals: { min: 2, max: 2 },
  async run(invocation) {
    const [model, file] = invocation.positionals as [string, string];
    const retentionText = stringOption(invocation.values, 'retention');
    if (retentionText !== undefined && !/^[1-9]\d{0,9}$/.test(retentionText))
      throw new UsageError(`--retention is a positive whole number of seconds, got '${retentionText.slice(0, 20)}'.`);
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      size = info.size;
    } catch (error) {
      throw new InputFileError(`cannot read '${file.slice(0, 200)}' (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`);
    }
    // The client streams the file from disk: a large batch is never held whole. Its upload shows progress too.
    const quiet = booleanOption(invocation.values, 'quiet');
    const upload = quiet ? undefined : new ProgressReporter(invocation.stderr, `Uploading ${path.basename(file)}`, { unit: 'bytes' });
    let batch: Batch;
    try {
      batch = await invocation.client().batches.submit(model, file, {
        ...(retentionText === undefined ? {} : { retention: Number(retentionText) }),
        onProgress: (sent, total) => upload?.update(sent, total),
      });
      upload?.finish(size, size);
    } finally {
      upload?.abandon();
    }
    if (booleanOption(invocation.values, 'no-wait')) {
      if (invocation.json) printJson(invocation.stdout, batch);
      else invocation.stdout.write(batchFields(batch));
      return ExitCode.Ok;
    }
    return waitWithProgress(invocation, batch, quiet);
  },
};

const list: ClientCommand = {
  kind: 'client',
  words: ['batches', 'ls'],
  summary: "the caller's batches, newest first",
  synopsis: '[--state S] [--model M] [--limit N] [--cursor C] [--tenant T]',
  options: { state: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, tenant: { type: 'string' } },
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const { values } = invocation;
    const text = (name: string) => stringOption(values, name);
    const limitText = text('limit');
    const limit = limitText === undefined ? undefined : Number(limitText);
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1))
      throw new UsageError(`--limit is a positive whole number, got '${limitText!.slice(0, 20)}'.`);
    const page = await invocation.client().batches.list({
      // The server checks the state name (a 400 lists the valid ones).
      ...(text('state') === undefined ? {} : { state: text('state') as BatchState }),
      ...(text('model') === undefined ? {} : { model: text('model')! }),
      ...(text('tenant') === undefined ? {} : { tenant: text('tenant')! }),
      ...(text('cursor') === undefined ? {} : { cursor: text('cursor')! }),
      ...(limit === undefined ? {} : { limit }),
    });
    if (invocation.json) printJson(invocation.stdout, page);
    else {
      invocation.stdout.write(
        formatTable(
          ['ID', 'MODEL', 'VERSION', 'STATE', 'DONE', 'FAILED', 'CREATED'],
          page.batches.map((batch) => [
            batch.id,
            batch.model,
            batch.version,
            batch.state,
            `${finishedLines(batch)}/${batch.total}`,
            batch.failed,
            batch.createdAt,
          ]),
        ),
      );
      if (page.nextCursor !== undefined) invocation.stdout.write(`more: --cursor ${page.nextCursor}\n`);
    }
    return ExitCode.Ok;
  },
};

const show: ClientCommand = {
  kind: 'client',
  words: ['batches', 'show'],
  summary: "a batch's state and line counts",
  synopsis: 'BATCH_ID',
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const batch = await readBatch(invocation, invocation.positionals[0]!);
    if (invocation.json) printJson(invocation.stdout, batch);
    else invocation.stdout.write(batchFields(batch));
    return ExitCode.Ok;
  },
};

const wait: ClientCommand = {
  kind: 'client',
  words: ['batches', 'wait'],
  summary: "shows a batch's progress until it ends (exit 1 if lines failed)",
  synopsis: 'BATCH_ID [--quiet]',
  options: { quiet: { type: 'boolean', short: 'q' } },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    return waitWithProgress(invocation, await readBatch(invocation, invocation.positionals[0]!), booleanOption(invocation.values, 'quiet'));
  },
};

const results: ClientCommand = {
  kind: 'client',
  words: ['batches', 'results'],
  summary: "streams a batch's results (JSONL, one line per request, in order) to stdout or a file",
  synopsis: 'BATCH_ID [--out FILE]',
  details: ['--out FILE   write the results to FILE instead of stdout'],
  options: { out: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    // The lines exactly as the server sends them (batches.results() would decode them into typed arrays only for
    // this to write them back); no time budget: a large batch's results take as long as they take.
    const response = await invocation.client().http.call({
      method: 'GET',
      path: `${batchPath(invocation.positionals[0]!)}/results`,
      headers: { accept: 'application/x-ndjson' },
      idempotent: true,
      timeoutMs: 0,
    });
    const out = stringOption(invocation.values, 'out');
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    if (out !== undefined) {
      await pipeline(body, createWriteStream(out));
      invocation.stderr.write(`wrote the results to ${out}\n`);
    } else for await (const chunk of body) invocation.stdout.write(Buffer.from(chunk as Uint8Array).toString('utf8'));
    return ExitCode.Ok;
  },
};

const cancel: ClientCommand = {
  kind: 'client',
  words: ['batches', 'cancel'],
  summary: 'cancels a batch: lines not yet run never run',
  synopsis: 'BATCH_ID',
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const batch = await invocation.client().batches.cancel(invocation.positionals[0]!);
    if (invocation.json) printJson(invocation.stdout, batch);
    else invocation.stdout.write(batchFields(batch));
    return ExitCode.Ok;
  },
};

export const batchCommands: ClientCommand[] = [submit, list, show, wait, results, cancel];
