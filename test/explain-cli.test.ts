/**
 * `descent explain` end to end: the built CLI prints exactly the engine's walk-through of one
 * training step (whose numbers packages/engine/test/explain.test.ts checks), as text or JSON.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { explainCnnStep, explainOneStep, formatExplanation, setBackend, type Explanation } from '@descent/engine';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = resolve(ROOT, 'packages/cli/dist/main.js');

function descent(...args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('descent explain', () => {
  setBackend('ts');

  it('prints the walk-through of one training step, exactly as the engine formats it', () => {
    const { code, stdout, stderr } = descent('explain');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(`${formatExplanation(explainOneStep())}\n`);
    for (const heading of ['== Forward pass', '== Loss', '== Backward pass', '== Update']) expect(stdout).toContain(heading);
  });

  it('--json prints one JSON object holding every step with its shape and values', () => {
    const { code, stdout } = descent('explain', '--json');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const printed = JSON.parse(lines[0]) as Explanation;
    const expected = explainOneStep();
    expect(printed.settings).toEqual(expected.settings);
    expect(printed.steps.map((s) => s.key)).toEqual(expected.steps.map((s) => s.key));
    printed.steps.forEach((step, i) => {
      expect(step.shape).toEqual(expected.steps[i].shape);
      expect(step.values).toEqual(expected.steps[i].values);
    });
  });

  it('--seed draws other starting weights', () => {
    const { code, stdout } = descent('explain', '--seed', '5');
    expect(code).toBe(0);
    expect(stdout).toBe(`${formatExplanation(explainOneStep({ seed: 5 }))}\n`);
    expect(stdout).not.toBe(`${formatExplanation(explainOneStep())}\n`);
  });

  it('--model cnn prints the step of a small convolutional network: feature maps, pooled maps and their gradients', () => {
    const { code, stdout, stderr } = descent('explain', '--model', 'cnn');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(`${formatExplanation(explainCnnStep())}\n`);
    for (const formula of ['h1 = relu(z1)', 'm1[i,r,c,f] = max of h1', 'dh1[position of each block\'s maximum] = dm1', 'dK1[a,b,0,f] =']) expect(stdout).toContain(formula);
  });

  it('refuses a bad seed with one line on stderr naming the flag, and exit code 2', () => {
    const { code, stdout, stderr } = descent('explain', '--seed', 'abc');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain('--seed');
  });
});
