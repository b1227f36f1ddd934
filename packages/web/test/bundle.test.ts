/**
 * The built app (packages/web/dist, made by `npm ci` / `npm run build`): its JavaScript imports
 * nothing of Node, loads nothing from elsewhere, and every Learn link points at a heading of a
 * learning doc and a symbol of an engine source file that the build copied into the app.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINKS, learnLink, slug, symbolLine } from '../src/learn-links.js';

const DIST = resolve(import.meta.dirname, '../dist');
const ROOT = resolve(import.meta.dirname, '../../..');

function scripts(): Array<{ name: string; text: string }> {
  const assets = join(DIST, 'assets');
  return readdirSync(assets).filter((n) => n.endsWith('.js')).map((name) => ({ name, text: readFileSync(join(assets, name), 'utf8') }));
}

describe('the built app', () => {
  it('has an index.html that loads its scripts from this server only', () => {
    const html = readFileSync(join(DIST, 'index.html'), 'utf8');
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(sources.length).toBeGreaterThan(1);
    for (const source of sources) expect(source, source).toMatch(/^(\/assets\/|data:)/);
  });

  it('imports nothing from node: (or a stand-in for a Node module) in any chunk, workers included', () => {
    const all = scripts();
    expect(all.some((s) => s.name.startsWith('train-worker'))).toBe(true);
    for (const { name, text } of all) {
      expect(text, name).not.toMatch(/["'`]node:[a-z_/]+["'`]/);
      expect(text, name).not.toContain('__vite-browser-external');
      expect(text, name).not.toMatch(/\brequire\(\s*["'](fs|path|zlib|crypto|os|worker_threads)["']\s*\)/);
    }
  });

  it('has no address of another host in its code (no CDN, no fonts from elsewhere)', () => {
    for (const { name, text } of scripts()) {
      const hosts = [...text.matchAll(/https?:\/\/([a-z0-9.-]+\.[a-z]{2,})/gi)].map((m) => m[1])
        // Namespaces and licence headers, never fetched.
        .filter((host) => !/^(www\.w3\.org|json-schema\.org|github\.com|fb\.me|reactjs\.org|preactjs\.com|developer\.mozilla\.org|app)$/.test(host));
      expect(hosts, name).toEqual([]);
    }
    for (const css of readdirSync(join(DIST, 'assets')).filter((n) => n.endsWith('.css'))) {
      expect(readFileSync(join(DIST, 'assets', css), 'utf8'), css).not.toMatch(/url\(\s*["']?https?:/);
    }
  });

  it('keeps the WASM kernels in a chunk of their own, so the app\'s own JavaScript can be weighed without them', () => {
    expect(scripts().filter((s) => s.name.startsWith('kernels-wasm'))).toHaveLength(1);
  });
});

describe('the Learn page\'s links', () => {
  const links = [...Object.values(LINKS), learnLink('m_W1'), learnLink('lr_t'), learnLink('W2_new')];

  it('point at a heading of a learning doc the app serves', () => {
    for (const { doc } of links) {
      const served = join(DIST, doc.file);
      expect(existsSync(served), served).toBe(true);
      const headings = [...readFileSync(served, 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => m[1].replace(/`/g, ''));
      expect(headings, doc.heading).toContain(doc.heading);
      expect(slug(doc.heading)).toMatch(/^[\p{L}\p{N}_-]+$/u);
    }
  });

  it('point at a symbol of an engine source file the app serves, the same file as in the repository', () => {
    for (const { source } of links) {
      const served = join(DIST, 'source', source.file);
      expect(existsSync(served), served).toBe(true);
      const text = readFileSync(served, 'utf8');
      expect(text).toBe(readFileSync(join(ROOT, source.file), 'utf8'));
      expect(symbolLine(text, source.symbol), `${source.file} › ${source.symbol}`).toBeGreaterThan(0);
    }
  });

  it('find a method inside its class, not a function of the same name elsewhere', () => {
    const text = 'function step() {}\nclass Adam {\n  constructor() {}\n  step(parameters) {}\n}\n';
    expect(symbolLine(text, 'Adam.step')).toBe(4);
    expect(symbolLine(text, 'step')).toBe(1);
    expect(symbolLine(text, 'Sgd.step')).toBeUndefined();
  });
});
