// kill -9 at random moments while a process saves a model over and over: the folder must always load,
// with weights.bin, model.json and descent-training.json from one and the same save.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { Random, loadModel, setBackend } from '../packages/engine/src/index.js';
import { ENGINE, temporaryFolder } from './cli-helpers.js';

const tmp = temporaryFolder('descent-crash-');
afterAll(tmp.remove);
setBackend('ts');

// Each save writes 800 KB of weights whose every value is the save's number n, and n as epochsCompleted.
const SAVER = `
import { dense, flatten, saveModel, sequential, setBackend } from ${JSON.stringify(pathToFileURL(ENGINE).href)};
setBackend('ts');
const dir = process.argv[2];
const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 256, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })]);
for (let n = Number(process.argv[3]); ; n++) {
  for (const { tensor } of model.parameters()) tensor.data.fill(n);
  await saveModel(dir, model, { epochsCompleted: n });
  if (n === Number(process.argv[3])) process.stdout.write('saving\\n');
}
`;

it('a model folder survives kill -9 at any moment of a save', async () => {
  const script = join(tmp.dir, 'saver.mjs');
  writeFileSync(script, SAVER);
  const dir = join(tmp.dir, 'model');
  const random = new Random(2024);
  let next = 1;
  const seen = new Set<number>();
  for (let round = 0; round < 12; round++) {
    const child = spawn(process.execPath, [script, dir, String(next)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`saver exited with ${code}`)));
    });
    await new Promise((resolve) => setTimeout(resolve, random.nextInt(40)));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));

    const loaded = await loadModel(dir);
    const weights = loaded.model.getWeights();
    const n = weights[0].values[0];
    expect(weights.every((w) => w.values.every((v) => v === n)), 'every weight from one save').toBe(true);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(loaded.metadata?.epochsCompleted, 'training state from the same save as the weights').toBe(n);
    seen.add(n);
    next = n + 1000; // the next saver's values are new, so a stale file cannot pass for a fresh one
  }
  expect(seen.size).toBe(12);
});
