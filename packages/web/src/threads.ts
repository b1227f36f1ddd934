/**
 * The kernels' worker threads in a browser. They need SharedArrayBuffer, which a page has only
 * when cross-origin isolated (descent serve sends COOP and COEP headers); elsewhere the engine
 * runs on one thread.
 */
export function threadsAvailable(): boolean {
  return typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated === true;
}

/** Asks for `wanted` threads; resolves to the number the kernels use. */
export async function installBrowserThreads(wanted: number): Promise<number> {
  void wanted;
  return 1;
}
