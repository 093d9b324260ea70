import { describeValue, errors } from '../errors.js';

export interface ScheduleParameters {
  /** 1 is the highest; undefined means the model's default priority. */
  priority?: number;
  /** Microseconds; undefined means the model's (or the server's) default timeout. */
  timeoutMicroseconds?: number;
}

/**
 * BullMQ's lowest priority (its PRIORITY_LIMIT, 2^21 - 1: a job above it is refused); Triton allows any int64, but a
 * queue can only order this many levels.
 */
export const lowestPriority = 2 ** 21 - 1;
/** A model's `defaultPriority` unless configured: 1–9 overtake requests that ask for none, 11 and more yield to them. */
export const standardDefaultPriority = 10;

function readNonNegativeInteger(parameters: Record<string, unknown>, name: string, maximum: number): number | undefined {
  const value = parameters[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw errors.invalidArgument(`Request parameter '${name}' must be a non-negative integer, got ${describeValue(value)}.`);
  }
  if (value > maximum) throw errors.invalidArgument(`Request parameter '${name}' must be at most ${maximum}, got ${value}.`);
  return value === 0 ? undefined : value;
}

/**
 * Reads the schedule policy extension's request parameters: `priority` (0 or absent: the default level; 1 is the
 * highest) and `timeout` in microseconds (0 or absent: the default timeout).
 */
export function readScheduleParameters(parameters: Record<string, unknown> | undefined): ScheduleParameters {
  if (parameters === undefined) return {};
  const priority = readNonNegativeInteger(parameters, 'priority', lowestPriority);
  const timeoutMicroseconds = readNonNegativeInteger(parameters, 'timeout', 3_600_000_000);
  return {
    ...(priority === undefined ? {} : { priority }),
    ...(timeoutMicroseconds === undefined ? {} : { timeoutMicroseconds }),
  };
}
