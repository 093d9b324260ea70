/** A command line the CLI cannot run: the message says what is wrong; the command's usage follows it, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
