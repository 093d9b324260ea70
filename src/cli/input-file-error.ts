/**
 * An input file the CLI cannot turn into a tensor (unreadable, not the format its extension says, a value the
 * datatype cannot hold). The message says what is wrong; the command adds which file, and exits with the usage code.
 */
export class InputFileError extends Error {
  override name = 'InputFileError';
}
