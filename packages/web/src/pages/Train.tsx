/**
 * Train on the server: a model form (layers, dropout, optimizer, learning rate, epochs, batch
 * size, validation split), then the job's live progress from its Server-Sent Events (loss and
 * accuracy per batch and per epoch), cancel, and a link to the model when it is saved.
 */
import { useEffect, useState } from 'preact/hooks';
import { FINISHED, getJson, sendJson, type Dataset, type Job, type JobStatus } from '../api.js';
import { LineChart } from '../components/Chart.js';

interface Progress {
  /** Fractional epoch of each point (epoch − 1 + batch / batches). */
  x: number[];
  loss: Array<number | null>;
  accuracy: Array<number | null>;
  valLoss: Array<number | null>;
  valAccuracy: Array<number | null>;
  line: string;
}

const EMPTY: Progress = { x: [], loss: [], accuracy: [], valLoss: [], valAccuracy: [], line: '' };

export function Train({ query }: { query: URLSearchParams }) {
  const [datasets, setDatasets] = useState<Dataset[]>([]);
  const [jobs, setJobs] = useState<Job[]>([]);
  const [error, setError] = useState<string | null>(null);
  const watching = Number(query.get('job')) || null;
  const refreshJobs = () => getJson<{ jobs: Job[] }>('/api/v1/jobs?limit=20').then((r) => setJobs(r.jobs));
  useEffect(() => {
    void getJson<{ datasets: Dataset[] }>('/api/v1/datasets').then((r) => setDatasets(r.datasets), (e: Error) => setError(e.message));
    void refreshJobs();
  }, []);

  const start = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const value = (name: string) => String(form.get(name) ?? '').trim();
    const hidden = value('hidden').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    const optimizer = value('optimizer');
    setError(null);
    try {
      const job = await sendJson<Job>('POST', '/api/v1/jobs', {
        dataset: value('dataset'),
        ...(value('name') ? { name: value('name') } : {}),
        model: value('layers') ? { layers: value('layers') } : { hidden, dropout: Number(value('dropout')) },
        optimizer,
        learning_rate: Number(value('learning_rate')),
        epochs: Number(value('epochs')),
        batch_size: Number(value('batch_size')),
        validation_split: Number(value('validation_split')),
        progress_every: Number(value('progress_every')),
      });
      location.hash = `#/train?job=${job.id}`;
      void refreshJobs();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <div class="columns">
      <form class="card" onSubmit={start} aria-labelledby="train-form-title">
        <h2 id="train-form-title">New training job</h2>
        <label>Dataset
          <select name="dataset" required>
            {datasets.map((d) => <option key={d.name} value={d.name}>{d.name} ({d.counts.train.reduce((a, b) => a + b, 0)} training images)</option>)}
          </select>
        </label>
        <label>Hidden layers (units, comma-separated)<input name="hidden" defaultValue="128" pattern="\s*(\d+\s*(,\s*\d+\s*)*)?" /></label>
        <label>Dropout after each hidden layer<input name="dropout" type="number" min="0" max="0.95" step="0.05" defaultValue="0" /></label>
        <label>Or layers (e.g. <code>conv2d:32:3:relu,maxpool:2,flatten,dense:128:relu</code>)<input name="layers" placeholder="empty: the dense layers above" /></label>
        <label>Optimizer<select name="optimizer"><option value="adam">Adam</option><option value="sgd">SGD</option></select></label>
        <label>Learning rate<input name="learning_rate" type="number" min="0.000001" max="10" step="any" defaultValue="0.001" /></label>
        <div class="pair">
          <label>Epochs<input name="epochs" type="number" min="1" max="1000" defaultValue="5" /></label>
          <label>Batch size<input name="batch_size" type="number" min="1" max="65536" defaultValue="32" /></label>
        </div>
        <div class="pair">
          <label>Validation split<input name="validation_split" type="number" min="0" max="0.9" step="0.05" defaultValue="0.1" /></label>
          <label>Progress every (batches)<input name="progress_every" type="number" min="0" defaultValue="10" /></label>
        </div>
        <label>Model name (optional)<input name="name" maxLength={150} /></label>
        {error ? <p role="alert" class="error">{error}</p> : null}
        <button type="submit" disabled={datasets.length === 0}>Start training</button>
      </form>
      <div>
        {watching ? <JobProgress key={watching} id={watching} onFinished={() => void refreshJobs()} /> : <p class="muted">Start a job, or pick one below to follow it.</p>}
        <section class="card">
          <h2>Recent jobs</h2>
          <div class="scroll"><table class="list">
            <thead><tr><th scope="col">Job</th><th scope="col">Dataset</th><th scope="col">Status</th><th scope="col">Epochs</th><th scope="col">Model</th></tr></thead>
            <tbody>
              {jobs.map((job) => (
                <tr key={job.id}>
                  <td><a href={`#/train?job=${job.id}`}>#{job.id}</a></td>
                  <td>{job.dataset}</td>
                  <td><StatusBadge status={job.status} /></td>
                  <td>{job.epochs_done}/{job.epochs}</td>
                  <td>{job.model_id ? <a href={`#/models?id=${job.model_id}`}>model {job.model_id}</a> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table></div>
        </section>
      </div>
    </div>
  );
}

function StatusBadge({ status }: { status: JobStatus }) {
  return <span class={`badge ${status}`}>{status}</span>;
}

function JobProgress({ id, onFinished }: { id: number; onFinished: () => void }) {
  const [status, setStatus] = useState<{ status: JobStatus; epochs_done: number; epochs: number; model_id: number | null; message?: string | null } | null>(null);
  const [progress, setProgress] = useState<Progress>(EMPTY);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current: Progress = EMPTY;
    const source = new EventSource(`/api/v1/jobs/${id}/events`);
    const push = (next: { x: number; loss?: number | null; accuracy?: number | null; valLoss?: number | null; valAccuracy?: number | null; line?: string }) => {
      current = {
        x: [...current.x, next.x],
        loss: [...current.loss, next.loss ?? null],
        accuracy: [...current.accuracy, next.accuracy ?? null],
        valLoss: [...current.valLoss, next.valLoss ?? null],
        valAccuracy: [...current.valAccuracy, next.valAccuracy ?? null],
        line: next.line ?? current.line,
      };
      setProgress(current);
    };
    source.addEventListener('status', (event) => {
      const data = JSON.parse((event as MessageEvent).data);
      // The last status of a job carries only what changed (status, model, test metrics).
      setStatus((previous) => ({ ...previous, ...data }));
      // A job already under way: its finished epochs come with the first status.
      if (current.x.length === 0 && data.history?.loss?.length) {
        data.history.loss.forEach((_: number, i: number) => push({ x: i + 1, loss: data.history.loss[i], accuracy: data.history.accuracy?.[i], valLoss: data.history.val_loss?.[i], valAccuracy: data.history.val_accuracy?.[i] }));
      }
      if (FINISHED.has(data.status)) {
        source.close();
        onFinished();
      }
    });
    source.addEventListener('batch', (event) => {
      const d = JSON.parse((event as MessageEvent).data);
      push({ x: d.epoch - 1 + d.batch / d.batches, loss: d.loss, accuracy: d.accuracy, line: `epoch ${d.epoch} · batch ${d.batch}/${d.batches} · loss ${d.loss.toFixed(4)} · accuracy ${d.accuracy.toFixed(4)}` });
    });
    source.addEventListener('epoch', (event) => {
      const d = JSON.parse((event as MessageEvent).data);
      setStatus((previous) => (previous ? { ...previous, epochs_done: d.epoch } : previous));
      push({
        x: d.epoch, loss: d.loss, accuracy: d.accuracy, valLoss: d.val_loss, valAccuracy: d.val_accuracy,
        line: `epoch ${d.epoch} · ${d.seconds.toFixed(1)} s · loss ${d.loss.toFixed(4)} · accuracy ${d.accuracy.toFixed(4)}${d.val_loss != null ? ` · val_loss ${d.val_loss.toFixed(4)} · val_accuracy ${d.val_accuracy.toFixed(4)}` : ''}`,
      });
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) setError('the progress stream closed');
    };
    return () => source.close();
  }, [id]);

  const cancel = async () => {
    try {
      await sendJson('POST', `/api/v1/jobs/${id}/cancel`);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const finished = status ? FINISHED.has(status.status) : false;
  return (
    <section class="card" aria-labelledby="job-title" data-testid="job-progress">
      <div class="card-head">
        <h2 id="job-title">Job #{id}</h2>
        {status ? <StatusBadge status={status.status} /> : null}
        {status ? <span class="muted" data-testid="epochs-done">epoch {status.epochs_done} of {status.epochs}</span> : null}
        {!finished ? <button type="button" class="danger" onClick={cancel}>Cancel</button> : null}
      </div>
      <p class="mono" aria-live="polite" data-testid="job-line">{progress.line || 'waiting for the first batch…'}</p>
      {status?.message ? <p class="muted">{status.message}</p> : null}
      {status?.model_id ? <p>Saved as <a href={`#/models?id=${status.model_id}`} data-testid="job-model">model {status.model_id}</a> · <a href={`#/predict?model=${status.model_id}`}>predict with it</a></p> : null}
      {error ? <p role="alert" class="error">{error}</p> : null}
      <div class="charts">
        <LineChart title="Loss" xLabel="epoch" x={progress.x} series={[{ label: 'loss', values: progress.loss, color: '#2563eb' }, { label: 'val_loss', values: progress.valLoss, color: '#dc2626', dash: true }]} />
        <LineChart title="Accuracy" xLabel="epoch" x={progress.x} series={[{ label: 'accuracy', values: progress.accuracy, color: '#2563eb' }, { label: 'val_accuracy', values: progress.valAccuracy, color: '#dc2626', dash: true }]} />
      </div>
    </section>
  );
}
