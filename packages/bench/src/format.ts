/** Number formatting and markdown tables for the summary. */

export function max(values: readonly number[]): number {
  return values.reduce((best, value) => Math.max(best, value), -Infinity);
}

/** A markdown table; `right` marks the columns holding numbers. */
export function table(header: string[], rows: string[][], right: boolean[] = []): string {
  const rule = header.map((_, i) => (right[i] ? '---:' : '---'));
  return [header, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

export const seconds = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(1));
export const ratio = (value: number): string => `${value < 10 ? value.toFixed(2) : value.toFixed(1)}x`;
export const mib = (value: number): string => value.toFixed(0);
export const ms = (value: number): string => (value < 100 ? value.toFixed(1) : value.toFixed(0));
export const percent = (value: number, digits = 2): string => `${(value * 100).toFixed(digits)}%`;
export const exp = (value: number): string => value.toExponential(2);
