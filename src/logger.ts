import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * pino options shared by every role. Tensor data, model bytes and credentials never reach a log line: the
 * redaction list covers the places where they could appear by accident (request bodies, Redis URLs).
 */
export function loggerOptions(config: Pick<Config, 'LOG_LEVEL'>, role: string): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
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

export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, role: string): Logger {
  return pino(loggerOptions(config, role));
}
