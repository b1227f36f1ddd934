/** What runs training jobs: worker threads in this process (LocalRunner) or a BullMQ queue (QueueRunner). */
import { DescentError } from '@descent/engine';
import type { JobEvent, JobResult, TrainingJobSpec } from './spec.js';

export interface RunOptions {
  /** Progress (every `progressEvery` batches and every epoch) and checkpoints, as they happen. */
  onEvent?(event: JobEvent): void;
  /** Aborting cancels the job: it stops after the current batch and resolves with status 'cancelled' and a checkpoint. */
  signal?: AbortSignal;
}

export interface JobRunner {
  /** How many jobs run at once; more can be submitted, they wait their turn. */
  readonly capacity: number;
  /** Runs a job to its end; rejects with a JobError if it failed. */
  run(spec: TrainingJobSpec, options?: RunOptions): Promise<JobResult>;
  /** Stops the workers (running jobs are abandoned) and releases connections. */
  close(): Promise<void>;
}

/** A job that failed where it ran; `exitCode` is set when the failure was the job's input (a DescentError there). */
export class JobError extends DescentError {
  override name = 'JobError';
  constructor(readonly jobId: string, message: string, exitCode: number | null, readonly remoteStack: string | null = null) {
    super(message);
    if (exitCode !== null) this.exitCode = exitCode;
  }
}
