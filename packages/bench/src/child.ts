/**
 * Every measurement runs in a process of its own: worker.js in a fresh Node for descent and
 * TensorFlow.js, python/keras_child.py in a Python with TensorFlow for Keras. This module starts
 * them, waits for their reply and stops them if the bench is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findKerasPython } from './keras-python.js';
import { ENGINE_INFO, MODEL, ORACLE_ENGINES, type EngineId, type Unavailable, type WorkerReply, type WorkerTask } from './types.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
const KERAS_CHILD = fileURLToPath(new URL('../python/keras_child.py', import.meta.url));
/** Last characters of a failed child's stderr kept for the error message. */
const STDERR_TAIL = 4000;

export class WorkerError extends Error {
  override name = 'WorkerError';
  constructor(message: string, readonly details?: string) {
    super(message);
  }
}

export function describeTask(task: WorkerTask | KerasTask): string {
  switch (task.kind) {
    case 'epoch':
      return `epoch run of ${'engine' in task ? task.engine : `keras (${task.threads} threads)`}`;
    case 'accuracy':
      return `accuracy run of ${'engine' in task ? task.engine : 'keras'} (seed ${task.seed})`;
    case 'steps':
      return 'oracle' in task ? `step parity against ${task.oracle}` : 'Keras steps';
  }
}

/** What the TensorFlow engines read at start-up: thread counts, and quiet logs. */
export function environmentFor(engine: EngineId | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' };
  const threads = engine ? ENGINE_INFO[engine].threads : undefined;
  if (engine && ENGINE_INFO[engine].backend === 'node' && threads) {
    env.TF_NUM_INTRAOP_THREADS = String(threads);
    env.TF_NUM_INTEROP_THREADS = String(threads);
  }
  return env;
}

/** Children still running, stopped with the bench if it is interrupted. */
const running = new Set<ChildProcess>();
let handlersInstalled = false;

function stopChildrenOnSignals(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      for (const child of running) child.kill('SIGTERM');
      process.exit(code);
    });
  }
}

/**
 * Runs one child to its end. Its reply comes over the IPC channel (Node workers), or as JSON on
 * stdout (Python); stderr is kept only for the error message.
 */
function runChild<T>(what: string, command: string, args: string[], options: { env: NodeJS.ProcessEnv; input?: string; ipc: boolean }): Promise<T> {
  stopChildrenOnSignals();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', options.ipc ? 'ignore' : 'pipe', 'pipe', ...(options.ipc ? ['ipc' as const] : [])] });
    running.add(child);
    let stderr = '';
    let stdout = '';
    let reply: WorkerReply | undefined;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.on('message', (message) => {
      reply = message as WorkerReply;
    });
    if (options.input !== undefined) {
      child.stdin!.on('error', () => {}); // a child that dies early closes its stdin; its exit says why
      child.stdin!.end(options.input);
    }
    child.on('error', (error) => reject(new WorkerError(`${what}: could not start ${command}: ${error.message}`)));
    child.on('close', (code, signal) => {
      running.delete(child);
      if (!options.ipc && stdout.trim()) {
        try {
          reply = JSON.parse(stdout) as WorkerReply;
        } catch {
          // not a reply: reported below as an exit without a result
        }
      }
      if (reply?.ok) return resolve(reply.result as T);
      const why = reply && !reply.ok ? reply.error : signal ? `killed by ${signal}` : `exited with code ${code} without a result`;
      reject(new WorkerError(`${what} failed: ${why}`, reply && !reply.ok ? reply.stack : stderr.trim()));
    });
  });
}

/** A descent or TensorFlow.js measurement in a fresh Node process. */
export function runWorker<T>(task: WorkerTask): Promise<T> {
  const env = environmentFor(task.kind === 'steps' ? ORACLE_ENGINES[task.oracle] : task.engine);
  return runChild<T>(describeTask(task), process.execPath, [WORKER, JSON.stringify(task)], { env, ipc: true });
}

/** What python/keras_child.py is asked to do (see its docstring). */
export interface KerasTask {
  kind: 'epoch' | 'accuracy' | 'steps';
  model: WorkerTask['model'];
  files: WorkerTask['files'];
  seed: number;
  threads: number;
  batchSize: number;
  adam: { learningRate: number; beta1: number; beta2: number; epsilon: number };
  epochs?: number;
  validationSplit?: number;
  earlyStoppingPatience?: number;
  steps?: number;
  inferenceRuns?: number;
  /** false: TensorFlow's Eigen CPU kernels instead of oneDNN's (TF_ENABLE_ONEDNN_OPTS=0). */
  onednn?: boolean;
}

export function kerasTask(fields: Omit<KerasTask, 'batchSize' | 'adam'>): KerasTask {
  const { batchSize, learningRate, beta1, beta2, epsilon } = MODEL;
  return { ...fields, batchSize, adam: { learningRate, beta1, beta2, epsilon } };
}

/** A Keras measurement in Python, or why it cannot run here. */
export function runKeras<T>(task: KerasTask): Promise<T | Unavailable> {
  const found = findKerasPython();
  if (found.python === undefined) return Promise.resolve({ available: false, reason: found.reason });
  return runChild<T>(describeTask(task), found.python, [KERAS_CHILD], { env: environmentFor(undefined), input: JSON.stringify(task), ipc: false });
}

/** Runs a whole-epoch or accuracy task wherever its engine lives. */
export function runTask<T>(task: WorkerTask): Promise<T | Unavailable> {
  if (task.kind !== 'steps' && ENGINE_INFO[task.engine].runtime === 'keras') {
    const { kind, model, files, seed } = task;
    const threads = ENGINE_INFO[task.engine].threads ?? 0;
    return runKeras<T>(kerasTask({ kind, model, files, seed, threads, ...(task.kind === 'epoch'
        ? { inferenceRuns: task.inferenceRuns }
        : {
            epochs: task.epochs,
            ...(task.validationSplit !== undefined ? { validationSplit: task.validationSplit } : {}),
            ...(task.earlyStoppingPatience !== undefined ? { earlyStoppingPatience: task.earlyStoppingPatience } : {}),
          }) }));
  }
  return runWorker<T>(task);
}
