/**
 * Model definitions, as `descent train --model FILE.json` and `--layers` take them (and tune's
 * layer templates): Keras and TensorFlow.js Sequential JSON edited as JSON (wrong types, huge
 * sizes, deep nesting, repeated layers) or as text, and one-line --layers definitions made of
 * good, damaged and random tokens. The model is planned, checked against a parameter cap and
 * built (then freed) when it fits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { defineModel, modelFromDefinitionText, parseLayers } from '@descent/engine';
import { applyJsonEdits, applyTextEdit, jsonEdit, textEdit, type JsonEdit, type TextEdit } from '../mutate.js';
import type { FuzzTarget } from './target.js';

/** Models up to 2^24 parameters (64 MiB of float32) are built; larger ones must be refused before anything is allocated. */
export const DEFINITION_MAX_PARAMETERS = 2 ** 24;

export type DefinitionCase =
  | { kind: 'json'; seed: number; edits: JsonEdit[]; text: TextEdit }
  | { kind: 'layers'; tokens: string[]; separator: string };

const GOOD_TOKENS = ['conv2d:32:3:relu', 'conv:8:3x5:same:stride=2', 'maxpool:2', 'pool:3:stride=1:same', 'flatten', 'dense:128:relu', 'dense:10:softmax', 'dropout:0.3', 'reshape:28x28x1', 'reshape:784'];
const HOSTILE_TOKENS = ['dense:99999999999', 'conv2d:16777216:1', 'dense:0', 'conv2d:1:100000', 'reshape:4096x4096x4096', 'maxpool:0', 'dropout:1', 'dense:-3', 'dense:1e9', 'conv2d:3:3:relu:relu', 'dense', '', ':::', 'x'.repeat(5000), 'dense:12\n8', 'dense:\u0000', 'conv2d:2:3:stride=0', 'reshape:0x1'];

const token = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...GOOD_TOKENS) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_TOKENS) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('conv2d', 'maxpool', 'dense', 'dropout', 'reshape', 'flatten'), fc.array(fc.oneof(fc.nat(100_000).map(String), fc.string({ maxLength: 6 }), fc.constantFrom('relu', 'same', 'stride=2', '3x3', '1e3')), { maxLength: 4 })).map(([name, fields]) => [name, ...fields].join(':')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

export function definitionSeeds(fixtureDir: string, savedModel: Record<string, unknown>): unknown[] {
  const read = (name: string) => JSON.parse(readFileSync(join(fixtureDir, name), 'utf8')) as unknown;
  return [read('keras-cnn.json'), read('keras-cnn-reshape.json'), savedModel, (savedModel as { modelTopology: unknown }).modelTopology];
}

export function definitionTarget(seeds: unknown[]): FuzzTarget<DefinitionCase, DefinitionCase & { json?: string }> {
  return {
    name: 'definition',
    description: 'model definitions: Keras/TensorFlow.js JSON edited as JSON and as text, --layers text from good, damaged and random tokens',
    arbitrary: fc.oneof(
      fc.record({ kind: fc.constant('json' as const), seed: fc.integer({ min: 0, max: seeds.length - 1 }), edits: fc.array(jsonEdit, { maxLength: 3 }), text: textEdit }),
      fc.record({ kind: fc.constant('layers' as const), tokens: fc.array(token, { minLength: 1, maxLength: 8 }), separator: fc.constantFrom(',', ',', ',', ', ', '|', ',,') }),
    ),
    prepare: (input) => (input.kind === 'json' ? { ...input, json: applyTextEdit(applyJsonEdits(seeds[input.seed], input.edits), input.text) } : input),
    run(input) {
      const options = { inputShape: [28, 28], classes: 10, seed: 1, maxParameters: DEFINITION_MAX_PARAMETERS };
      const model = input.kind === 'json'
        ? modelFromDefinitionText(input.json!, { ...options, source: '--model upload.json' })
        : defineModel(parseLayers(input.tokens.join(input.separator)), { ...options, source: '--layers' });
      model.dispose();
    },
    describe: (input) => JSON.stringify(input, (_key, value: unknown) => (typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…(${value.length})` : value)).slice(0, 2000),
  };
}
