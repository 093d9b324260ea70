/**
 * The CLI's exit codes (docs/cli.md), so scripts can tell a typo from a server that is down from a model that is not
 * there. One table: every command exits through it.
 */
export const ExitCode = {
  /** Done as asked. */
  Ok: 0,
  /** The server failed or could not be reached: a 5xx, a connection failure, a timeout, a model that ended UNAVAILABLE, a job that failed. */
  Failure: 1,
  /** The command line was wrong (unknown command or option, a missing argument, an unreadable input file); nothing was sent. */
  Usage: 2,
  /** The model, version, key, tenant, job or batch does not exist (404). */
  NotFound: 3,
  /** The server refused the request as it was: invalid (400), conflicting (409), too large (413), over a limit (429). */
  Refused: 4,
  /** No key, a bad key, or a key without the scope the command needs (401, 403). */
  NotAllowed: 5,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code for an HTTP status from the server (0: no answer came). */
export function exitCodeForStatus(status: number): ExitCodeValue {
  if (status === 404) return ExitCode.NotFound;
  if (status === 401 || status === 403) return ExitCode.NotAllowed;
  if (status >= 400 && status < 500) return ExitCode.Refused;
  return ExitCode.Failure;
}
