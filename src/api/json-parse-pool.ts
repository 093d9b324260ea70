import { Worker } from 'node:worker_threads';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { DecodedInputData } from '../protocol/decoded-json-body.js';
import type { JsonCostBounds } from '../protocol/json-cost.js';
import type { JsonParseReply, JsonParseRequest } from './json-parse-messages.js';

const threadScript = new URL('./json-parse-thread.js', import.meta.url);

/**
 * JSON parts at least this large are parsed by the pool; smaller ones stay on the event loop, where JSON.parse
 * of 1 MiB takes ~10 ms and a round trip to a thread (transfer, a skeleton back) would cost more than it saves
 * for the many small requests.
 */
export const offThreadParseMinBytes = 1024 ** 2;

/**
 * Old-generation heap (MB) a parse thread may use for a JSON part of up to `maxJsonBytes` (576 MB for the 64 MiB
 * default). It is a backstop, not the bound: reaching it usually ends only the thread (ERR_WORKER_OUT_OF_MEMORY),
 * but V8 may abort the whole process instead when one allocation cannot fit (seen here; nodejs/node#47224), so
 * the cost bounds (json-cost.ts) keep every admitted body well below it. Measured at the bounds: 8 M values of
 * mixed integers and doubles, nested [n, 256], need 256-384 MB; 64 MiB of FP32 numbers or 1 M strings of 60
 * characters fit in 192-256 MB. The text itself is not on this heap (Node keeps a large decoded string outside).
 */
export function parseThreadHeapMb(maxJsonBytes: number): number {
  return Math.max(128, Math.ceil((8 * maxJsonBytes) / 1024 ** 2) + 64);
}

export interface JsonParsePoolOptions {
  /** Threads (GANTRY_JSON_PARSE_THREADS); each parses one body at a time, more wait in order. */
  threads: number;
  /** Old-generation heap limit of each thread, MB: a body that needs more kills that thread, not the API. */
  maxOldGenerationSizeMb: number;
  /** Called when a thread dies of something other than its heap limit (a bug): for the log. */
  onThreadError?: (error: Error) => void;
}

export interface ParseOptions {
  headerLength: string | undefined;
  maxJsonBytes: number;
  bounds: JsonCostBounds;
  /** Checked before the body is sent to a thread: a request whose client left is not parsed. */
  isCancelled?: () => boolean;
}

export interface ParsedJsonBody {
  header: unknown;
  inputs: Array<DecodedInputData | undefined>;
  /** The binary part of a binary-extension body (empty when there is none). */
  binary: Buffer;
}

interface Task {
  body: Buffer;
  options: ParseOptions;
  resolve: (parsed: ParsedJsonBody) => void;
  reject: (error: Error) => void;
}

const limitOfError = new WeakMap<Error, string>();

/** The limit label (`json_cost`, `json_parse_memory`) when the pool refused a body for what it would cost. */
export function limitOfParseError(error: unknown): string | undefined {
  return error instanceof Error ? limitOfError.get(error) : undefined;
}

/** A view of the body that owns its whole ArrayBuffer, so it can be transferred (a pooled slice cannot). */
function ownBuffer(body: Buffer): Buffer {
  if (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer) return body;
  const copy = Buffer.allocUnsafeSlow(body.byteLength);
  body.copy(copy);
  return copy;
}

class ParseThread {
  readonly worker: Worker;
  task: Task | undefined;
  private nextId = 1;
  private taskId = 0;

  constructor(
    options: JsonParsePoolOptions,
    private readonly onIdle: (thread: ParseThread) => void,
    private readonly onDead: (thread: ParseThread) => void,
  ) {
    this.worker = new Worker(threadScript, { resourceLimits: { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb } });
    this.worker.unref();
    this.worker.on('message', (reply: JsonParseReply) => this.answer(reply));
    this.worker.on('error', (error: Error & { code?: string }) => {
      const task = this.task;
      this.task = undefined;
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        const refusal = errors.jsonTooComplex(
          'The JSON body',
          `parsing it needed more than the ${options.maxOldGenerationSizeMb} MB of memory a JSON parse thread has (GANTRY_MAX_JSON_REQUEST_BYTES sets it)`,
        );
        limitOfError.set(refusal, 'json_parse_memory');
        task?.reject(refusal);
      } else {
        options.onThreadError?.(error);
        task?.reject(errors.internal());
      }
    });
    this.worker.on('exit', () => {
      this.task?.reject(errors.internal());
      this.task = undefined;
      this.onDead(this);
    });
  }

  run(task: Task): void {
    this.task = task;
    this.taskId = this.nextId++;
    const body = ownBuffer(task.body);
    const request: JsonParseRequest = {
      id: this.taskId,
      body: body.buffer as ArrayBuffer,
      byteOffset: body.byteOffset,
      byteLength: body.byteLength,
      headerLength: task.options.headerLength,
      maxJsonBytes: task.options.maxJsonBytes,
      bounds: task.options.bounds,
    };
    // Busy, the thread keeps the process alive (a caller awaits it); idle, it does not.
    this.worker.ref();
    this.worker.postMessage(request, [request.body]);
  }

  private answer(reply: JsonParseReply): void {
    const task = this.task;
    if (task === undefined || reply.id !== this.taskId) return;
    this.task = undefined;
    this.worker.unref();
    if (reply.ok) {
      const binary = reply.binary === undefined ? Buffer.alloc(0) : Buffer.from(reply.binary.buffer, reply.binary.byteOffset, reply.binary.byteLength);
      task.resolve({ header: reply.header, inputs: reply.inputs, binary });
    } else {
      const error = new GantryError(reply.error.code ?? ErrorCode.Internal, reply.error.message);
      if (reply.limit !== undefined) limitOfError.set(error, reply.limit);
      task.reject(error);
    }
    this.onIdle(this);
  }
}

/**
 * A small pool of worker threads that parse large JSON inference bodies off the API's event loop: the body's
 * buffer is transferred to a thread, which checks its cost (json-cost.ts), parses it and decodes every input's
 * data into raw bytes (decoded-json-body.ts), and transfers those back with the small skeleton. A parse of
 * 64 MiB takes ~1 s; on the event loop it would stall every other caller, /v2/health/live included.
 *
 * Each thread has a heap limit: a body that needs more kills that thread (its request is refused with 400) and
 * a new one takes its place. Bodies beyond the threads wait in order; how many bytes can wait is bounded by
 * GANTRY_MAX_INFLIGHT_BYTES, which holds every body until its response. Threads start on first use.
 */
export class JsonParsePool {
  private readonly threads = new Set<ParseThread>();
  private readonly idle: ParseThread[] = [];
  private readonly waiting: Task[] = [];
  private closed = false;

  constructor(private readonly options: JsonParsePoolOptions) {
    if (options.threads < 1) throw new Error('A JSON parse pool needs at least one thread.');
  }

  /** Bodies waiting for a thread (not counting those being parsed). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Parses `body` (a JSON body, or a binary-extension body whose JSON header is parsed) on a thread. `body` is
   * handed over: its buffer is transferred and must not be used afterwards.
   * @throws (rejects with) GantryError(INVALID_ARGUMENT) for a body too costly or not valid JSON (decode errors
   * of single inputs are returned in `inputs`, not thrown), errors.cancelled() when `isCancelled` said so
   * before it was sent, errors.shuttingDown() once the pool is closed.
   */
  parse(body: Buffer, options: ParseOptions): Promise<ParsedJsonBody> {
    if (this.closed) return Promise.reject(errors.shuttingDown());
    return new Promise((resolve, reject) => {
      this.waiting.push({ body, options, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0 && !this.closed) {
      const task = this.waiting.shift()!;
      if (task.options.isCancelled?.() === true) {
        task.reject(errors.cancelled());
        continue;
      }
      const thread = this.idle.pop() ?? (this.threads.size < this.options.threads ? this.spawn() : undefined);
      if (thread === undefined) {
        this.waiting.unshift(task);
        return;
      }
      thread.run(task);
    }
  }

  private spawn(): ParseThread {
    const thread = new ParseThread(
      this.options,
      (done) => {
        this.idle.push(done);
        this.dispatch();
      },
      (dead) => {
        this.threads.delete(dead);
        const position = this.idle.indexOf(dead);
        if (position >= 0) this.idle.splice(position, 1);
        // A thread that died (its heap limit) is replaced by the next dispatch.
        this.dispatch();
      },
    );
    this.threads.add(thread);
    return thread;
  }

  /** Refuses what waits, ends the threads (what they parse is refused too). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const task of this.waiting.splice(0)) task.reject(errors.shuttingDown());
    const ending = [...this.threads].map((thread) => {
      thread.task?.reject(errors.shuttingDown());
      thread.task = undefined;
      return thread.worker.terminate();
    });
    this.threads.clear();
    this.idle.length = 0;
    await Promise.all(ending);
  }
}
