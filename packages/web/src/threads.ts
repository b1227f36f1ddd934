/**
 * The kernels' worker threads in a browser. They need SharedArrayBuffer, which a page has only
 * when cross-origin isolated (descent serve sends COOP and COEP headers); elsewhere the engine
 * runs on one thread.
 */
import KernelWorker from '@descent/engine/thread-worker-browser?worker';
import { setThreadHost, setThreads, threadCount, threadsReady, webWorkerThreadHost } from '@descent/engine/core';

export function threadsAvailable(): boolean {
  return typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated === true;
}

/**
 * Asks for `wanted` threads (Web Workers sharing the kernels' memory); resolves to the number the
 * kernels use once the workers have started. Call it before the first model is built.
 */
export async function installBrowserThreads(wanted: number): Promise<number> {
  if (wanted <= 1 || !threadsAvailable()) {
    setThreads(1);
    return 1;
  }
  setThreadHost(webWorkerThreadHost(() => new KernelWorker({ name: 'descent-kernels' })));
  setThreads(wanted);
  await threadsReady();
  return threadCount();
}
