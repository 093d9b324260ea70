import { status, type ServerWritableStream } from '@grpc/grpc-js';
import { ErrorCode, GantryError } from '../errors.js';
import { unreadyReason, type ReadinessSources } from '../inference/server-status.js';
import type { GrpcMetrics } from '../metrics/grpc-metrics.js';
import type { UnaryHandler, UnaryHandlers } from './grpc-call-context.js';

/** The services grpc.health.v1 answers for: the server as a whole ("") and the inference service. */
export const healthCheckedServices: readonly string[] = ['', 'inference.GRPCInferenceService'];

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/**
 * Watch streams open at once. Each is an HTTP/2 stream held open for as long as its client likes; the callers
 * are load balancers and probes, a handful per server, so 100 leaves ample room while a client that opens
 * streams in a loop cannot pile up unbounded ones (the 101st is refused RESOURCE_EXHAUSTED).
 */
export const maxHealthWatchers = 100;

/**
 * How often Watch looks at readiness. Readiness has no change event of its own (Redis' connection state, the
 * registry guardian and shutdown each change it), so one timer, running only while someone watches, reads it.
 */
const watchPollMs = 250;

interface HealthCheckRequest {
  service?: string;
}

/** An open Watch stream and the status it was last sent. */
interface Watcher {
  stream: ServerWritableStream<HealthCheckRequest, unknown>;
  last: ServingStatus;
}

/**
 * The standard gRPC health service (grpc.health.v1.Health, proto/health.proto): Check answers SERVING while the
 * server is ready (the same readiness as REST's /v2/health/ready and gRPC's ServerReady) and NOT_SERVING
 * otherwise, a draining server included; Watch sends the status now and each change, until the client ends the
 * call or the server closes. Unknown services: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN (the protocol's rules).
 */
export class HealthService {
  private readonly watchers = new Set<Watcher>();
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  /**
   * @param metrics where Watch streams are counted, as the gRPC server counts every other call
   * (gantry_grpc_requests_total{method="Watch"}: OK when the server ended the stream, CANCELLED when the client
   * left, RESOURCE_EXHAUSTED past maxHealthWatchers, UNAVAILABLE while shutting down). The server passes Watch
   * through untouched, so only this service sees those outcomes.
   */
  constructor(
    private readonly sources: ReadinessSources,
    private readonly metrics?: Pick<GrpcMetrics, 'requests'>,
  ) {}

  /**
   * The handlers of `grpc.health.v1.Health` for the gRPC server: Check as a unary handler (metered and logged like
   * every call), Watch as grpc-js' own server-streaming handler, which the server passes through as it is.
   */
  get handlers(): UnaryHandlers {
    const check: UnaryHandler<HealthCheckRequest> = async (request) => this.check(request.service ?? '');
    const watch = (stream: ServerWritableStream<HealthCheckRequest, unknown>) => this.watch(stream);
    return { Check: check as UnaryHandler<never, unknown>, Watch: watch as unknown as UnaryHandler<never, unknown> };
  }

  /** Watch streams now open (for tests: it must stay bounded and drop to zero when clients leave). */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Ends every Watch stream (after a last NOT_SERVING) and refuses new ones: called when the gRPC server shuts down. */
  close(): void {
    this.closed = true;
    this.stopPolling();
    for (const watcher of this.watchers) {
      if (watcher.last !== 'NOT_SERVING' && watcher.last !== 'SERVICE_UNKNOWN') watcher.stream.write({ status: 'NOT_SERVING' });
      watcher.stream.end();
      this.count('OK');
    }
    this.watchers.clear();
  }

  private current(service: string): ServingStatus {
    if (!healthCheckedServices.includes(service)) return 'SERVICE_UNKNOWN';
    return !this.closed && unreadyReason(this.sources) === undefined ? 'SERVING' : 'NOT_SERVING';
  }

  private check(service: string): { status: ServingStatus } {
    const answer = this.current(service);
    if (answer === 'SERVICE_UNKNOWN') throw new GantryError(ErrorCode.NotFound, unknownServiceMessage(service));
    return { status: answer };
  }

  private watch(stream: ServerWritableStream<HealthCheckRequest, unknown>): void {
    if (this.closed) {
      stream.emit('error', { code: status.UNAVAILABLE, details: 'The server is shutting down; retry on another instance.' });
      this.count('UNAVAILABLE');
      return;
    }
    if (this.watchers.size >= maxHealthWatchers) {
      stream.emit('error', {
        code: status.RESOURCE_EXHAUSTED,
        details: `This server already has ${maxHealthWatchers} health Watch streams open; close one or use Check.`,
      });
      this.count('RESOURCE_EXHAUSTED');
      return;
    }
    const service = stream.request.service ?? '';
    const watcher: Watcher = { stream, last: this.current(service) };
    this.watchers.add(watcher);
    stream.write({ status: watcher.last });
    stream.on('cancelled', () => this.forget(watcher));
    stream.on('error', () => this.forget(watcher));
    this.startPolling();
  }

  private forget(watcher: Watcher): void {
    if (!this.watchers.delete(watcher)) return;
    this.count('CANCELLED');
    if (this.watchers.size === 0) this.stopPolling();
  }

  private count(code: 'OK' | 'CANCELLED' | 'RESOURCE_EXHAUSTED' | 'UNAVAILABLE'): void {
    this.metrics?.requests.inc({ method: 'Watch', code });
  }

  private startPolling(): void {
    if (this.poller !== undefined) return;
    this.poller = setInterval(() => {
      for (const watcher of this.watchers) {
        const now = this.current(watcher.stream.request.service ?? '');
        if (now === watcher.last) continue;
        watcher.last = now;
        watcher.stream.write({ status: now });
      }
    }, watchPollMs);
    this.poller.unref();
  }

  private stopPolling(): void {
    if (this.poller === undefined) return;
    clearInterval(this.poller);
    this.poller = undefined;
  }
}

function unknownServiceMessage(service: string): string {
  return `Unknown service '${service.slice(0, 100)}' for health checks: ask for '' (the server) or 'inference.GRPCInferenceService'.`;
}
