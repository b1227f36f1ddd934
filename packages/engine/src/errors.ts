/**
 * Typed errors. Every failure a user can cause has its own class and a message that names the
 * file, flag or shapes involved, so the CLI can print it on one line without a stack trace.
 */
export class DescentError extends Error {
  override name = 'DescentError';
  /** Process exit code the CLI uses for this error (2 = usage error, 1 = everything else). */
  exitCode = 1;
}

/** Two tensors whose shapes do not fit together; the message names both shapes. */
export class ShapeError extends DescentError {
  override name = 'ShapeError';
}

/** A data file that is missing, truncated, or not what it claims to be. */
export class DataError extends DescentError {
  override name = 'DataError';
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** A saved model that cannot be read: missing files, malformed JSON, wrong sizes, unsupported layers. */
export class ModelFormatError extends DescentError {
  override name = 'ModelFormatError';
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** A flag or argument value that makes no sense. */
export class UsageError extends DescentError {
  override name = 'UsageError';
  override exitCode = 2;
}

/** The model or training configuration is used in a way it does not support. */
export class ConfigError extends DescentError {
  override name = 'ConfigError';
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
