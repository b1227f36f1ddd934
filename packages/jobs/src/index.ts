/**
 * descent's training jobs. A job is a JSON description of one training run (spec.ts); a runner
 * runs it: LocalRunner on worker threads in this process, QueueRunner through a BullMQ queue to
 * `descent worker` processes anywhere. Both report progress, can cancel, and hand back the
 * weights; checkpoints let a job continue to the same weights after an interruption.
 * On top: hyperparameter search (search/), Hyperband as keras-tuner runs it, or random.
 */
export * from './spec.js';
export { JobError, type JobRunner, type RunOptions } from './runner.js';
export { LocalRunner, defaultJobThreads, type LocalRunnerOptions } from './local.js';
export { runTrainingJob, buildClassifier, type RunHooks } from './train.js';
export * from './search/hyperband.js';
export * from './search/space.js';
export * from './search/search.js';
export { QueueRunner, serveQueue, parseRedisUrl, checkQueueReachable, QUEUE_NAME, DEFAULT_LOCK_SECONDS, type QueueWorker, type QueueWorkerOptions, type RedisAddress } from './queue.js';
