/**
 * Moving freshly initialised weights from a tfjs model into a descent model through the tfjs
 * Layers format: tfjs saves (weight specs + one binary blob), we decode the blob spec by spec
 * and hand the arrays to descent in its parameters() order (kernel, bias per Dense layer).
 */
import type * as TF from '@tensorflow/tfjs';
import type { Sequential } from '@descent/engine';
import type { Tf } from './tfjs-engine.js';

export interface LayersWeights {
  specs: Array<{ name: string; shape: number[] }>;
  values: Float32Array[];
}

/** What `model.save()` would write to weights.bin, decoded. */
export async function exportLayersWeights(tf: Tf, model: TF.LayersModel): Promise<LayersWeights> {
  let artifacts: TF.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (saved) => {
      artifacts = saved;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightSpecs || !artifacts.weightData) throw new Error('tfjs saved no weights');
  const blob = concatBuffers(artifacts.weightData);
  const specs: LayersWeights['specs'] = [];
  const values: Float32Array[] = [];
  let offset = 0;
  for (const spec of artifacts.weightSpecs) {
    if (spec.dtype !== 'float32' || spec.quantization) throw new Error(`weight ${spec.name}: expected plain float32, got ${spec.dtype}`);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    values.push(new Float32Array(blob.slice(offset, offset + count * 4)));
    specs.push({ name: spec.name, shape: [...spec.shape] });
    offset += count * 4;
  }
  if (offset !== blob.byteLength) throw new Error(`weight specs cover ${offset} bytes of a ${blob.byteLength}-byte blob`);
  return { specs, values };
}

/** Sets descent's weights from tfjs's, checking that the order and shapes agree. */
export function importLayersWeights(model: Sequential, weights: LayersWeights): void {
  const parameters = model.parameters();
  if (parameters.length !== weights.specs.length) {
    throw new Error(`descent has ${parameters.length} weights, tfjs exported ${weights.specs.length}`);
  }
  parameters.forEach(({ name, tensor }, i) => {
    const spec = weights.specs[i];
    const role = (n: string) => n.slice(n.lastIndexOf('/') + 1);
    if (role(name) !== role(spec.name) || spec.shape.join('x') !== tensor.shape.join('x')) {
      throw new Error(`weight ${i}: descent's ${name} [${tensor.shape}] does not match tfjs's ${spec.name} [${spec.shape}]`);
    }
  });
  model.setWeights(weights.values);
}

function concatBuffers(data: ArrayBuffer | ArrayBuffer[]): ArrayBuffer {
  if (!Array.isArray(data)) return data;
  const out = new Uint8Array(data.reduce((total, buffer) => total + buffer.byteLength, 0));
  let offset = 0;
  for (const buffer of data) {
    out.set(new Uint8Array(buffer), offset);
    offset += buffer.byteLength;
  }
  return out.buffer;
}
