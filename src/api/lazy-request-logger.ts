import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, FastifyChildLoggerFactory } from 'fastify/types/logger.js';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogCall = FastifyBaseLogger['info'];

/** What a pino logger offers beyond Fastify's base interface that this needs: whether a level would print. */
interface LevelAware {
  isLevelEnabled?: (level: string) => boolean;
}

/**
 * A request's logger, created on the first line logged at an enabled level. Fastify gives every request a child
 * logger bound to its id, and pino's `child()` serializes and redacts those bindings at once (1.2 µs in a loop, 1.8 %
 * of the API's CPU under load: docs/performance.md); most requests log nothing, so the child is made only when a
 * line is really written, with the same bindings and options as Fastify's own factory would use.
 */
class LazyChildLogger implements FastifyBaseLogger {
  private created: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger & LevelAware,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get level(): string {
    return this.created?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.logger().level = level;
  }

  // Methods on the prototype, not arrow properties: one of these is made per request, and pino's own methods are
  // called on their logger too, so nothing detaches them.
  fatal(...args: Parameters<LogCall>): void {
    this.write('fatal', args);
  }

  error(...args: Parameters<LogCall>): void {
    this.write('error', args);
  }

  warn(...args: Parameters<LogCall>): void {
    this.write('warn', args);
  }

  info(...args: Parameters<LogCall>): void {
    this.write('info', args);
  }

  debug(...args: Parameters<LogCall>): void {
    this.write('debug', args);
  }

  trace(...args: Parameters<LogCall>): void {
    this.write('trace', args);
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, options);
  }

  private write(level: Level, args: Parameters<LogCall>): void {
    // Once made, the child decides (its level may have been changed); before, the parent's level is the child's.
    if (this.created === undefined && this.parent.isLevelEnabled?.(level) === false) return;
    (this.logger()[level] as (...line: unknown[]) => void)(...args);
  }

  private logger(): FastifyBaseLogger {
    this.created ??= this.parent.child(this.bindings, this.options);
    return this.created;
  }
}

/**
 * Fastify's `childLoggerFactory`: a lazily created child, except for a route with a log level of its own, which
 * gets pino's child at once (its level is not the parent's, so the parent cannot answer for it).
 */
export const lazyRequestLogger: FastifyChildLoggerFactory = (logger, bindings, options) =>
  options.level === undefined ? new LazyChildLogger(logger, bindings, options) : logger.child(bindings, options);
