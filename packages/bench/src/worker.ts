/**
 * One descent or TensorFlow.js measurement (or a step-parity run, whose Keras oracle it starts
 * in Python) in a process of its own: `node worker.js '<task as JSON>'`. The parent (child.ts)
 * starts it with an IPC channel; the reply goes back over it, so whatever the engines print on
 * stdout cannot corrupt the result.
 */
import { descentAccuracy, descentEpoch } from './descent-engine.js';
import { stepParity } from './step-parity.js';
import { tfjsAccuracy, tfjsEpoch } from './tfjs-engine.js';
import { ENGINE_INFO, type WorkerReply, type WorkerTask } from './types.js';

async function run(task: WorkerTask): Promise<WorkerReply> {
  switch (task.kind) {
    case 'epoch':
      return { ok: true, result: ENGINE_INFO[task.engine].runtime === 'descent' ? await descentEpoch(task) : await tfjsEpoch(task) };
    case 'accuracy':
      return { ok: true, result: ENGINE_INFO[task.engine].runtime === 'descent' ? await descentAccuracy(task) : await tfjsAccuracy(task) };
    case 'steps':
      return { ok: true, result: await stepParity(task) };
  }
}

function reply(message: WorkerReply): void {
  if (process.send) process.send(message, () => process.exit(message.ok ? 0 : 1));
  else {
    process.stdout.write(`${JSON.stringify(message)}\n`);
    process.exit(message.ok ? 0 : 1);
  }
}

let task: WorkerTask;
try {
  task = JSON.parse(process.argv[2] ?? '') as WorkerTask;
} catch {
  process.stderr.write('bench worker: expected a task as JSON in the first argument\n');
  process.exit(2);
}
run(task).then(reply, (error: unknown) => {
  const err = error instanceof Error ? error : new Error(String(error));
  reply({ ok: false, error: err.message, stack: err.stack });
});
