/**
 * The engine's browser-safe core (`@descent/engine/core`, src/core.ts) must reach no Node module,
 * so a web page can bundle it: every module it imports, followed through relative imports and
 * into the workspace packages it uses, is read and its imports checked against Node's built-ins.
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as core from '../src/core.js';
import * as node from '../src/index.js';

const PACKAGES = resolve(import.meta.dirname, '../..');
const BUILTINS = new Set(builtinModules);
/** `import … from 'x'`, `export … from 'x'`, `import 'x'`, `import('x')`; type-only imports are erased and skipped. */
const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Where a workspace package's source entry is, e.g. @descent/kernels-wasm → packages/kernels-wasm/src/index.ts. */
function workspaceEntry(specifier: string): string | undefined {
  const match = /^@descent\/([\w-]+)(?:\/(.+))?$/.exec(specifier);
  if (!match) return undefined;
  return resolve(PACKAGES, match[1], 'src', `${match[2] ?? 'index'}.ts`);
}

/** Every module reachable from `entry`, and each import of a module outside the workspace. */
function importGraph(entry: string): { modules: string[]; external: Array<{ from: string; specifier: string }> } {
  const seen = new Set<string>();
  const external: Array<{ from: string; specifier: string }> = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2];
      if (specifier.startsWith('.')) queue.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else if (workspaceEntry(specifier)) queue.push(workspaceEntry(specifier)!);
      else external.push({ from: file, specifier });
    }
  }
  return { modules: [...seen], external };
}

const isNodeBuiltin = (specifier: string) => specifier.startsWith('node:') || BUILTINS.has(specifier.split('/')[0]);

describe('the browser-safe core', () => {
  it('reaches no Node built-in module (node:fs, node:path, …), directly or through other modules', () => {
    const { modules, external } = importGraph(resolve(import.meta.dirname, '../src/core.ts'));
    expect(modules.length).toBeGreaterThan(40);
    expect(modules.some((m) => m.includes('kernels-wasm'))).toBe(true);
    expect(external.filter((e) => isNodeBuiltin(e.specifier))).toEqual([]);
  });

  it('is checked by a walk that does find the Node modules of the Node entry', () => {
    const { external } = importGraph(resolve(import.meta.dirname, '../src/index.ts'));
    const builtins = new Set(external.filter((e) => isNodeBuiltin(e.specifier)).map((e) => e.specifier));
    expect([...builtins]).toEqual(expect.arrayContaining(['node:fs', 'node:path', 'node:zlib', 'node:crypto']));
  });

  it('exports what training and predicting need, and the Node entry exports all of it plus files and data sets', () => {
    for (const name of ['Tensor', 'sequential', 'dense', 'adam', 'modelFromArtifacts', 'artifactsFromModelJson', 'explainOneStep', 'setBackend', 'FASHION_MNIST_CLASS_NAMES', 'subset']) {
      expect(core, name).toHaveProperty(name);
    }
    for (const name of ['loadModel', 'saveModel', 'readIdxImages', 'loadDataset', 'loadImageDataset']) {
      expect(core, name).not.toHaveProperty(name);
      expect(node, name).toHaveProperty(name);
    }
    for (const [name, value] of Object.entries(core)) expect((node as Record<string, unknown>)[name], name).toBe(value);
  });
});
