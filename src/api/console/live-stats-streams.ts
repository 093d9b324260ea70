import type { FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough } from 'node:stream';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import type { LiveStatsSampler } from './live-stats-sampler.js';
import { liveStatsFor } from './live-stats-view.js';

/**
 * A stream whose client does not read falls behind; past this many unsent bytes it is closed (the console
 * reconnects) instead of buffering without bound.
 */
export const maxUnsentBytes = 256 * 1024;

/**
 * The server-sent-event streams of the console's Live view: one `stats` event per sample of the shared sampler,
 * narrowed to the caller's models; bounded in number and in unsent bytes; all ended at shutdown.
 */
export class LiveStatsStreams {
  private readonly open = new Set<() => void>();

  /**
   * @param maxStreams GANTRY_MAX_CONSOLE_STREAMS: each stream holds a connection and a share of every sample's
   *   serialization, so a crowd of tabs (or a hostile client) is refused past it.
   * @param onRefusal counts a stream refused at that limit (gantry_limit_rejections_total{limit="console_streams"}).
   */
  constructor(
    private readonly sampler: LiveStatsSampler,
    private readonly isAcceptingWork: () => boolean,
    private readonly maxStreams: number,
    private readonly onRefusal: () => void = () => undefined,
  ) {}

  get openCount(): number {
    return this.open.size;
  }

  /** Answers `request` with a stream of its caller's live stats (the handler of GET /v1/console/live-stats). */
  serve(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    if (!this.isAcceptingWork()) throw errors.shuttingDown();
    if (this.open.size >= this.maxStreams) {
      this.onRefusal();
      throw new GantryError(
        ErrorCode.Unavailable,
        `This API process already serves ${this.maxStreams} live-stats streams, its limit (GANTRY_MAX_CONSOLE_STREAMS); close another console tab or retry later.`,
        { retryAfterSeconds: 5 },
      );
    }
    const stream = new PassThrough();
    const principal = request.principal;
    let unsubscribe = () => undefined as void;
    const end = () => {
      if (!this.open.delete(end)) return;
      unsubscribe();
      stream.end();
    };
    this.open.add(end);
    // Browsers reconnect an EventSource after `retry` ms; the console's own reader does the same.
    stream.write('retry: 2000\n\n');
    unsubscribe = this.sampler.subscribe((sample) => {
      if (stream.writableLength > maxUnsentBytes) {
        request.log.info({ unsentBytes: stream.writableLength }, 'live-stats client does not read; its stream is closed');
        end();
        return;
      }
      stream.write(`event: stats\ndata: ${JSON.stringify(liveStatsFor(principal, sample))}\n\n`);
    });
    // The response's close, not the request's: a GET's request 'closes' as soon as it is read.
    reply.raw.once('close', end);
    return reply
      .headers({
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        // Not kept alive after it ends: the socket closes with the stream, so a shutdown that ends the streams does
        // not then wait for their idle connections.
        connection: 'close',
      })
      .send(stream);
  }

  /** Ends every open stream (shutdown: a stream never ends by itself, and the server waits for its requests). */
  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}
