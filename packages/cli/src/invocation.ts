/**
 * How the user started descent, so that paths mean what they meant in their shell and advice
 * ("continue with … train --resume DIR") can be copied and run as printed:
 *
 *   npm run descent -- train …       npm runs scripts from the repository root and sets INIT_CWD to
 *                                    the folder the user was in; descent moves back there
 *   npx descent train …              the bin in node_modules/.bin (or a global install): `npx descent`
 *   descent train …                  a global install (`npm install -g ./packages/cli`, or `npm link`)
 *   node packages/cli/dist/main.js … as typed
 */
import { existsSync } from 'node:fs';
import { basename, isAbsolute, relative } from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

/** Whether an npm script (npm run NAME) started this very program, rather than, say, a test runner that spawned it. */
function npmScript(env: Env): { event: string; args: string[] } | undefined {
  const { npm_command: command, npm_lifecycle_event: event, npm_lifecycle_script: script } = env;
  if ((command !== 'run' && command !== 'run-script') || !event || !script) return undefined;
  const words = script.trim().split(/\s+/);
  const main = words.findIndex((word) => /(^|\/)packages\/cli\/dist\/main\.js$/.test(word) || word === 'descent');
  return main === -1 ? undefined : { event, args: words.slice(main + 1) };
}

/** Under `npm run`, the folder the user ran npm from (npm itself runs scripts from the repository root). */
export function callerDirectory(env: Env = process.env): string | undefined {
  const dir = env.INIT_CWD;
  return npmScript(env) && dir && existsSync(dir) ? dir : undefined;
}

/**
 * `args` (e.g. "train --resume models/x") as a command line the user can run the way they ran this one.
 */
export function commandLine(args: string, { env = process.env, argv1 = process.argv[1] ?? '', cwd = process.cwd() }: { env?: Env; argv1?: string; cwd?: string } = {}): string {
  const script = npmScript(env);
  if (script) {
    const prefix = script.args.join(' ');
    if (prefix && (args === prefix || args.startsWith(`${prefix} `))) return `npm run ${script.event} -- ${args.slice(prefix.length).trim()}`.trimEnd();
    if (!prefix) return `npm run ${script.event} -- ${args}`;
  }
  if (env.npm_command === 'exec') return `npx descent ${args}`;
  if (basename(argv1) === 'descent') return `descent ${args}`;
  // Node gives the script's absolute path: shown relative from inside its tree, absolute from elsewhere.
  const path = relative(cwd, argv1);
  return `node ${path && !path.startsWith('..') && !isAbsolute(path) ? path : argv1} ${args}`;
}

/** A path as a shell word: quoted when it holds anything a shell would split or expand. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
