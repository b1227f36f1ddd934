/**
 * descent: a small tensor and autodiff engine for training image classifiers.
 *
 *   import { sequential, flatten, dense, adam } from '@descent/engine';
 *   const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 128, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })]);
 *   model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
 *   const history = await model.fit(train, train.labels, { epochs: 5, batchSize: 32 });
 */
import { setThreadHost } from './backend/index.js';
import { nodeThreadHost } from './backend/threads-node.js';

// This entry runs in Node: kernels may start worker_threads (a browser installs Web Workers: webWorkerThreadHost).
setThreadHost(nodeThreadHost);

// Everything browser-safe, then what needs Node: reading and writing files, finding data sets.
export * from './core.js';
export * from './data/node.js';
export * from './io/node.js';
export { turnOffJsInlining } from './backend/compiler-node.js';
