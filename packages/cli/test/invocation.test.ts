// Advice printed by the CLI ("Resume with: ...") can be run as printed, however descent was started.
import { describe, expect, it } from 'vitest';
import { commandLine } from '../src/invocation.js';

const MAIN = '/repo/packages/cli/dist/main.js';

describe('commandLine', () => {
  it('node with the script: relative from inside the repository, absolute from elsewhere', () => {
    expect(commandLine('train --resume m', { env: {}, argv1: MAIN, cwd: '/repo' })).toBe('node packages/cli/dist/main.js train --resume m');
    expect(commandLine('train --resume m', { env: {}, argv1: MAIN, cwd: '/repo/test' })).toBe(`node ${MAIN} train --resume m`);
    expect(commandLine('train --resume m', { env: {}, argv1: MAIN, cwd: '/tmp/work' })).toBe(`node ${MAIN} train --resume m`);
  });

  it('npx, a global install, and an npm script keep their own form', () => {
    expect(commandLine('train --resume m', { env: { npm_command: 'exec' }, argv1: MAIN, cwd: '/tmp' })).toBe('npx descent train --resume m');
    expect(commandLine('train --resume m', { env: {}, argv1: '/usr/local/bin/descent', cwd: '/tmp' })).toBe('descent train --resume m');
    const npm = { npm_command: 'run', npm_lifecycle_event: 'descent', npm_lifecycle_script: 'node packages/cli/dist/main.js' };
    expect(commandLine('train --resume m', { env: npm, argv1: MAIN, cwd: '/repo' })).toBe('npm run descent -- train --resume m');
    const train = { npm_command: 'run', npm_lifecycle_event: 'train', npm_lifecycle_script: 'node packages/cli/dist/main.js train' };
    expect(commandLine('train --resume m', { env: train, argv1: MAIN, cwd: '/repo' })).toBe('npm run train -- --resume m');
  });
});
