/**
 * Mutations as fast-check arbitraries: byte-level changes for binary files, and structural
 * changes for JSON (a field replaced by a value of the wrong type, a huge number, a string with
 * line breaks, nesting thousands deep), the kinds of damage a hostile or broken file carries.
 */
import fc from 'fast-check';

/** One change to a byte array; positions are fractions of the length so they suit any size. */
export type ByteEdit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'uint32'; at: number; value: number; littleEndian: boolean }
  | { kind: 'repeat'; times: number };

/**
 * A fraction in [0, 1) spread over the whole range: fc.double picks among representable doubles,
 * and most of those in [0, 1) are below 0.001, which would put nearly every edit at byte 0.
 */
const POSITION_STEPS = 2 ** 30;
const position = fc.integer({ min: 0, max: POSITION_STEPS - 1 }).map((step) => step / POSITION_STEPS);
/** Header fields are where sizes live: bias positions towards the start. */
const headerPosition = fc.integer({ min: 0, max: 24 });
const interestingUint32 = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 28, 255, 256, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 60_000, 1_000_000, 2 ** 24, 2 ** 28),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('uint32' as const), at: headerPosition.map((n) => -n - 1), value: interestingUint32, littleEndian: fc.boolean() }),
  fc.record({ kind: fc.constant('repeat' as const), times: fc.integer({ min: 2, max: 4 }) }),
);

/** Applies edits in order; never changes `bytes` itself. */
export function applyByteEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let out: Uint8Array = Uint8Array.from(bytes);
  for (const edit of edits) {
    // Negative positions count header bytes from the start (-1 is byte 0).
    const at = (fraction: number) => (fraction < 0 ? Math.min(-fraction - 1, out.length) : Math.floor(fraction * out.length));
    switch (edit.kind) {
      case 'flip':
        if (out.length) out[at(edit.at)] ^= 1 << edit.bit;
        break;
      case 'set':
        if (out.length) out[at(edit.at)] = edit.value;
        break;
      case 'truncate':
        out = out.slice(0, at(edit.at));
        break;
      case 'insert': {
        const i = at(edit.at);
        out = concat([out.subarray(0, i), edit.bytes, out.subarray(i)]);
        break;
      }
      case 'delete': {
        const i = at(edit.at);
        out = concat([out.subarray(0, i), out.subarray(i + edit.count)]);
        break;
      }
      case 'uint32': {
        const i = Math.max(0, Math.min(at(edit.at), out.length - 4));
        if (out.length >= 4) new DataView(out.buffer, out.byteOffset, out.length).setUint32(i, edit.value >>> 0, edit.littleEndian);
        break;
      }
      case 'repeat':
        out = concat(Array.from({ length: edit.times }, () => out));
        break;
    }
  }
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- JSON ---------------------------------------------------------------------------------------

/** A JSON text that cannot be built as a value (it would overflow the stack of the generator itself). */
export interface RawJson {
  raw: string;
}

/** Values that break code which assumes a type: wrong types, extremes, long or multi-line text, deep nesting. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e9, 1e300, -1e300, 2 ** 31, 2 ** 53, '', 'float16', 'relu', '../weights.bin', '/etc/passwd', 'weights.bin'),
  fc.constantFrom('a\nb\r\nc', 'x'.repeat(200_000), '\u0000', '\u2028', '{"nested": "json"}', 'tanh', 'Conv2D', 'layers-model'),
  fc.constantFrom({}, [], [null], [[]], [1, 2, 3], { class_name: {} }, { config: null }, { toString: 'x' }, { __proto__: 1 }),
  fc.integer({ min: -10, max: 10_000_000 }),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.array(fc.integer({ min: -1, max: 1_000_000 }), { maxLength: 6 }),
  fc.integer({ min: 1, max: 200_000 }).map((depth): RawJson => ({ raw: `${'['.repeat(depth)}${']'.repeat(depth)}` })),
  fc.integer({ min: 1, max: 50_000 }).map((depth): RawJson => ({ raw: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` })),
  fc.integer({ min: 2, max: 3000 }).map((n): RawJson => ({ raw: `[${Array(n).fill('"weights.bin"').join(',')}]` })),
  fc.jsonValue({ maxDepth: 3 }),
);

/** One change to a parsed JSON document: `at` picks a node (as a fraction of all nodes). */
export type JsonEdit =
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'delete'; at: number }
  | { kind: 'duplicate'; at: number; times: number };

export const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: position, value: hostileValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: position, times: fc.integer({ min: 2, max: 3000 }) }) },
);

type Container = Record<string, unknown> | unknown[];
interface Slot {
  parent: Container;
  key: string | number;
}

/** Every place a value sits in the document, parents before children. */
function slots(root: unknown): Slot[] {
  const out: Slot[] = [];
  const visit = (node: unknown) => {
    if (node === null || typeof node !== 'object' || isRaw(node)) return;
    const container = node as Container;
    for (const key of Array.isArray(container) ? container.keys() : Object.keys(container)) {
      const slot = { parent: container, key } as Slot;
      out.push(slot);
      visit((container as Record<string | number, unknown>)[key]);
    }
  };
  visit(root);
  return out;
}

/**
 * The document after the edits, as JSON text. Large arrays (weights' values never appear in
 * model.json, but base64 state does) are edited like any other node.
 */
export function applyJsonEdits(document: unknown, edits: readonly JsonEdit[]): string {
  const root = structuredClone(document);
  let budget = 8_000_000; // characters that duplication may add to the whole document
  for (const edit of edits) {
    const all = slots(root);
    if (all.length === 0) break;
    const { parent, key } = all[Math.floor(edit.at * all.length)];
    const record = parent as Record<string | number, unknown>;
    if (edit.kind === 'replace') record[key] = edit.value;
    else if (edit.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete record[key];
    } else {
      // Keep the document within a few MB: many copies of a small node, few of a large one.
      const size = (JSON.stringify(record[key]) ?? '').length + 1;
      const times = Math.max(1, Math.min(edit.times, Math.floor(Math.min(4_000_000, budget) / size)));
      budget -= size * (times - 1);
      if (Array.isArray(parent)) parent.splice(key as number, 1, ...Array.from({ length: times }, () => parent[key as number]));
      else record[key] = Array.from({ length: times }, () => record[key]);
    }
  }
  return stringifyWithRaw(root);
}

function isRaw(value: unknown): value is RawJson {
  return typeof value === 'object' && value !== null && typeof (value as RawJson).raw === 'string' && Object.keys(value).length === 1;
}

/** JSON.stringify, with RawJson nodes spliced in as their text. */
export function stringifyWithRaw(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, node: unknown) => {
    if (isRaw(node)) {
      raws.push(node.raw);
      return `\u0000RAW${raws.length - 1}\u0000`;
    }
    return node;
  });
  return text === undefined ? 'null' : text.replace(/"\\u0000RAW(\d+)\\u0000"/g, (_m, i: string) => raws[Number(i)]);
}

export type TextEdit = undefined | { kind: 'truncate'; at: number } | { kind: 'set'; at: number; value: number };

/** Text-level damage to a JSON file: cut short, a byte changed, or left alone. */
export const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 127 }) }) },
);

export function applyTextEdit(text: string, edit: TextEdit): string {
  if (!edit) return text;
  const i = Math.floor(edit.at * text.length);
  if (edit.kind === 'truncate') return text.slice(0, i);
  return text.slice(0, i) + String.fromCharCode(edit.value) + text.slice(i + 1);
}
