// Never lose work: Ctrl-C saves a checkpoint and `--resume` finishes the run exactly as if it had not
// stopped; kill -9 during checkpointed training leaves a model to resume from.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../packages/engine/src/index.js';
import { FIXTURE, jsonLines, runCli, startCli, temporaryFolder, waitForOutput } from './cli-helpers.js';

const tmp = temporaryFolder('descent-resume-');
const work = tmp.dir;
afterAll(tmp.remove);

// Small batches so an epoch has hundreds of steps and can be interrupted in the middle; dropout and a
// validation split so the generator and the held-out samples must be restored too. The reference
// kernels are slow enough for 3 epochs; the default (WASM) backend gets more epochs to interrupt.
const COMMON = ['train', '--data', FIXTURE, '--hidden', '32', '--dropout', '0.2', '--validation-split', '0.1', '--seed', '11', '--json'];
const RUN = [...COMMON, '--epochs', '3', '--batch-size', '8', '--backend', 'ts'];
const RUN_DEFAULT_BACKEND = [...COMMON, '--epochs', '12', '--batch-size', '4'];

const epochsPrinted = (stdout: string) => jsonLines(stdout).filter((line) => 'epoch' in line).length;

describe('Ctrl-C and --resume', () => {
  it.each([['reference kernels', 'ts', RUN], ['default backend', 'default', RUN_DEFAULT_BACKEND]])('interrupting saves a checkpoint, exits 130, and resuming ends with the same weights, bit for bit, as an uninterrupted run (%s)', async (_, name, run) => {
    const whole = join(work, `whole-${name}`);
    const uninterrupted = await runCli([...run, '--out', whole, '--early-stopping', '5', '--csv', join(work, `whole-${name}.csv`)]);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);

    const parts = join(work, `parts-${name}`);
    const first = startCli([...run, '--out', parts, '--early-stopping', '5', '--csv', join(work, `parts-${name}.csv`)]);
    await waitForOutput(first.child, first.stdout, (out) => epochsPrinted(out) >= 1);
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toContain(`Resume with: node packages/cli/dist/main.js train --resume ${parts}`);
    const last = jsonLines(stopped.stdout).at(-1)!;
    expect(last).toMatchObject({ interrupted: true, model_dir: parts });

    const saved = await loadModel(parts);
    expect(saved.metadata?.status).toBe('interrupted');
    expect(saved.metadata?.position).toBeDefined();
    expect(saved.metadata?.optimizer?.state?.iterations).toBeGreaterThan(0);

    const resumed = await runCli(['train', '--resume', parts, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const lines = jsonLines(resumed.stdout);
    expect(lines[0].epoch).toBe(saved.metadata!.position!.epoch + 1);

    expect(readFileSync(join(parts, 'weights.bin')).equals(readFileSync(join(whole, 'weights.bin'))), 'weights.bin bit-identical').toBe(true);
    const final = lines.at(-1)!;
    const wholeFinal = jsonLines(uninterrupted.stdout).at(-1)!;
    expect(final.test_accuracy).toBe(wholeFinal.test_accuracy);
    expect(final.test_loss).toBe(wholeFinal.test_loss);
    // Epochs that finished before the interruption keep their exact numbers; the CSV log covers every epoch once.
    const csv = (file: string) => readFileSync(join(work, file), 'utf8').trim().split('\n').map((row) => row.split(',').slice(0, 5).join(','));
    expect(csv(`parts-${name}.csv`)).toEqual(csv(`whole-${name}.csv`));
  });

  it('a second Ctrl-C quits at once, leaving either no model or a loadable one', async () => {
    const dir = join(work, 'twice');
    const run = startCli([...RUN, '--out', dir]);
    await waitForOutput(run.child, run.stdout, (out) => epochsPrinted(out) >= 1);
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/interrupted/);
    if (existsSync(join(dir, 'model.json'))) await expect(loadModel(dir)).resolves.toBeDefined();
  });

  it('kill -9 during checkpointed training leaves a checkpoint that resumes to the uninterrupted result', async () => {
    const args = ['train', '--data', FIXTURE, '--epochs', '3', '--hidden', '32', '--batch-size', '16', '--seed', '5', '--backend', 'ts', '--checkpoint', '--json'];
    const whole = join(work, 'ckpt-whole');
    const uninterrupted = await runCli([...args, '--out', whole]);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);

    const dir = join(work, 'ckpt-killed');
    const run = startCli([...args, '--out', dir]);
    await waitForOutput(run.child, run.stdout, (out) => epochsPrinted(out) >= 2);
    run.child.kill('SIGKILL');
    const killed = await run.done;
    expect(killed.signal).toBe('SIGKILL');

    const checkpoint = await loadModel(dir);
    expect(checkpoint.metadata?.status).toBe('checkpoint');
    expect([1, 2]).toContain(checkpoint.metadata?.epochsCompleted);
    const resumed = await runCli(['train', '--resume', dir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readFileSync(join(dir, 'weights.bin')).equals(readFileSync(join(whole, 'weights.bin')))).toBe(true);
  });

  it('resuming a finished run asks for more epochs, and --epochs extends it', async () => {
    const dir = join(work, 'extend');
    const args = ['train', '--data', FIXTURE, '--hidden', '8', '--seed', '2', '--backend', 'ts', '--json'];
    expect((await runCli([...args, '--epochs', '1', '--out', dir])).code).toBe(0);
    const again = await runCli(['train', '--resume', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already trained 1 of 1 epochs; pass --epochs N/);
    const more = await runCli(['train', '--resume', dir, '--epochs', '2', '--json']);
    expect(more.code, more.stderr).toBe(0);
    expect(jsonLines(more.stdout).filter((l) => 'epoch' in l).map((l) => l.epoch)).toEqual([2]);
    // Same as training 2 epochs in one go.
    const straight = join(work, 'straight');
    expect((await runCli([...args, '--epochs', '2', '--out', straight])).code).toBe(0);
    expect(readFileSync(join(dir, 'weights.bin')).equals(readFileSync(join(straight, 'weights.bin')))).toBe(true);
  });
});
