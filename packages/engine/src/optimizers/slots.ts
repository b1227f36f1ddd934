/** Copy optimizer slot buffers (Adam's m and v, SGD's velocity) to and from plain arrays for saving. */
import { kernels } from '../backend/index.js';
import type { Storage } from '../backend/kernels.js';
import { ConfigError } from '../errors.js';
import type { Parameter } from '../nn/layers.js';

type SlotMaps = Record<string, Map<Parameter['tensor'], Storage>>;

/** For each slot name, one array per parameter (empty if the slot was never created). */
export function readSlots(parameters: readonly Parameter[], slots: SlotMaps): Record<string, number[][]> {
  const out: Record<string, number[][]> = {};
  for (const [slotName, map] of Object.entries(slots)) {
    out[slotName] = parameters.map(({ tensor }) => Array.from(map.get(tensor)?.data ?? []));
  }
  return out;
}

/**
 * Restores slot buffers from saved values. Everything is checked before any memory is taken, so a
 * state that does not fit the parameters leaves the optimizer as it was.
 */
export function writeSlots(parameters: readonly Parameter[], slots: SlotMaps, saved: Record<string, ArrayLike<number>[]>): void {
  for (const slotName of Object.keys(slots)) {
    const values = Object.hasOwn(saved, slotName) ? saved[slotName] : undefined;
    if (!Array.isArray(values) || values.length !== parameters.length) {
      throw new ConfigError(`optimizer state has no '${slotName}' for every parameter (${parameters.length} parameters)`);
    }
    parameters.forEach(({ name, tensor }, i) => {
      const length = values[i]?.length;
      if (typeof length !== 'number' || (length !== 0 && length !== tensor.size)) {
        throw new ConfigError(`optimizer state '${slotName}' for ${name} has ${typeof length === 'number' ? length : 'no'} values, expected ${tensor.size}`);
      }
    });
  }
  for (const [slotName, map] of Object.entries(slots)) {
    const values = saved[slotName];
    parameters.forEach(({ tensor }, i) => {
      if (values[i].length === 0) return;
      const storage = map.get(tensor) ?? kernels().alloc(tensor.size);
      storage.data.set(values[i]);
      map.set(tensor, storage);
    });
  }
}

/** The slot buffer of `tensor` in `slots`, made (zero-filled) the first time. */
export function slotFor(slots: Map<Parameter['tensor'], Storage>, tensor: Parameter['tensor']): Storage {
  let storage = slots.get(tensor);
  if (!storage) {
    storage = kernels().alloc(tensor.size);
    slots.set(tensor, storage);
  }
  return storage;
}

/** Gives every slot buffer back to the backend and forgets it. */
export function freeSlots(...maps: Array<Map<Parameter['tensor'], Storage>>): void {
  for (const map of maps) {
    for (const storage of map.values()) kernels().free(storage);
    map.clear();
  }
}
