import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';
import { prettyLogLine } from './pretty-log-line.js';

export type { Logger };

/** What the logger reads from the configuration; GANTRY_PRETTY_LOGS unset is JSON. */
export type LoggerConfig = Pick<Config, 'LOG_LEVEL'> & Partial<Pick<Config, 'GANTRY_PRETTY_LOGS'>>;

/**
 * pino options shared by every role. Tensor data, model bytes and credentials never reach a log line: the
 * redaction list covers the places where they could appear by accident (request bodies, Redis URLs).
 * GANTRY_PRETTY_LOGS=true rewrites each line for a terminal (pretty-log-line.ts); JSON is the default, for log
 * collectors.
 */
export function loggerOptions(config: LoggerConfig, role: string): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    ...(config.GANTRY_PRETTY_LOGS === true ? { hooks: { streamWrite: prettyLogLine } } : {}),
    base: { role, pid: process.pid },
    redact: {
      // API keys travel only in these two headers (src/auth/credentials.ts), wherever a headers object is logged.
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers["x-api-key"]',
        '*.headers.authorization',
        '*.headers["x-api-key"]',
        'body',
        'inputs',
        'outputs',
        'redisUrl',
        '*.password',
      ],
      censor: '[redacted]',
    },
  };
}

export function createLogger(config: LoggerConfig, role: string): Logger {
  return pino(loggerOptions(config, role));
}
