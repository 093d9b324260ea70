/** `gantry models push|ls|show|rm`: model management through the client. */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PushedVersion, VersionDetail } from '../../client/index.js';
import { booleanOption, stringOption, type ClientCommand, type Invocation } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { InputFileError } from '../input-file-error.js';
import { formatTable, printJson } from '../output.js';
import { formatBytes, ProgressReporter } from '../progress.js';
import { formatVersionDetail } from '../signature-text.js';
import { UsageError } from '../usage-error.js';

/** How often `push` looks at a version still LOADING after the server's own wait ended (202). */
const loadPollMs = 500;

/** The model name a file gives by default: its basename without the extension (`models/tiny-mlp.onnx` → `tiny-mlp`). */
export function defaultModelName(file: string): string {
  return path.basename(file, path.extname(file));
}

async function readWarmup(file: string | undefined): Promise<object | undefined> {
  if (file === undefined) return undefined;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as object;
  } catch (error) {
    throw new InputFileError(`--warmup ${file.slice(0, 200)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Polls a version the server answered while LOADING (202) until it settles or the budget runs out. */
async function settled(invocation: Invocation, pushed: VersionDetail, budgetMs: number): Promise<VersionDetail> {
  const deadline = Date.now() + budgetMs;
  let current = pushed;
  while (current.state === 'LOADING' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, loadPollMs));
    current = await invocation.client().models.version(pushed.name, pushed.version);
  }
  return current;
}

const push: ClientCommand = {
  kind: 'client',
  words: ['models', 'push'],
  summary: 'uploads an ONNX file as a new version, with progress, and prints its signature once READY',
  synopsis: 'FILE [--name NAME] [--no-wait] [--duplicate] [--version N] [--warmup SAMPLE.json]',
  details: [
    '--name NAME          the model (default: the file name without its extension)',
    '--no-wait            answer once uploaded, while the version loads (state LOADING)',
    '--duplicate          a new version even when one holds the same file already',
    '--version N          upload under this version number (above every number the model has had)',
    '--warmup FILE.json   a warm-up sample (an OIP inference request) run on every instance at load',
    '--quiet, -q          no progress',
    '',
    'Progress goes to stderr: a bar with rate and ETA on a terminal, a line every 10% otherwise.',
    'Exit code 1 when the version ends UNAVAILABLE or is still LOADING after --timeout (default 10 minutes).',
  ],
  options: {
    name: { type: 'string' },
    'no-wait': { type: 'boolean' },
    duplicate: { type: 'boolean' },
    version: { type: 'string' },
    warmup: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
  },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const file = invocation.positionals[0]!;
    const name = stringOption(invocation.values, 'name') ?? defaultModelName(file);
    const wait = !booleanOption(invocation.values, 'no-wait');
    const versionText = stringOption(invocation.values, 'version');
    const version = versionText === undefined ? undefined : Number(versionText);
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1))
      throw new UsageError(`--version is a positive whole number, got '${versionText!.slice(0, 20)}'.`);
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new InputFileError(`'${file.slice(0, 200)}' is not a file.`);
      size = info.size;
    } catch (error) {
      if (error instanceof InputFileError) throw error;
      throw new InputFileError(`cannot read '${file.slice(0, 200)}' (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`);
    }
    const warmup = await readWarmup(stringOption(invocation.values, 'warmup'));
    const progress = booleanOption(invocation.values, 'quiet')
      ? undefined
      : new ProgressReporter(invocation.stderr, `Uploading ${path.basename(file)}`, { unit: 'bytes' });
    let uploaded = false;
    let pushed: PushedVersion;
    try {
      pushed = await invocation.client().models.push(file, {
        name,
        wait,
        ...(booleanOption(invocation.values, 'duplicate') ? { duplicate: true } : {}),
        ...(version === undefined ? {} : { version }),
        ...(warmup === undefined ? {} : { warmup }),
        onProgress: (sent, total) => {
          progress?.update(sent, total ?? size);
          if (!uploaded && sent >= (total ?? size)) {
            uploaded = true;
            progress?.finish(sent, total ?? size);
            if (wait && progress !== undefined) invocation.stderr.write(`Uploaded; waiting for ${name} to load (READY)…\n`);
          }
        },
      });
    } finally {
      progress?.abandon();
    }
    let detail: VersionDetail = pushed;
    const loadBudgetMs = Number(stringOption(invocation.values, 'timeout') ?? 600_000) || 600_000;
    if (wait && pushed.state === 'LOADING') detail = await settled(invocation, pushed, loadBudgetMs);
    if (invocation.json) printJson(invocation.stdout, { ...detail, status: pushed.status, ...(pushed.existing === true ? { existing: true } : {}) });
    else {
      if (pushed.existing === true)
        invocation.stdout.write(`The file is already version ${pushed.version} of ${pushed.name}: no version was made (--duplicate for one).\n`);
      invocation.stdout.write(formatVersionDetail(detail));
    }
    if (detail.state === 'UNAVAILABLE') return ExitCode.Failure;
    if (wait && detail.state !== 'READY') {
      invocation.stderr.write(`${name} version ${detail.version} is still ${detail.state}.\n`);
      return ExitCode.Failure;
    }
    return ExitCode.Ok;
  },
};

const list: ClientCommand = {
  kind: 'client',
  words: ['models', 'ls'],
  summary: 'lists the models the key may see, one row per version',
  synopsis: '',
  positionals: { min: 0, max: 0 },
  async run(invocation) {
    const models = await invocation.client().models.list();
    if (invocation.json) printJson(invocation.stdout, { models });
    else if (models.length === 0) invocation.stdout.write('No models. Push one: gantry models push FILE.onnx\n');
    else {
      const rows = models.flatMap((model) =>
        model.versions.map((version) => [model.name, version.version, version.state, formatBytes(version.size), version.createdAt]),
      );
      invocation.stdout.write(formatTable(['MODEL', 'VERSION', 'STATE', 'SIZE', 'CREATED'], rows));
    }
    return ExitCode.Ok;
  },
};

const show: ClientCommand = {
  kind: 'client',
  words: ['models', 'show'],
  summary: 'a model with every version: states, warm-up, signature',
  synopsis: 'NAME [--version V]',
  details: ['--version V   only this version'],
  options: { version: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const name = invocation.positionals[0]!;
    const version = stringOption(invocation.values, 'version');
    const client = invocation.client();
    const versions = version === undefined ? (await client.models.get(name)).versions : [await client.models.version(name, version)];
    if (invocation.json) printJson(invocation.stdout, version === undefined ? { name, versions } : versions[0]);
    else invocation.stdout.write(versions.map(formatVersionDetail).join('\n'));
    return ExitCode.Ok;
  },
};

const remove: ClientCommand = {
  kind: 'client',
  words: ['models', 'rm'],
  summary: 'deletes a model with all its versions, or one version',
  synopsis: 'NAME [--version V] [--force]',
  details: [
    '--version V   only this version',
    '--force       delete the version even while aliases point at it (removing them) or the traffic policy names it',
  ],
  options: { version: { type: 'string' }, force: { type: 'boolean' } },
  positionals: { min: 1, max: 1 },
  async run(invocation) {
    const name = invocation.positionals[0]!;
    const version = stringOption(invocation.values, 'version');
    if (booleanOption(invocation.values, 'force') && version === undefined) throw new UsageError('--force applies to one version: give --version too.');
    await invocation
      .client()
      .models.remove(name, { ...(version === undefined ? {} : { version }), ...(booleanOption(invocation.values, 'force') ? { force: true } : {}) });
    if (invocation.json) printJson(invocation.stdout, { deleted: { name, ...(version === undefined ? {} : { version }) } });
    else invocation.stdout.write(version === undefined ? `Deleted model ${name} and all its versions.\n` : `Deleted version ${version} of ${name}.\n`);
    return ExitCode.Ok;
  },
};

export const modelCommands: ClientCommand[] = [push, list, show, remove];
