/** The help texts and docs/cli.md say what the commands do. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/main.js';

const program = buildProgram();
const docs = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');

function command(name: string) {
  const found = program.commands.find((c) => c.name() === name);
  if (!found) throw new Error(`no command ${name}`);
  return found;
}

describe('docs/cli.md', () => {
  // Every "## descent NAME" section opens with a synopsis block: it must list every flag the command takes.
  const sections = [...docs.matchAll(/^## descent (\w+)\n+```\n([\s\S]*?)\n```/gm)].map(([, name, synopsis]) => ({ name, synopsis }));

  it('has a section with a synopsis for every command but a few', () => {
    expect(sections.map((s) => s.name)).toEqual(expect.arrayContaining(['train', 'evaluate', 'predict', 'summary', 'data', 'report', 'explain']));
  });

  it.each(sections.map((s) => [s.name, s.synopsis]))('the synopsis of descent %s lists every one of its flags', (name, synopsis) => {
    const flags = command(name).options.map((option) => option.long!).filter((flag) => flag !== '--help');
    const missing = flags.filter((flag) => !new RegExp(`${flag}(?![\\w-])`).test(synopsis));
    expect(missing, `flags of descent ${name} missing from its synopsis in docs/cli.md`).toEqual([]);
  });
});

describe('README.md', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  it.each(['train', 'evaluate', 'predict'])('the row of descent %s in the command table lists every one of its flags', (name) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    const listed = row?.match(/Flags: `([^`]*)`/)?.[1] ?? '';
    const flags = command(name).options.map((option) => option.long!).filter((flag) => flag !== '--help');
    expect(flags.filter((flag) => !new RegExp(`${flag}(?![\\w-])`).test(listed)), `flags of descent ${name} missing from its row in README.md`).toEqual([]);
  });
});

describe('help texts', () => {
  it('--json says what it prints: one object, or one per line', () => {
    const json = (name: string) => command(name).options.find((o) => o.long === '--json')!.description;
    for (const name of ['explain', 'evaluate', 'data']) expect(json(name), name).toMatch(/one JSON object(?! per)/);
    for (const name of ['train', 'predict']) expect(json(name), name).toMatch(/one per line/);
  });

  it('--hidden shows its default as it is typed', () => {
    const help = command('train').helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(/--hidden <sizes> .*?\(default: 128\)/);
    expect(help).not.toContain('[128]');
  });
});

describe('running the examples leaves the repository clean', () => {
  it('every file or folder the README\'s and docs\' examples write is ignored by git, or outside the repository', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const text = ['README.md', 'docs/cli.md'].map((file) => readFileSync(join(root, file), 'utf8')).join('\n');
    const outputs = [...text.matchAll(/descent [a-z]+ [^`|\n]*?--(?:out|csv|plot) ([^\s`\]]+)/g)].map(([, path]) => path).filter((path) => !isAbsolute(path) && !/^[A-Z_]+$/.test(path)); // not placeholders (DIR)
    expect(outputs.length).toBeGreaterThan(3);
    // bench --quick writes <date>-<machine>-quick.json and .md into packages/bench/results.
    outputs.push('packages/bench/results/2026-01-01-some-machine-quick.json', 'packages/bench/results/2026-01-01-some-machine-quick.md');
    const tracked = outputs.filter((path) => spawnSync('git', ['check-ignore', '-q', path], { cwd: root }).status !== 0);
    expect(tracked).toEqual([]);
  });
});
