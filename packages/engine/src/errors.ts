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
    super(fileMessage(file, problem));
  }
}

/** A saved model that cannot be read: missing files, malformed JSON, wrong sizes, unsupported layers. */
export class ModelFormatError extends DescentError {
  override name = 'ModelFormatError';
  constructor(readonly file: string, problem: string) {
    super(fileMessage(file, problem));
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

/** Longest file name a message quotes in full; longer ones keep their end ("…/models/x/model.json"). */
const MAX_FILE_IN_MESSAGE = 120;

/** "file: problem" on one line, whatever characters the file name holds. */
function fileMessage(file: string, problem: string): string {
  const name = file.length > MAX_FILE_IN_MESSAGE ? `…${file.slice(file.length - MAX_FILE_IN_MESSAGE + 1)}` : file;
  return `${escapeControl(name)}: ${escapeControl(problem)}`;
}

/** Line breaks, tabs and other control characters as escapes, so a message stays on one line. */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * A short, escaped rendering of a value read from outside, for error messages: strings are cut
 * to `max` characters and quoted, lists and objects show their first items only, nesting stops
 * at depth 2. Never longer than about `max` + 10 characters, whatever the value.
 */
/** Quotes text read from outside: as is in single quotes when short and plain, else a short escaped excerpt. */
export function quote(text: string, max = 60): string {
  return text.length <= max && /^[\x20-\x7e]*$/.test(text) ? `'${text}'` : excerpt(text);
}

export function excerpt(value: unknown, max = 40): string {
  const text = render(value, 2, max);
  return text.length > max + 10 ? `${text.slice(0, max)}…` : text;
}

function render(value: unknown, depth: number, max: number): string {
  if (typeof value === 'string') {
    const cut = value.length > max ? `${value.slice(0, max)}…` : value;
    return JSON.stringify(cut).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return 'nothing';
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) {
    if (depth === 0) return value.length === 0 ? '[]' : `[…${value.length} items]`;
    const shown = value.slice(0, 4).map((item) => render(item, depth - 1, 16));
    return `[${shown.join(', ')}${value.length > 4 ? `, …${value.length - 4} more` : ''}]`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value as object);
    if (depth === 0 || keys.length === 0) return keys.length === 0 ? '{}' : '{…}';
    const shown = keys.slice(0, 3).map((key) => `${render(key, 0, 16)}: ${render((value as Record<string, unknown>)[key], depth - 1, 16)}`);
    return `{${shown.join(', ')}${keys.length > 3 ? ', …' : ''}}`;
  }
  return typeof value;
}
