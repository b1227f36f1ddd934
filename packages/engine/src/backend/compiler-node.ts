/**
 * How V8 compiles the engine's JavaScript, for a process that trains on the wasm kernels.
 *
 * With the wasm kernels, a training step's JavaScript is a thin layer of calls: a step replayed
 * from its recording, each call handed to the kernels and to the pool's threads. V8 optimizes the
 * hot ones with TurboFan, inlining what they call into them, and that makes big, slow compiles:
 * about 315 ms of compiler CPU in the first epoch of the bench model on two threads, 150–160 ms
 * without inlining (`--trace-opt`). The compiler runs on a thread of its own. With one kernel thread it takes
 * the idle core; with a kernel thread per core it takes time from one of them, which is why a
 * first epoch on two threads gained less over one thread than later epochs did.
 *
 * Turning inlining off is for the whole process, so it is the caller's choice: the CLI makes it
 * for its commands that train on the wasm kernels (train, tune, worker), a program that embeds
 * the engine may too (or start Node with --no-turbo-inlining). It slows JavaScript whose speed
 * comes from inlining, like the ts backend's kernels or a web server's request handling.
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Stops V8 from inlining functions into the ones it optimizes from now on, in this process and
 * its worker threads (see the header). Code already optimized stays as it is.
 */
export function turnOffJsInlining(): void {
  setFlagsFromString('--no-turbo-inlining');
}
