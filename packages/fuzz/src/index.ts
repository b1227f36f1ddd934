/** The fuzz suite: every reader of outside input under seeded property tests (see main.ts for long runs). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { definitionSeeds, definitionTarget } from './targets/definition.js';
import { idxTarget } from './targets/idx.js';
import { imageSeeds, imageTarget } from './targets/image.js';
import { modelTarget, optimizerStateTarget, savedFolder } from './targets/model.js';
import { spaceTarget } from './targets/space.js';
import type { FuzzTarget } from './targets/target.js';
import { zipSeeds, zipTarget } from './targets/zip.js';

export { DEFAULT_LIMITS, runCase, violations, type CaseLimits, type CaseResult } from './measure.js';
export { applyByteEdits, applyJsonEdits, stringifyWithRaw, type ByteEdit, type JsonEdit } from './mutate.js';
export { DEFINITION_MAX_PARAMETERS } from './targets/definition.js';
export { withClaimedSize } from './targets/image.js';
export { makeZip, type ZipEntry } from './zip.js';
export { savedFolder, type SavedFolder } from './targets/model.js';
export { runPrepared, type FuzzTarget } from './targets/target.js';

export const TARGET_NAMES = ['idx', 'model', 'optimizer', 'image', 'zip', 'definition', 'space'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** The repository's small Fashion-MNIST subset. */
export const FIXTURE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/fashion-mnist');
/** Keras model definitions (model.to_json()). */
export const DEFINITIONS_DIR = resolve(FIXTURE_DIR, '../model-definitions');

export interface Targets {
  targets: Map<TargetName, FuzzTarget<unknown>>;
  /** Removes the temporary folder the targets write into. */
  close(): void;
}

/** The named targets, with their seed files made in a temporary folder. */
export async function makeTargets(names: readonly TargetName[] = TARGET_NAMES): Promise<Targets> {
  const workDir = mkdtempSync(join(tmpdir(), 'descent-fuzz-'));
  const targets = new Map<TargetName, FuzzTarget<unknown>>();
  const saved = names.some((n) => n === 'model' || n === 'optimizer' || n === 'definition') ? await savedFolder(workDir) : undefined;
  for (const name of names) {
    if (name === 'idx') targets.set(name, idxTarget(FIXTURE_DIR, workDir) as unknown as FuzzTarget<unknown>);
    if (name === 'model') targets.set(name, modelTarget(saved!, workDir) as unknown as FuzzTarget<unknown>);
    if (name === 'optimizer') targets.set(name, optimizerStateTarget(saved!, workDir) as unknown as FuzzTarget<unknown>);
    if (name === 'image') targets.set(name, imageTarget(await imageSeeds()) as unknown as FuzzTarget<unknown>);
    if (name === 'zip') targets.set(name, zipTarget(await zipSeeds()) as unknown as FuzzTarget<unknown>);
    if (name === 'definition') targets.set(name, definitionTarget(definitionSeeds(DEFINITIONS_DIR, saved!.model)) as unknown as FuzzTarget<unknown>);
    if (name === 'space') targets.set(name, spaceTarget() as unknown as FuzzTarget<unknown>);
  }
  return {
    targets,
    close: () => {
      for (const target of targets.values()) target.close?.();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
