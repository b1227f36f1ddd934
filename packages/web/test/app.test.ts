/**
 * The web app end to end, in a real browser (Debian's Chromium driven by playwright-core) against
 * a real `descent serve` on a free port with a temporary SQLite store: sign in, a dataset from a
 * zip of fixture PNGs, a training job followed live until its model appears, predictions of an
 * uploaded and a drawn image in the browser and on the server (same class), the predictions page,
 * one epoch trained in the browser, and the Learn page's numbers against `descent explain --json`.
 * Throughout: no console errors, no failed requests, no request to anything but the server.
 * Screenshots of every page (1280 and 390 px wide) are kept in $DESCENT_TEST_OUTPUT or
 * /tmp/descent-web-test for people to look at.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encode as encodePng } from 'fast-png';
import yazl from 'yazl';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_CLASS_NAMES, explainOneStep, loadDataset, setBackend, type Explanation } from '@descent/engine';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI = join(ROOT, 'packages/cli/dist/main.js');
const APP = join(ROOT, 'packages/web/dist');
const FIXTURE = join(ROOT, 'test/fixtures/fashion-mnist');
const SHOTS = process.env.DESCENT_TEST_OUTPUT ?? join(tmpdir(), 'descent-web-test');
const PASSWORD = 'a long enough password';
/** Fashion-MNIST's class names as folder names ("T-shirt/top" holds a slash). */
const CLASSES = FASHION_MNIST_CLASS_NAMES.map((name) => name.replace('/', ' or '));

let work: string;
let server: ChildProcess;
let url: string;
/** `descent explain --json`, started with the server so that the Learn test need not wait for a CLI start. */
let explained: Promise<Explanation>;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const foreign: string[] = [];

function descent(args: string[], input?: string) {
  const run = spawnSync(process.execPath, [CLI, ...args], { cwd: work, input, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (run.status !== 0) throw new Error(`descent ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

/** A 28×28 gray image as a PNG. */
function png(pixels: Uint8Array, width = 28, height = 28): Buffer {
  return Buffer.from(encodePng({ width, height, data: pixels, depth: 8, channels: 1 }));
}

/** A zip of one folder per class: `perClass` training images of each class, and a test/ folder with 2 of each. */
async function fixtureZip(perClass: number): Promise<Buffer> {
  const { train, test } = await loadDataset('fashion-mnist', { dir: FIXTURE });
  const zip = new yazl.ZipFile();
  for (const [split, ds, count] of [['train', train, perClass], ['test', test, 2]] as const) {
    const taken = new Array(10).fill(0);
    for (let i = 0; i < ds.labels.length && taken.some((n) => n < count); i++) {
      const label = ds.labels[i];
      if (taken[label] >= count) continue;
      zip.addBuffer(png(ds.images.subarray(i * 784, (i + 1) * 784)), `${split}/${CLASSES[label]}/${split}-${i}.png`);
      taken[label]++;
    }
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The page from its top, at most three screens tall (a full capture of the long Learn page takes seconds). */
async function capture(file: string, width: number, screen: number): Promise<void> {
  const height = Math.min(await page.evaluate(() => document.documentElement.scrollHeight), 3 * screen);
  await page.screenshot({ path: join(SHOTS, file), fullPage: true, clip: { x: 0, y: 0, width, height } });
}

async function shoot(name: string): Promise<void> {
  await capture(`${name}-1280.png`, 1280, 900);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `${name}: wider than a 390 px screen`).toBeLessThanOrEqual(0);
  await capture(`${name}-390.png`, 390, 844);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.waitForTimeout(50);
}

/** Every form control and button has a name a screen reader can say. */
async function expectLabelledControls(where: string): Promise<void> {
  const unlabelled = await page.evaluate(() => {
    const controls = [...document.querySelectorAll('input, select, textarea, button, canvas[aria-label], a[href]')] as HTMLElement[];
    return controls.filter((c) => {
      if (c.offsetParent === null) return false;
      const labelled = c.getAttribute('aria-label') || c.getAttribute('aria-labelledby') || (c as HTMLInputElement).labels?.length || c.textContent?.trim() || c.getAttribute('title');
      return !labelled;
    }).map((c) => c.outerHTML.slice(0, 120));
  });
  expect(unlabelled, `${where}: controls without a label`).toEqual([]);
}

async function go(path: string, heading: string): Promise<void> {
  await page.goto(`${url}/#/${path}`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'descent-web-'));
  mkdirSync(SHOTS, { recursive: true });
  const db = join(work, 'descent.db');
  descent(['user', 'add', 'ada', '--scope', 'admin', '--password-stdin', '--db', db], `${PASSWORD}\n`);
  // --data: the Fashion-MNIST that serve imports into an empty database is the repository's fixture (2,000 + 500 images).
  server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', db, '--app', APP, '--data', FIXTURE, '--workers', '1', '--log-level', 'warn'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  url = await new Promise<string>((done, fail) => {
    let text = '';
    server.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (match) done(match[1]);
    });
    server.on('exit', (code) => fail(new Error(`descent serve exited with ${code}: ${text}`)));
  });
  explained = promisify(execFile)(process.execPath, [CLI, 'explain', '--json'], { cwd: work, env: { ...process.env, NO_COLOR: '1' } })
    .then(({ stdout }) => JSON.parse(stdout) as Explanation);
  explained.catch(() => undefined); // awaited (and reported) by the Learn test
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // The page closes a job's event stream itself when the job ends; if that happens before the
    // server's end of the stream arrives, Chromium reports the stream as aborted. That is no failure.
    if (/\/api\/v1\/jobs\/\d+\/events$/.test(request.url()) && request.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(url) && !request.url().startsWith('data:') && !request.url().startsWith('blob:')) foreign.push(request.url());
  });
});

afterAll(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((done) => server.once('exit', done));
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the web app against descent serve', () => {
  it('is cross-origin isolated and asks for a sign-in; a wrong password is refused, the right one signs in with an HttpOnly SameSite=Strict cookie', async () => {
    const response = await page.goto(`${url}/#/predict`);
    expect(response!.headers()['cross-origin-opener-policy']).toBe('same-origin');
    expect(response!.headers()['cross-origin-embedder-policy']).toBe('require-corp');
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expectLabelledControls('sign in');
    await shoot('sign-in');
    // From the keyboard only.
    await page.getByLabel('User name').focus();
    await page.keyboard.type('ada');
    await page.keyboard.press('Tab');
    await page.keyboard.type('not the password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').waitFor();
    problems.splice(0); // the refused sign-in is a 401 on purpose
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'descent_session');
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('Datasets: creates a dataset, uploads a zip of fixture PNGs with a progress bar, shows thumbnails and counts per class', async () => {
    await go('datasets', 'Datasets');
    await page.getByLabel('Name', { exact: true }).fill('fixture');
    await page.getByRole('button', { name: 'Create' }).click();
    const card = page.getByTestId('dataset-fixture');
    await card.waitFor();
    await card.getByLabel(/Images or a zip/).setInputFiles({ name: 'fixture.zip', mimeType: 'application/zip', buffer: await fixtureZip(6) });
    await card.getByRole('button', { name: 'Upload' }).click();
    await card.getByText('Added 80 images.').waitFor();
    await card.getByText('10 classes · 60 training · 20 test images').waitFor();
    await expect.poll(() => card.locator('.thumbs img').count()).toBe(80);
    await expect.poll(() => card.locator('.thumbs img').evaluateAll((images) => images.filter((i) => !((i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === 28)).map((i) => (i as HTMLImageElement).src))).toEqual([]);
    await expectLabelledControls('datasets');
    await shoot('datasets');
  });

  it('Train: starts a job, the progress moves live, and the model appears', async () => {
    await go('train', 'Train');
    await page.getByLabel('Dataset').selectOption('fashion-mnist');
    await page.getByLabel('Hidden layers').fill('32');
    await page.getByLabel('Epochs').fill('4');
    await page.getByLabel('Progress every').fill('1');
    await page.getByLabel('Validation split').fill('0.2');
    // Every text the job's progress line shows, as the page changes it.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seenLines: string[] }).seenLines = seen;
      new MutationObserver(() => {
        const line = document.querySelector('[data-testid="job-line"]')?.textContent;
        if (line && seen[seen.length - 1] !== line) seen.push(line);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByRole('button', { name: 'Start training' }).click();
    const job = page.getByTestId('job-progress');
    await job.waitFor();
    const link = job.getByTestId('job-model');
    await link.waitFor({ timeout: 90_000 });
    const lines = await page.evaluate(() => (window as unknown as { seenLines: string[] }).seenLines);
    // The fixture's 1,600 training images in batches of 32: 50 batches an epoch, each one shown as it ends.
    const batches = lines.filter((l) => /^epoch \d+ · batch \d+\/50 · loss \d\.\d{4}/.test(l));
    expect(batches.length).toBeGreaterThan(10);
    expect(new Set(batches.map((l) => l.split(' · ')[0])).size).toBeGreaterThan(1);
    expect(lines.some((l) => /^epoch 4 · [\d.]+ s · loss .* · val_accuracy \d\.\d{4}$/.test(l))).toBe(true);
    await expect.poll(() => job.getByTestId('epochs-done').textContent()).toBe('epoch 4 of 4');
    await expect.poll(() => job.locator('canvas').count()).toBeGreaterThanOrEqual(2);
    await expectLabelledControls('train');
    await shoot('train');
    await link.click();
    await page.getByTestId('model-view').waitFor();
    await expect.poll(() => page.getByTestId('test-accuracy').textContent()).toMatch(/^\d+\.\d\d%$/);
    await page.locator('table.heatmap').waitFor();
    expect(await page.locator('table.heatmap tbody tr').count()).toBe(10);
    await expectLabelledControls('models');
    await shoot('models');
  });

  it('Predict: an uploaded and a drawn image get the same class in the browser and on the server', async () => {
    await go('predict', 'Predict');
    const { test } = await loadDataset('fashion-mnist', { dir: FIXTURE });
    // A "photo": a test image 4× larger, dark on a white background, as a phone would take it.
    const small = test.images.subarray(0, 784);
    const photo = new Uint8Array(112 * 112).map((_, i) => 255 - small[Math.floor(Math.floor(i / 112) / 4) * 28 + Math.floor((i % 112) / 4)]);
    const where = page.getByRole('group', { name: 'Where the model runs' });
    const labelOf = async (side: 'browser' | 'server') => {
      await page.getByTestId(`prediction-${side}`).waitFor();
      return page.getByTestId(`prediction-${side}`).getAttribute('data-label');
    };
    await page.getByTestId('image-file').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: png(photo, 112, 112) });
    const uploadedHere = await labelOf('browser');
    await where.getByLabel(/On the server/).check();
    expect(await labelOf('server')).toBe(uploadedHere);
    await where.getByLabel(/In this browser/).check();

    await page.getByRole('button', { name: 'Clear the drawing' }).click();
    const pad = await page.getByTestId('draw-pad').boundingBox();
    // A trouser: two long legs.
    for (const x of [0.38, 0.62]) {
      await page.mouse.move(pad!.x + pad!.width * 0.5, pad!.y + pad!.height * 0.15);
      await page.mouse.down();
      await page.mouse.move(pad!.x + pad!.width * x, pad!.y + pad!.height * 0.9, { steps: 8 });
      await page.mouse.up();
    }
    const drawnHere = await labelOf('browser');
    const probabilities = await page.getByTestId('prediction-browser').locator('[data-probability]').evaluateAll((cells) => cells.map((c) => Number(c.getAttribute('data-probability'))));
    expect(probabilities).toHaveLength(10);
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(Number(await page.getByTestId('timing').getAttribute('data-ms'))).toBeGreaterThan(0);
    await where.getByLabel(/On the server/).check();
    expect(await labelOf('server')).toBe(drawnHere);
    const serverProbabilities = await page.getByTestId('prediction-server').locator('[data-probability]').evaluateAll((cells) => cells.map((c) => Number(c.getAttribute('data-probability'))));
    serverProbabilities.forEach((p, i) => expect(p).toBeCloseTo(probabilities[i], 5));
    await expectLabelledControls('predict');
    await shoot('predict');
  });

  it('Predictions: the server\'s predictions are listed with their images, and filter by class', async () => {
    await go('predictions', 'Predictions');
    await expect.poll(() => page.getByTestId('stored-prediction').count()).toBe(2);
    await expect.poll(() => page.getByTestId('stored-prediction').locator('img').evaluateAll((images) => images.every((i) => (i as HTMLImageElement).naturalWidth === 28))).toBe(true);
    await page.getByLabel('Model').selectOption({ index: 1 });
    const first = await page.getByTestId('stored-prediction').first().locator('strong').textContent();
    await page.getByLabel('Predicted class').selectOption({ label: first! });
    await expect.poll(async () => (await page.getByTestId('stored-prediction').locator('strong').allTextContents()).every((t) => t === first)).toBe(true);
    await expectLabelledControls('predictions');
    await shoot('predictions');
  });

  it('Train in your browser: one epoch on the fixture, with Keras\'s progress bar and the epoch\'s seconds; the same loss on 1 and 2 kernel threads', async () => {
    await go('browser-train', 'Train in your browser');
    await page.getByLabel('Dataset').selectOption('fixture');
    await page.getByLabel('Epochs').fill('1');
    // The page is cross-origin isolated, so the kernels may use Web Workers: the weights, and so the
    // loss, must come out bit for bit the same on one thread and on two.
    const losses: string[] = [];
    for (const threads of [1, 2]) {
      await page.getByLabel('Kernel threads').fill(String(threads));
      await page.getByRole('button', { name: 'Train in this browser' }).click();
      await expect.poll(() => page.getByTestId('browser-status').textContent(), { timeout: 60_000 }).toBe(`Done (kernels on ${threads} thread${threads === 1 ? '' : 's'}).`);
      losses.push((await page.getByTestId('epoch-table').locator('[data-loss]').first().getAttribute('data-loss'))!);
    }
    expect(Number(losses[0])).toBeGreaterThan(0);
    expect(losses[1]).toBe(losses[0]);
    const progress = (await page.getByTestId('keras-progress').textContent())!;
    expect(progress).toMatch(/Epoch 1\/1/);
    expect(progress).toMatch(/2\/2 \[=+\] - .*loss: \d\.\d{4} - accuracy: \d\.\d{4}/);
    const seconds = Number(await page.getByTestId('epoch-table').locator('[data-seconds]').first().getAttribute('data-seconds'));
    expect(seconds).toBeGreaterThan(0);
    await expectLabelledControls('browser training');
    await shoot('browser-train');
  });

  it('Learn: every number equals `descent explain --json`, and changing a pixel changes the numbers after it as the engine says', async () => {
    await go('learn', 'Learn');
    const cli = await explained;
    const all = await page.locator('section[aria-labelledby="learn-all"] [data-key]').evaluateAll((cells) => cells.map((c) => ({ key: c.getAttribute('data-key')!, index: Number(c.getAttribute('data-index')), value: Number(c.getAttribute('data-value')) })));
    expect(all.length).toBe(cli.steps.reduce((n, s) => n + s.values.length, 0));
    for (const cell of all) expect(cell.value, `${cell.key}[${cell.index}]`).toBe(cli.steps.find((s) => s.key === cell.key)!.values[cell.index]);
    await page.locator('section[aria-labelledby="learn-all"] [data-key="z1"][data-index="1"]').click();
    await expect.poll(() => page.getByTestId('expansion').textContent()).toMatch(/^z1\[0,1\] = Σₖ x\[0,k\]·W1\[k,1\] \+ b1\[1\]/);
    await expectLabelledControls('learn');
    await shoot('learn');

    await page.locator('input[data-pixel="5"]').fill('255');
    await page.locator('input[data-pixel="5"]').press('Tab');
    setBackend('ts');
    const pixels = [...cli.steps.find((s) => s.key === 'pixels')!.values];
    pixels[5] = 255;
    const expected = explainOneStep({ pixels });
    const edited = await page.locator('section[aria-labelledby="learn-all"] [data-key]').evaluateAll((cells) => cells.map((c) => ({ key: c.getAttribute('data-key')!, index: Number(c.getAttribute('data-index')), value: Number(c.getAttribute('data-value')), changed: c.parentElement!.classList.contains('changed') })));
    for (const cell of edited) expect(cell.value, `${cell.key}[${cell.index}] after the edit`).toBe(expected.steps.find((s) => s.key === cell.key)!.values[cell.index]);
    expect(edited.filter((c) => c.changed).map((c) => c.key)).toEqual(expect.arrayContaining(['pixels', 'x', 'z1', 'p', 'loss', 'dW1', 'W1_new']));
    expect(edited.some((c) => c.key === 'W1' && c.changed)).toBe(false);
    await page.getByRole('link', { name: /ops\/dense\.ts › dense/ }).first().click();
    await page.locator('pre.code .hit').waitFor();
    expect(await page.locator('pre.code .hit').textContent()).toMatch(/export function dense\(/);
    await page.goBack();
    await page.getByRole('link', { name: /gradients\.md › 1\. Matrix product/ }).first().click();
    await page.locator('article.doc [id="1-matrix-product-dx--dywᵀ-and-dw--xᵀdy"]').waitFor();
    await shoot('learn-doc');
  });

  it('made no request to anything but the server, logged no console error, and no request failed', () => {
    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
  });
});
