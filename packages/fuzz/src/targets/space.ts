/**
 * Search spaces, as `descent tune --space FILE.json` reads them: spaces with ranges, lists, fixed
 * values and layer templates, edited as JSON (wrong types, huge or negative numbers, deep nesting,
 * long lists) or as text; a space that loads is sampled and described as a search would.
 */
import fc from 'fast-check';
import { Random } from '@descent/engine';
import { describeSpace, sampleValues, spaceFromText, spaceSize } from '@descent/jobs';
import { applyJsonEdits, applyTextEdit, jsonEdit, textEdit, type JsonEdit, type TextEdit } from '../mutate.js';
import type { FuzzTarget } from './target.js';

export interface SpaceCase {
  seed: number;
  edits: JsonEdit[];
  text: TextEdit;
}

const SEEDS: unknown[] = [
  { units: { min: 32, max: 512, step: 32 }, lr: [0.01, 0.001], dropout: 0.2, optimizer: ['adam', 'sgd'], hidden_layers: { min: 1, max: 3 } },
  { lr: { min: 1e-4, max: 1e-2, sampling: 'log' }, units: [64, 128], dropout: { min: 0, max: 0.5 } },
  { layers: ['conv2d:{filters}:{kernel_size}:relu,maxpool:2,flatten,dense:{units}:relu', 'cnn', ''], filters: { min: 16, max: 64, step: 16 }, kernel_size: [3, 5], units: 128 },
  { units: { min: 8, max: 4096, step: 2, sampling: 'log' }, hidden_layers: [0, 1, 2] },
];

export function spaceTarget(): FuzzTarget<SpaceCase, string> {
  return {
    name: 'space',
    description: 'tune search spaces (JSON) edited as JSON and as text, then sampled and described',
    arbitrary: fc.record({ seed: fc.integer({ min: 0, max: SEEDS.length - 1 }), edits: fc.array(jsonEdit, { maxLength: 3 }), text: textEdit }),
    prepare: (input) => applyTextEdit(applyJsonEdits(SEEDS[input.seed], input.edits), input.text),
    run(text) {
      const space = spaceFromText(text, 'space.json');
      const random = new Random(1);
      for (let i = 0; i < 3; i++) sampleValues(space, random);
      spaceSize(space);
      describeSpace(space);
    },
    describe: (input) => JSON.stringify(input, (_key, value: unknown) => (typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…(${value.length})` : value)).slice(0, 2000),
  };
}
