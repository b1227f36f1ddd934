/** Starts worker.js in a process of its own for one measurement and waits for its reply. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerReply, WorkerTask } from './types.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
/** Last characters of a failed worker's stderr kept for the error message. */
const STDERR_TAIL = 4000;

export class WorkerError extends Error {
  override name = 'WorkerError';
  constructor(message: string, readonly details?: string) {
    super(message);
  }
}

export function describeTask(task: WorkerTask): string {
  switch (task.kind) {
    case 'epoch':
      return `epoch run of ${task.engine}`;
    case 'accuracy':
      return `accuracy run of ${task.engine} (seed ${task.seed})`;
    case 'steps':
      return `step parity against tfjs-${task.tfjsBackend}`;
  }
}

/** Workers still running, stopped with the bench if it is interrupted. */
const running = new Set<ChildProcess>();
let handlersInstalled = false;

function stopWorkersOnSignals(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      for (const child of running) child.kill('SIGTERM');
      process.exit(code);
    });
  }
}

export function runWorker<T>(task: WorkerTask): Promise<T> {
  stopWorkersOnSignals();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(task)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    running.add(child);
    let stderr = '';
    let reply: WorkerReply | undefined;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    child.on('message', (message) => {
      reply = message as WorkerReply;
    });
    child.on('error', (error) => reject(new WorkerError(`${describeTask(task)}: could not start ${process.execPath}: ${error.message}`)));
    child.on('close', (code, signal) => {
      running.delete(child);
      if (reply?.ok) return resolve(reply.result as T);
      const why = reply && !reply.ok ? reply.error : signal ? `killed by ${signal}` : `exited with code ${code} without a result`;
      reject(new WorkerError(`${describeTask(task)} failed: ${why}`, reply && !reply.ok ? reply.stack : stderr.trim()));
    });
  });
}
