// What the server tests share: a server on a temporary SQLite file (or a given --db), users and
// tokens, requests, and small datasets made from the Fashion-MNIST fixture.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode as encodePng } from 'fast-png';
import yazl from 'yazl';
import { FASHION_MNIST_CLASS_NAMES, loadDataset, type ImageDataset } from '@descent/engine';
import { openStore, type Store } from '@descent/store';
import { createServer, type DescentServer, type ServerOptions } from '../src/index.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURE = join(ROOT, 'test/fixtures/fashion-mnist');
export const CLI = join(ROOT, 'packages/cli/dist/main.js');

/** Fashion-MNIST's class names as folder names can spell them ("T-shirt/top" holds a slash). */
export const CLASSES = FASHION_MNIST_CLASS_NAMES.map((name) => name.replace('/', ' or '));

export interface TestServer {
  server: DescentServer;
  store: Store;
  url: string;
  db: string;
  dir: string;
  /** Tokens by scope, for a user of that scope. */
  tokens: Record<'predict' | 'train' | 'admin', string>;
  request(path: string, init?: RequestInit & { token?: string | null; json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export async function startServer(options: Partial<ServerOptions> & { db?: string } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'server-test-'));
  const db = options.db ?? join(dir, 'descent.db');
  const store = await openStore(db, { create: true });
  const server = await createServer({ log: false, workers: 1, ...options, store, db });
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  const tokens = {} as TestServer['tokens'];
  for (const scope of ['predict', 'train', 'admin'] as const) {
    tokens[scope] = (await server.accounts.issue('personal', scope, { name: `test ${scope}`, ttlSeconds: 3600 })).token;
  }
  const request: TestServer['request'] = (path, init = {}) => {
    const { token = tokens.admin, json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${url}${path}`, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
  };
  return {
    server, store, url, db, dir, tokens, request,
    async close() {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let fixture: Promise<{ train: ImageDataset; test: ImageDataset }> | undefined;

export function fixtureData(): Promise<{ train: ImageDataset; test: ImageDataset }> {
  fixture ??= loadDataset('fashion-mnist', { dir: FIXTURE, download: false }).then((d) => ({ train: d.train, test: d.test }));
  return fixture;
}

export function imageOf(data: ImageDataset, i: number): Uint8Array {
  return data.images.slice(i * 784, (i + 1) * 784);
}

/** A gray 28×28 PNG of those pixels. */
export function pngOf(pixels: Uint8Array, width = 28, height = 28): Uint8Array {
  return encodePng({ width, height, data: pixels, depth: 8, channels: 1 });
}

export async function zipOf(entries: Array<[string, Uint8Array]>, options: { compress?: boolean } = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, bytes] of entries) zip.addBuffer(Buffer.from(bytes), name, { compress: options.compress ?? false });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A zip of the first `perClass` fixture images of each class, as CLASS/n.png (train) and test/CLASS/n.png. */
export async function fixtureZip(perClass: number, testPerClass = 0): Promise<Buffer> {
  const { train, test } = await fixtureData();
  const entries: Array<[string, Uint8Array]> = [];
  const take = (data: ImageDataset, count: number, prefix: string) => {
    const seen = new Array<number>(10).fill(0);
    for (let i = 0; i < data.count; i++) {
      const label = data.labels[i];
      if (seen[label] >= count) continue;
      seen[label]++;
      entries.push([`${prefix}${CLASSES[label]}/${i}.png`, pngOf(imageOf(data, i))]);
    }
  };
  take(train, perClass, 'clothes/train/');
  if (testPerClass > 0) take(test, testPerClass, 'clothes/test/');
  return zipOf(entries);
}

export function form(fields: Record<string, string>, files: Record<string, [Uint8Array, string]>): FormData {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  for (const [name, [bytes, filename]] of Object.entries(files)) body.append(name, new Blob([bytes]), filename);
  return body;
}

export async function countRows(store: Store, table: string): Promise<number> {
  const [row] = await store.driver.all<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(row.n);
}

/** Reads Server-Sent Events until `until` says stop (or the stream ends). */
export async function readEvents(response: Response, until: (event: { event: string; data: Record<string, unknown> }) => boolean): Promise<Array<{ event: string; data: Record<string, unknown> }>> {
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!event || data === undefined) continue;
      const parsed = { event, data: JSON.parse(data) as Record<string, unknown> };
      events.push(parsed);
      if (until(parsed)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}
