/**
 * Where the CLI writes. Results go to stdout (or, with --json, one JSON object per line and
 * nothing else); notes and warnings go to stderr. On a terminal a progress line can be redrawn in
 * place; any other output first finishes that line. Colour only on a terminal, never with NO_COLOR.
 */
import type { Writable } from 'node:stream';
import { formatMetric, type ProgressSink } from '@descent/engine';

export interface OutputOptions {
  json?: boolean;
  stdout?: Writable & { isTTY?: boolean; columns?: number; hasColors?: () => boolean };
  stderr?: Writable & { isTTY?: boolean; hasColors?: () => boolean };
}

/**
 * stdout's reader can go away (`descent train | head -3`). Then nothing more is written there;
 * commands that only print stop at once, while `train` (keepRunning) carries on and saves its model.
 */
export const stdoutPipe = { closed: false, keepRunning: false };

export class Output implements ProgressSink {
  readonly json: boolean;
  /** stdout is a terminal: progress bars redraw in place. */
  readonly interactive: boolean;
  readonly color: boolean;
  private readonly target: NonNullable<OutputOptions['stdout']>;
  private readonly stderr: NonNullable<OutputOptions['stderr']>;
  /** Length of the progress line currently drawn, 0 if none. */
  private openLine = 0;

  constructor({ json = false, stdout = process.stdout, stderr = process.stderr }: OutputOptions = {}) {
    this.json = json;
    this.target = stdout;
    this.stderr = stderr;
    this.interactive = stdout.isTTY === true;
    // tty.WriteStream.hasColors() honours NO_COLOR, NODE_DISABLE_COLORS and FORCE_COLOR.
    this.color = this.interactive && !process.env.NO_COLOR && (stdout.hasColors?.() ?? false);
  }

  /** stdout, or a sink once its reader has gone. */
  private get stdout(): NonNullable<OutputOptions['stdout']> {
    return stdoutPipe.closed && this.target === process.stdout ? CLOSED : this.target;
  }

  /** A line of human-readable results (suppressed with --json: use `record`). */
  line(text = ''): void {
    if (this.json) return;
    this.finishLine();
    this.stdout.write(`${text}\n`);
  }

  /** One JSON object on its own line (only with --json). */
  record(value: Record<string, unknown>): void {
    if (!this.json) return;
    this.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** A note for the person at the terminal: stdout normally, stderr with --json so stdout stays JSON. */
  note(text: string): void {
    if (this.json) {
      this.stderr.write(`${text}\n`);
      return;
    }
    this.line(text);
  }

  /** A line on stderr, as given. */
  error(text: string): void {
    this.finishLine();
    this.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.finishLine();
    this.stderr.write(`descent: warning: ${text}\n`);
  }

  /** Width of the terminal, when stdout is one. */
  get columns(): number | undefined {
    return this.stdout.columns;
  }

  /** A heading line (bold on a terminal). */
  heading(text: string): void {
    this.line(this.bold(text));
  }

  /** Draws `text` over the current line (terminals only), cut to the terminal's width. */
  redraw(text: string): void {
    if (!this.interactive || this.json) return;
    const width = Math.max(20, (this.stdout.columns || 120) - 1);
    const shown = text.length > width ? text.slice(0, width) : text;
    this.stdout.write(`\r${shown}${' '.repeat(Math.max(0, this.openLine - shown.length))}`);
    this.openLine = shown.length;
  }

  /** Ends a redrawn line so the next output starts on a fresh one. */
  finishLine(): void {
    if (this.openLine === 0) return;
    this.stdout.write('\n');
    this.openLine = 0;
  }

  bold(text: string): string {
    return this.color ? `\x1b[1m${text}\x1b[22m` : text;
  }

  dim(text: string): string {
    return this.color ? `\x1b[2m${text}\x1b[22m` : text;
  }

  green(text: string): string {
    return this.color ? `\x1b[32m${text}\x1b[39m` : text;
  }
}

const CLOSED = { write: () => true } as unknown as NonNullable<OutputOptions['stdout']>;

/** A plain text table: columns padded to their widest cell; `align` 'r' right-aligns a column. */
export function table(rows: string[][], align: Array<'l' | 'r'> = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** 12345 → "12,345". */
export function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** Keras prints metrics with 4 decimals, switching to exponent notation for tiny values. NaN (null once saved as JSON) prints as nan. */
export const metric = formatMetric;

/** A path relative to the working folder when that is shorter, for messages. */
export function shortPath(path: string, cwd = process.cwd()): string {
  if (path.startsWith(`${cwd}/`)) return path.slice(cwd.length + 1);
  return path;
}
