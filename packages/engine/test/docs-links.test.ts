/**
 * The docs point into the source with links of one form (documented at the top of
 * docs/learn/gradients.md):
 *
 *     [packages/engine/src/ops/matmul.ts › matmul](../../packages/engine/src/ops/matmul.ts)
 *
 * i.e. link text "<path from the repository root> › <symbol>" and a relative link to that file.
 * `Outer.inner` names a member (a class method, an interface method, or a function inside an
 * object such as the reference kernels). This test fails when a referenced file moves, a symbol
 * is renamed, a link's text and target disagree, or a source path is mentioned in any other way
 * that no longer exists — so the docs cannot drift from the code.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');

/** A link whose text is "path › symbol". */
const REFERENCE = /\[([^\]\n]+?) › ([^\]\n]+?)\]\(([^)\s]+)\)/g;
/** Any markdown link to a source file, to catch links that skip the reference form. */
const SOURCE_LINK = /\[([^\]\n]*)\]\(([^)\s]+\.(?:ts|mjs|js|json))(?:#[^)]*)?\)/g;
/** A source path written in prose or code, e.g. `packages/engine/src/tensor.ts`. */
const SOURCE_PATH = /(?<![\w./-])((?:packages|test)\/[\w./-]+\.(?:ts|mjs|js|json))\b/g;

export interface Problem {
  file: string;
  line: number;
  message: string;
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

/** Whether `name` is declared in `source`: a function, class, interface, type, enum, variable, or a method. */
export function declares(source: string, name: string): boolean {
  const escaped = name.replace(/[$]/g, '\\$');
  const declaration = new RegExp(`\\b(?:function\\*?|class|interface|type|enum|const|let|var)\\s+${escaped}\\b`);
  const method = new RegExp(
    // A line that starts with the name and an opening parenthesis, unless it is a call statement `name(…);`.
    `^\\s*(?:(?:export|public|private|protected|static|async|readonly|override|abstract|get|set)\\s+)*${escaped}\\s*(?:<[^>\\n]*>)?\\s*\\((?![^\\n]*\\);\\s*$)`,
    'm',
  );
  return declaration.test(source) || method.test(source);
}

/** Checks every source reference in one markdown text; `file` is its path relative to ROOT. */
export function checkMarkdown(file: string, text: string, root = ROOT): { problems: Problem[]; references: number } {
  const problems: Problem[] = [];
  const report = (index: number, message: string) => problems.push({ file, line: lineOf(text, index), message });
  const here = dirname(join(root, file));
  let references = 0;
  const referenceSpans = new Map<number, number>();

  // Links are not links inside code (`…` or fenced blocks); blank code out, keeping every offset.
  const prose = text.replace(/```[\s\S]*?```|`[^`\n]*`/g, (code) => code.replace(/[^\n]/g, ' '));
  for (const match of prose.matchAll(REFERENCE)) {
    references++;
    referenceSpans.set(match.index!, match.index! + match[0].length);
    const [, path, symbol, target] = match;
    const absolute = join(root, path);
    if (!existsSync(absolute) || !statSync(absolute).isFile()) {
      report(match.index!, `${path} does not exist`);
      continue;
    }
    if (resolve(here, target) !== absolute) {
      report(match.index!, `link text names ${path} but the link goes to ${relative(root, resolve(here, target))}`);
    }
    const source = readFileSync(absolute, 'utf8');
    const parts = symbol.split('.');
    if (parts.some((part) => !/^[A-Za-z_$][\w$]*$/.test(part))) {
      report(match.index!, `'${symbol}' is not a symbol name (use Name or Outer.member)`);
      continue;
    }
    for (const part of parts) {
      if (!declares(source, part)) report(match.index!, `${path} declares no '${part}'`);
    }
  }
  for (const match of prose.matchAll(SOURCE_LINK)) {
    if (referenceSpans.has(match.index!)) continue;
    report(match.index!, `link to ${match[2]} is not in the form [path › symbol](relative path)`);
  }
  const insideReference = (index: number) => [...referenceSpans].some(([start, end]) => index >= start && index < end);
  for (const match of text.matchAll(SOURCE_PATH)) {
    if (insideReference(match.index!)) continue;
    if (!existsSync(join(root, match[1]))) report(match.index!, `${match[1]} does not exist`);
  }
  return { problems, references };
}

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

describe('source references in the docs', () => {
  const files = [...markdownFiles(join(ROOT, 'docs')), ...(existsSync(join(ROOT, 'README.md')) ? [join(ROOT, 'README.md')] : [])];

  it('finds the learning guides', () => {
    const names = files.map((f) => relative(ROOT, f));
    expect(names).toContain('docs/learn/gradients.md');
    expect(names).toContain('docs/learn/one-step.md');
  });

  it('every reference resolves to an existing file that declares the named symbol', () => {
    const problems: Problem[] = [];
    const counts: Record<string, number> = {};
    for (const file of files) {
      const name = relative(ROOT, file);
      const result = checkMarkdown(name, readFileSync(file, 'utf8'));
      problems.push(...result.problems);
      counts[name] = result.references;
    }
    expect(problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([]);
    // The guides link every derivation to its code; a pattern that matched nothing would pass vacuously.
    expect(counts['docs/learn/gradients.md']).toBeGreaterThanOrEqual(20);
    expect(counts['docs/learn/one-step.md']).toBeGreaterThanOrEqual(5);
  });
});

describe('the reference checker itself', () => {
  const doc = (body: string) => checkMarkdown('docs/learn/example.md', body);

  it('accepts a correct reference, including a member of an object or class', () => {
    const ok = doc([
      '[packages/engine/src/ops/matmul.ts › matmul](../../packages/engine/src/ops/matmul.ts)',
      '[packages/engine/src/backend/reference.ts › createReferenceKernels.gemm](../../packages/engine/src/backend/reference.ts)',
      '[packages/engine/src/optimizers/adam.ts › Adam.step](../../packages/engine/src/optimizers/adam.ts)',
    ].join('\n'));
    expect(ok).toEqual({ problems: [], references: 3 });
  });

  it('reports a missing file, a missing symbol, a mismatched target and a link in another form', () => {
    const { problems } = doc([
      '[packages/engine/src/ops/nothing.ts › matmul](../../packages/engine/src/ops/nothing.ts)',
      '[packages/engine/src/ops/matmul.ts › matmull](../../packages/engine/src/ops/matmul.ts)',
      '[packages/engine/src/ops/matmul.ts › matmul](../../packages/engine/src/ops/relu.ts)',
      'see [the matmul op](../../packages/engine/src/ops/matmul.ts) and `packages/engine/src/gone.ts`',
    ].join('\n'));
    expect(problems.map((p) => `${p.line}: ${p.message}`)).toEqual([
      '1: packages/engine/src/ops/nothing.ts does not exist',
      "2: packages/engine/src/ops/matmul.ts declares no 'matmull'",
      '3: link text names packages/engine/src/ops/matmul.ts but the link goes to packages/engine/src/ops/relu.ts',
      '4: link to ../../packages/engine/src/ops/matmul.ts is not in the form [path › symbol](relative path)',
      '4: packages/engine/src/gone.ts does not exist',
    ]);
  });

  it('ignores link syntax inside code, but still checks source paths there', () => {
    const { problems, references } = doc('`[path › symbol](…)` and\n```\n[a › b](c.ts)\n```\nand `packages/engine/src/gone.ts`');
    expect(references).toBe(0);
    expect(problems.map((p) => `${p.line}: ${p.message}`)).toEqual(['5: packages/engine/src/gone.ts does not exist']);
  });

  it('recognises declarations and not mere mentions', () => {
    const source = 'export function gemm(m: number) {}\nclass Adam {\n  step(parameters: P[]): void {}\n}\nconst x = relu(y);\n  softmax(z, out);\ninterface K {\n  fill(out: S, value: number): void;\n}\n';
    expect(declares(source, 'gemm')).toBe(true);
    expect(declares(source, 'Adam')).toBe(true);
    expect(declares(source, 'step')).toBe(true);
    expect(declares(source, 'fill')).toBe(true);
    expect(declares(source, 'relu')).toBe(false);
    expect(declares(source, 'softmax'), 'a call statement is not a declaration').toBe(false);
  });
});
