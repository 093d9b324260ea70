import type { Redis } from 'ioredis';
import { errors, fromWire, type GantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { readLargeValue, readLargeValueRange } from './large-values.js';
import { replyChannel } from '../redis-keys.js';
import { ProcessIds } from './process-ids.js';
import { subscribeWhenReady } from './redis-connection.js';
import { decodeReply, type InferenceReplyHeader, type InferenceResult, type LoadReplyHeader } from './reply-codec.js';

export interface InferenceOutcome {
  outputs: Tensor[];
  /** The request's share of the model's compute on the worker, in ns (0 from a worker that does not report it). */
  computeNs: number;
  /** Rows the request ran (0 from a worker that does not report them). */
  rows: number;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: GantryError) => void;
  /** Most output bytes this request asked for; a reply announcing more is refused unread. */
  maxOutputBytes?: number;
}

/** One registered wait for a reply: the id to put in the job, the reply, and a way to stop waiting. */
export interface ReplyWait<T> {
  correlationId: string;
  /** Resolves with the worker's answer; rejects with its error, the one given to `cancel`, or rejectAll's. */
  reply: Promise<T>;
  /** Stops waiting (timeout, client gone): `reply` rejects with `reason`, and a reply arriving later is dropped. */
  cancel: (reason: GantryError) => void;
}

/**
 * Receives the replies addressed to this process on its own pub/sub channel and hands each result to the
 * request waiting for it. One subscription per process, so no queue-wide event stream is read. It is the only
 * owner of correlation state: callers register a wait and get its id, its reply and a cancel, nothing more.
 */
export class ReplyListener {
  readonly channel: string;
  /** Where this process's correlation and job ids come from (the channel is named after the same process id). */
  readonly ids = new ProcessIds();
  private readonly inferenceWaiters = new Map<string, Waiter<InferenceOutcome>>();
  private readonly loadWaiters = new Map<string, Waiter<ModelSignature>>();

  constructor(
    private readonly subscriber: Redis,
    /** A command connection, for the output bytes of large replies, which wait in a key of their own. */
    private readonly commands: Redis,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.channel = replyChannel(prefix, this.ids.processId);
  }

  async start(): Promise<void> {
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (channel.toString() === this.channel) this.onMessage(message);
    });
    await subscribeWhenReady(this.subscriber, this.channel);
  }

  /** Waits for one inference request's reply; a reply announcing more than `maxOutputBytes` is refused unread. */
  expectInference(options: { maxOutputBytes?: number } = {}): ReplyWait<InferenceOutcome> {
    return this.expect(this.inferenceWaiters, options.maxOutputBytes);
  }

  /** Waits for one load request's reply (the signature the worker read). */
  expectLoad(): ReplyWait<ModelSignature> {
    return this.expect(this.loadWaiters, undefined);
  }

  private expect<T>(waiters: Map<string, Waiter<T>>, maxOutputBytes: number | undefined): ReplyWait<T> {
    const correlationId = this.ids.nextCorrelationId();
    const reply = new Promise<T>((resolve, reject) => {
      waiters.set(correlationId, { resolve, reject, ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }) });
    });
    const cancel = (reason: GantryError) => {
      const waiter = waiters.get(correlationId);
      if (waiter === undefined) return;
      waiters.delete(correlationId);
      waiter.reject(reason);
    };
    return { correlationId, reply, cancel };
  }

  /** Inference requests still waiting for an answer (what shutdown waits for; loads finish without a client). */
  get pendingInferenceCount(): number {
    return this.inferenceWaiters.size;
  }

  /** Fails every waiting request, used on shutdown. */
  rejectAll(error: GantryError): void {
    for (const waiter of [...this.inferenceWaiters.values(), ...this.loadWaiters.values()]) waiter.reject(error);
    this.inferenceWaiters.clear();
    this.loadWaiters.clear();
  }

  private onMessage(message: Buffer): void {
    let decoded;
    try {
      decoded = decodeReply(message);
    } catch (error) {
      this.logger.warn({ err: error }, 'dropping an undecodable reply');
      return;
    }
    if (decoded.header.kind === 'load') this.onLoadReply(decoded.header);
    else if (decoded.header.bodyKey === undefined) this.onInferenceReply(decoded.header, decoded.body);
    else void this.onLargeInferenceReply(decoded.header, decoded.header.bodyKey, decoded.header.bodyLength ?? 0);
  }

  /**
   * A reply whose output bytes wait in a key. The API guards itself even against a worker that did not check
   * the limits (an older one): a result larger than its request allows is refused without being read, and the
   * others are then read piece by piece (GETRANGE), so no more than what was asked for enters this process.
   */
  private async onLargeInferenceReply(header: InferenceReplyHeader, bodyKey: string, bodyLength: number): Promise<void> {
    const pieces: Array<{ result: InferenceResult; offset: number; length: number }> = [];
    let offset = 0;
    let refusedAny = false;
    for (const result of header.results) {
      const length = (result.outputs ?? []).reduce((sum, layout) => sum + layout.byteLength, 0);
      const waiter = this.inferenceWaiters.get(result.correlationId);
      if (waiter?.maxOutputBytes !== undefined && length > waiter.maxOutputBytes) {
        this.inferenceWaiters.delete(result.correlationId);
        waiter.reject(errors.outputTooLarge(length, waiter.maxOutputBytes));
        refusedAny = true;
      } else if (waiter !== undefined) {
        pieces.push({ result, offset, length });
      }
      offset += length;
    }
    try {
      if (!refusedAny) {
        const body = await readLargeValue(this.commands, bodyKey, bodyLength, { deleteAfter: true });
        if (body !== undefined) {
          this.onInferenceReply(header, body);
          return;
        }
      } else {
        for (const piece of pieces) {
          if (piece.result.error !== undefined) continue;
          const body = await readLargeValueRange(this.commands, bodyKey, piece.offset, piece.length);
          if (body !== undefined) this.onInferenceReply({ ...header, results: [piece.result] }, body);
        }
        await this.commands.del(bodyKey).catch(() => 0);
        for (const piece of pieces) if (piece.result.error !== undefined) this.onInferenceReply({ ...header, results: [piece.result] }, Buffer.alloc(0));
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not read a reply body');
    }
    const failure = errors.queueUnavailable('the reply could not be read from Redis');
    for (const result of header.results) {
      const waiter = this.inferenceWaiters.get(result.correlationId);
      this.inferenceWaiters.delete(result.correlationId);
      waiter?.reject(failure);
    }
  }

  private onLoadReply(header: LoadReplyHeader): void {
    const waiter = this.loadWaiters.get(header.correlationId);
    if (waiter === undefined) return;
    this.loadWaiters.delete(header.correlationId);
    if (header.error !== undefined) waiter.reject(fromWire(header.error));
    else if (header.signature !== undefined) waiter.resolve(header.signature);
    else waiter.reject(errors.internal('load reply without signature'));
  }

  private onInferenceReply(header: InferenceReplyHeader, body: Buffer): void {
    let offset = 0;
    for (const result of header.results) {
      const outputs: Tensor[] = [];
      for (const layout of result.outputs ?? []) {
        outputs.push({ name: layout.name, datatype: layout.datatype, shape: layout.shape, data: body.subarray(offset, offset + layout.byteLength) });
        offset += layout.byteLength;
      }
      const waiter = this.inferenceWaiters.get(result.correlationId);
      if (waiter === undefined) continue;
      this.inferenceWaiters.delete(result.correlationId);
      const bytes = outputs.reduce((sum, output) => sum + output.data.byteLength, 0);
      if (result.error !== undefined) waiter.reject(fromWire(result.error));
      else if (waiter.maxOutputBytes !== undefined && bytes > waiter.maxOutputBytes) waiter.reject(errors.outputTooLarge(bytes, waiter.maxOutputBytes));
      else waiter.resolve({ outputs, computeNs: result.computeNs ?? 0, rows: result.rows ?? 0 });
    }
  }
}
