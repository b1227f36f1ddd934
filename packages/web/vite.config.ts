/**
 * Builds the app into dist/ for `descent serve` (which serves it with the API on one origin).
 * Besides the JavaScript, the build copies the learning docs (docs/learn/*.md) and the engine's
 * source files into dist/, so the Learn page links to them on the same server.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const ROOT = resolve(import.meta.dirname, '../..');
const BUILTINS = new Set(builtinModules);

/** Fails the build when browser code reaches a Node module (the engine's core must not). */
function noNodeModules(): Plugin {
  return {
    name: 'descent-no-node-modules',
    enforce: 'pre',
    resolveId(id, importer) {
      if (id.startsWith('node:') || BUILTINS.has(id)) this.error(`${importer ?? '?'} imports the Node module "${id}", which a browser cannot load`);
      return null;
    },
  };
}

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The learning docs and the engine's source, as text files under dist/docs and dist/source. */
function learnFiles(): Plugin {
  const files = () => [
    ...filesUnder(join(ROOT, 'docs/learn'), '.md'),
    ...filesUnder(join(ROOT, 'packages/engine/src'), '.ts'),
  ].map((file) => {
    const path = relative(ROOT, file);
    return { url: path.startsWith('docs/') ? path : `source/${path}`, file };
  });
  return {
    name: 'descent-learn-files',
    generateBundle() {
      for (const { url, file } of files()) this.emitFile({ type: 'asset', fileName: url, source: readFileSync(file, 'utf8') });
    },
    configureServer(server) {
      server.middlewares.use((request, response, next) => {
        const found = files().find(({ url }) => request.url === `/${url}`);
        if (!found) return next();
        response.setHeader('content-type', 'text/plain; charset=utf-8');
        response.end(readFileSync(found.file));
      });
    },
  };
}

/** What cross-origin isolation needs (SharedArrayBuffer for the kernels' worker threads); descent serve sends the same. */
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  plugins: [noNodeModules(), learnFiles()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        // The embedded WASM kernels in a chunk of their own, so the app's own JavaScript can be measured without them.
        manualChunks: (id) => (id.includes('kernels-wasm/dist/generated') ? 'kernels-wasm' : undefined),
      },
    },
  },
  worker: { format: 'es' },
  server: { headers: ISOLATION, proxy: { '/api': process.env.DESCENT_SERVER ?? 'http://127.0.0.1:8080' } },
  preview: { headers: ISOLATION },
});
