#!/usr/bin/env node
/**
 * The web app's figures, in headless Chromium on this machine (run after `npm run build`):
 *   - the app's JavaScript, gzipped, with and without the embedded WASM kernels;
 *   - first page usable: from navigation start until the first page's content is on screen;
 *   - predict in the browser: from a drawn image to the bars (N strokes, median);
 *   - one epoch of the default model (784-128-10, Adam, batch 32) on full Fashion-MNIST in the
 *     browser against the same epoch in Node, interleaved, medians of RUNS each (one kernel thread
 *     on both sides, and two where the page is cross-origin isolated).
 *
 *   node packages/web/scripts/measure.mjs [--runs 3] [--skip-epoch]
 *
 * It starts its own `descent serve` on a free port with a temporary SQLite store holding
 * Fashion-MNIST (imported from the engine's resolved copy) and a small trained model.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI = join(ROOT, 'packages/cli/dist/main.js');
const APP = join(ROOT, 'packages/web/dist');
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 3;
const PASSWORD = 'measuring password';
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function descent(cliArgs, input) {
  const run = spawnSync(process.execPath, [CLI, ...cliArgs], { input, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`descent ${cliArgs.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

function bundleSizes() {
  const assets = join(APP, 'assets');
  // The kernels' WASM builds are embedded as base64 strings ("AGFzbQ" is "\0asm"): in their own chunk
  // for the page, and again inside each Web Worker's chunk (a worker cannot share the page's chunks).
  const wasm = /AGFzbQ[A-Za-z0-9+/=]+/g;
  let app = 0;
  let kernels = 0;
  let copies = 0;
  for (const name of readdirSync(assets).filter((n) => n.endsWith('.js'))) {
    const text = readFileSync(join(assets, name), 'utf8');
    const embedded = text.match(wasm) ?? [];
    if (embedded.length) copies += 1;
    app += gzipSync(text.replace(wasm, ''), { level: 9 }).length;
    kernels = Math.max(kernels, gzipSync(embedded.join(''), { level: 9 }).length);
  }
  return { app, kernels, copies };
}

const work = mkdtempSync(join(tmpdir(), 'web-measure-'));
const db = join(work, 'descent.db');
let server;
let browser;
try {
  const sizes = bundleSizes();
  console.log(`JavaScript, gzipped: app ${(sizes.app / 1024).toFixed(1)} KiB; the embedded WASM kernels besides: ${(sizes.kernels / 1024).toFixed(1)} KiB, in ${sizes.copies} chunks (the page's and each worker's)`);

  descent(['user', 'add', 'bench', '--scope', 'admin', '--password-stdin', '--db', db], `${PASSWORD}\n`);
  descent(['db', 'import', 'fashion-mnist', '--db', db]);
  server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', db, '--app', APP, '--workers', '1', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise((done, fail) => {
    let text = '';
    server.stderr.on('data', (chunk) => {
      text += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (match) done(match[1]);
    });
    server.on('exit', (code) => fail(new Error(`descent serve exited with ${code}: ${text}`)));
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  // First page usable: a fresh load of the sign-in page (no cache), navigation start → the form on screen.
  const firstPage = [];
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext();
    const fresh = await context.newPage();
    await fresh.goto(`${url}/#/predict`);
    await fresh.getByLabel('User name').waitFor();
    firstPage.push(await fresh.evaluate(() => performance.getEntriesByName('descent:usable')[0]?.startTime ?? performance.now()));
    await context.close();
  }
  console.log(`first page usable (sign-in form on screen, fresh load): median ${median(firstPage).toFixed(0)} ms of 5 (${firstPage.map((t) => t.toFixed(0)).join(', ')})`);

  // Sign in, and a small model to predict with.
  await page.goto(`${url}/#/predict`);
  await page.getByLabel('User name').fill('bench');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  const job = await page.evaluate(async () => (await fetch('/api/v1/jobs', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dataset: 'fashion-mnist', epochs: 1, model: { hidden: [128] }, progress_every: 0 }),
  })).json());
  for (;;) {
    const state = await page.evaluate(async (id) => (await fetch(`/api/v1/jobs/${id}`)).json(), job.id);
    if (state.model_id) break;
    if (!['queued', 'running'].includes(state.status)) throw new Error(`the model's job ended ${state.status}: ${state.message}`);
    await new Promise((r) => setTimeout(r, 500));
  }

  // Predict in the browser: strokes on the canvas; each ends in a prediction whose time the page records.
  // The page is already at #/predict (signed in there): load it afresh so that it lists the new model.
  await page.goto(`${url}/#/predict`);
  await page.reload();
  await page.getByTestId('model-select').waitFor();
  await page.getByText('No image yet.').waitFor();
  const pad = await page.getByTestId('draw-pad').boundingBox();
  const predictMs = [];
  for (let i = 0; i < 30; i++) {
    await page.getByRole('button', { name: 'Clear the drawing' }).click();
    await page.mouse.move(pad.x + pad.width * (0.3 + (i % 5) * 0.08), pad.y + pad.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(pad.x + pad.width * 0.5, pad.y + pad.height * 0.85, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelector('[data-testid="timing"]')?.textContent?.includes('ms'));
    predictMs.push(Number(await page.getByTestId('timing').getAttribute('data-ms')));
  }
  console.log(`predict in the browser, drawn image → bars: median ${median(predictMs).toFixed(2)} ms of ${predictMs.length} (max ${Math.max(...predictMs).toFixed(2)})`);

  if (!args.includes('--skip-epoch')) {
    const { measureNodeEpoch } = await import('./node-epoch.mjs');
    const isolated = await page.evaluate(() => crossOriginIsolated);
    const threadCounts = isolated ? [1, Math.min(2, cpus().length)] : [1];
    for (const threads of [...new Set(threadCounts)]) {
      const browserSeconds = [];
      const nodeSeconds = [];
      for (let run = 0; run < RUNS; run++) {
        nodeSeconds.push(await measureNodeEpoch(threads));
        await page.goto(`${url}/#/browser-train`);
        await page.getByLabel('Dataset').selectOption('fashion-mnist');
        await page.getByLabel('Epochs').fill('1');
        if (isolated) await page.getByLabel('Kernel threads').fill(String(threads));
        await page.getByRole('button', { name: 'Train in this browser' }).click();
        await page.waitForFunction(() => /^(Done|Stopped)/.test(document.querySelector('[data-testid="browser-status"]')?.textContent ?? ''), null, { timeout: 300_000 });
        browserSeconds.push(Number(await page.getByTestId('epoch-table').locator('[data-seconds]').first().getAttribute('data-seconds')));
      }
      const b = median(browserSeconds);
      const n = median(nodeSeconds);
      console.log(`one epoch, full Fashion-MNIST, ${threads} kernel thread${threads === 1 ? '' : 's'}: browser ${b.toFixed(2)} s (${browserSeconds.map((s) => s.toFixed(2)).join(', ')}), Node ${n.toFixed(2)} s (${nodeSeconds.map((s) => s.toFixed(2)).join(', ')}): ${(b / n).toFixed(2)}× Node`);
    }
  }
  console.log(`CPU: ${cpus()[0].model}, ${cpus().length} cores`);
} finally {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((done) => server.once('exit', done));
  }
  rmSync(work, { recursive: true, force: true });
}
