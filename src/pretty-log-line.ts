/**
 * GANTRY_PRETTY_LOGS=true: each JSON log line rewritten for a person at a terminal, as
 * `05:12:03.104 INFO  api: request answered requestId=… method=POST route=/v2/models/:model/infer status=200`.
 * Built in (pino-pretty would be one more dependency for a development convenience); only lines are reformatted,
 * what they hold is the same as in JSON (redaction has already happened).
 */

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/** Fields the line's head already shows, or that only matter in JSON. */
const shownInHead = new Set(['level', 'time', 'msg', 'role', 'pid', 'hostname']);

function valueText(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

/** One stringified pino line (ending in a newline) as a readable line; anything that is not JSON stays as it is. */
export function prettyLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = levelNames[entry.level as number] ?? String(entry.level);
  const role = typeof entry.role === 'string' ? `${entry.role}: ` : '';
  let text = `${time} ${level} ${role}${typeof entry.msg === 'string' ? entry.msg : ''}`;
  let stack: string | undefined;
  for (const [key, value] of Object.entries(entry)) {
    if (shownInHead.has(key) || value === undefined) continue;
    // A stack reads as lines of its own, after the fields.
    if (value !== null && typeof value === 'object' && typeof (value as { stack?: unknown }).stack === 'string') {
      const { stack: own, ...rest } = value as { stack: string };
      stack = own;
      text += ` ${key}=${valueText(rest)}`;
      continue;
    }
    text += ` ${key}=${valueText(value)}`;
  }
  return `${text}\n${stack === undefined ? '' : `${stack.replace(/^/gm, '    ')}\n`}`;
}
