/**
 * `gantry jobs create|ls|show|result|cancel`: asynchronous inference jobs (docs/jobs.md). A job takes the same
 * inputs as `gantry infer`; its result is shown the same way.
 */
import type { Job, JobState } from '../../client/index.js';
import { stringOption, type ClientCommand, type Invocation } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatFields, formatTable, printJson } from '../output.js';
import { UsageError } from '../usage-error.js';
import { toClientInput } from '../input-arguments.js';
import { inputDetails, presentResult, readInputs } from './infer-command.js';

function jobFields(job: Job): string {
  return formatFields([
    ['id', job.id],
    ['model', `${job.model} version ${job.version}`],
    ['state', job.state],
    ['error', job.error === undefined ? undefined : `${job.error.error} (${job.error.code})`],
    ['created', job.createdAt],
    ['started', job.startedAt],
    ['finished', job.finishedAt],
    ['attempts', job.attempts],
    ['expires', job.expiresAt],
  ]);
}

function positiveInteger(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new UsageError(`--${name} is a positive whole number, got '${text.slice(0, 20)}'.`);
  return value;
}

/** Fetches a finished job's answer and shows it as `gantry infer` would. */
async function showResult(invocation: Invocation, id: string): Promise<number> {
  await presentResult(invocation, await invocation.client().jobs.result(id));
  return ExitCode.Ok;
}

/** Waits for a job to finish; a job that ended otherwise than succeeded exits 1 with its error. */
async function waitAndShow(invocation: Invocation, job: Job): Promise<number> {
  const current = await invocation.client().jobs.wait(job.id, { pollMs: 250 });
  if (current.state === 'succeeded') return showResult(invocation, current.id);
  if (invocation.json) printJson(invocation.stdout, current);
  else invocation.stdout.write(jobFields(current));
  return ExitCode.Failure;
}

const create: ClientCommand = {
  kind: 'client',
  words: ['jobs', 'create'],
  summary: 'queues an asynchronous inference (inputs as for infer); --wait shows its result',
  synopsis: 'MODEL --input NAME=@FILE [--input …] [--version V] [--wait] [--output NAME=@FILE.npy] [--retention S]',
  details: [
    ...inputDetails,
    '--version V           a version number or alias',
    '--wait                wait for the job and print its result (as infer does); exit 1 if it failed',
    '--output NAME=@F.npy  with --wait: write that output to a .npy file',
    '--retention S         seconds the result is kept once finished',
  ],
  options: {
    input: { type: 'string', multiple: true, short: 'i' },
    output: { type: 'string', multiple: true, short: 'o' },
    version: { type: 'string' },
    'image-layout': { type: 'string' },
    wait: { type: 'boolean' },
    retention: { type: 'string' },
  },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const model = invocation.positionals[0]!;
    const version = stringOption(invocation.values, 'version');
    const retention = positiveInteger('retention', stringOption(invocation.values, 'retention'));
    const tensors = await readInputs(invocation, model, version);
    const inputs = Object.fromEntries(tensors.map((tensor) => [tensor.name, toClientInput(tensor)]));
    const job = await invocation.client().jobs.create(model, inputs, {
      ...(version === undefined ? {} : { version }),
      ...(retention === undefined ? {} : { retention }),
    });
    if (invocation.values.wait === true) return waitAndShow(invocation, job);
    if (invocation.json) printJson(invocation.stdout, job);
    else invocation.stdout.write(jobFields(job));
    return ExitCode.Ok;
  },
};

const list: ClientCommand = {
  kind: 'client',
  words: ['jobs', 'ls'],
  summary: "the caller's jobs, newest first",
  synopsis: '[--state S] [--model M] [--limit N] [--cursor C]',
  details: [
    '--state S    queued, running, succeeded, failed, cancelled or expired',
    "--model M    only this model's",
    '--limit N    at most N (default 100)',
    "--cursor C   the previous page's next cursor",
  ],
  options: { state: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } },
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const { values } = invocation;
    const state = stringOption(values, 'state');
    const model = stringOption(values, 'model');
    const limit = positiveInteger('limit', stringOption(values, 'limit'));
    const cursor = stringOption(values, 'cursor');
    const page = await invocation.client().jobs.list({
      // The server checks the state name (a 400 lists the valid ones).
      ...(state === undefined ? {} : { state: state as JobState }),
      ...(model === undefined ? {} : { model }),
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    if (invocation.json) printJson(invocation.stdout, page);
    else {
      invocation.stdout.write(
        formatTable(
          ['ID', 'MODEL', 'VERSION', 'STATE', 'CREATED', 'FINISHED'],
          page.jobs.map((job) => [job.id, job.model, job.version, job.state, job.createdAt, job.finishedAt]),
        ),
      );
      if (page.nextCursor !== undefined) invocation.stdout.write(`more: --cursor ${page.nextCursor}\n`);
    }
    return ExitCode.Ok;
  },
};

const show: ClientCommand = {
  kind: 'client',
  words: ['jobs', 'show'],
  summary: "a job's state, attempts and error",
  synopsis: 'JOB_ID [--wait]',
  details: ['--wait   wait until it finishes, then print its result (exit 1 if it failed)'],
  options: { wait: { type: 'boolean' }, output: { type: 'string', multiple: true, short: 'o' } },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const job = await invocation.client().jobs.get(invocation.positionals[0]!);
    if (invocation.values.wait === true) return waitAndShow(invocation, job);
    if (invocation.json) printJson(invocation.stdout, job);
    else invocation.stdout.write(jobFields(job));
    return ExitCode.Ok;
  },
};

const result: ClientCommand = {
  kind: 'client',
  words: ['jobs', 'result'],
  summary: "a finished job's outputs, printed as infer prints them (409 while it runs)",
  synopsis: 'JOB_ID [--output NAME=@FILE.npy]',
  details: ['--output NAME=@F.npy  write that output to a .npy file; repeatable'],
  options: { output: { type: 'string', multiple: true, short: 'o' } },
  positionals: { min: 1, max: 1 },
  run: (invocation) => showResult(invocation, invocation.positionals[0]!),
};

const cancel: ClientCommand = {
  kind: 'client',
  words: ['jobs', 'cancel'],
  summary: 'cancels a job: a queued one never runs; a running one finishes, its answer discarded',
  synopsis: 'JOB_ID',
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const job = await invocation.client().jobs.cancel(invocation.positionals[0]!);
    if (invocation.json) printJson(invocation.stdout, job);
    else invocation.stdout.write(jobFields(job));
    return ExitCode.Ok;
  },
};

export const jobCommands: ClientCommand[] = [create, list, show, result, cancel];
