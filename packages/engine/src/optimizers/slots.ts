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

export function writeSlots(parameters: readonly Parameter[], slots: SlotMaps, saved: Record<string, number[][]>): void {
  for (const [slotName, map] of Object.entries(slots)) {
    const values = saved[slotName];
    if (!values || values.length !== parameters.length) throw new ConfigError(`optimizer state has no '${slotName}' for every parameter`);
    parameters.forEach(({ name, tensor }, i) => {
      if (values[i].length === 0) return;
      if (values[i].length !== tensor.size) {
        throw new ConfigError(`optimizer state '${slotName}' for ${name} has ${values[i].length} values, expected ${tensor.size}`);
      }
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
