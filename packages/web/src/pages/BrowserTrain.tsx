/**
 * Train in your browser: the default model (Flatten → Dense 128 ReLU → Dense softmax, Adam) on a
 * dataset fetched from the server (Fashion-MNIST by default), trained by the engine on a worker
 * in this page, with Keras's progress bar and live curves; each epoch's seconds beside the same
 * epoch trained in Node by the server on this machine.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { getJson, request, sendJson, type Dataset, type Job } from '../api.js';
import { LineChart } from '../components/Chart.js';
import { idxImages, idxLabels } from '../idx.js';
import { threadsAvailable } from '../threads.js';
import type { FromWorker, ToWorker, TrainSettings } from '../train-worker.js';

interface EpochRow {
  epoch: number;
  seconds: number;
  logs: Record<string, number>;
}

interface Curves {
  x: number[];
  loss: number[];
  accuracy: number[];
}

/** Bytes of a response, reporting the fraction received when the size is known. */
async function download(path: string, onProgress: (received: number) => void): Promise<Uint8Array> {
  const response = await request(path, { headers: { accept: 'application/octet-stream' } });
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received);
  }
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const chunk of chunks) (bytes.set(chunk, at), (at += chunk.length));
  return bytes;
}

export function BrowserTrain() {
  const [datasets, setDatasets] = useState<Dataset[]>([]);
  const [status, setStatus] = useState<string>('');
  const [running, setRunning] = useState(false);
  const [lines, setLines] = useState<string[]>([]);
  const [live, setLive] = useState('');
  const [curves, setCurves] = useState<Curves>({ x: [], loss: [], accuracy: [] });
  const [epochs, setEpochs] = useState<EpochRow[]>([]);
  const [node, setNode] = useState<{ seconds: number | null; status: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const worker = useRef<Worker | null>(null);
  const settingsUsed = useRef<{ dataset: string; settings: TrainSettings } | null>(null);

  useEffect(() => {
    void getJson<{ datasets: Dataset[] }>('/api/v1/datasets').then((r) => setDatasets(r.datasets), (e: Error) => setError(e.message));
    return () => worker.current?.terminate();
  }, []);

  const start = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const value = (name: string) => String(form.get(name) ?? '').trim();
    const dataset = datasets.find((d) => d.name === value('dataset'));
    if (!dataset) return setError('Choose a dataset.');
    const settings: TrainSettings = {
      hidden: value('hidden').split(',').map((s) => s.trim()).filter(Boolean).map(Number),
      dropout: 0,
      epochs: Number(value('epochs')),
      batchSize: Number(value('batch_size')),
      learningRate: Number(value('learning_rate')),
      validationSplit: Number(value('validation_split')),
      seed: 42,
      threads: Number(value('threads')) || 1,
    };
    setError(null);
    setLines([]);
    setLive('');
    setEpochs([]);
    setCurves({ x: [], loss: [], accuracy: [] });
    setNode(null);
    setRunning(true);
    try {
      const base = `/api/v1/datasets/${encodeURIComponent(dataset.name)}`;
      const total = dataset.counts.train.reduce((a, b) => a + b, 0) * (dataset.height * dataset.width + 1);
      let got = 0;
      const show = (n: number) => setStatus(`Fetching ${dataset.name} from the server: ${Math.min(100, Math.round(((got + n) / total) * 100))}%`);
      const imageBytes = await download(`${base}/train-images.idx`, show);
      got = imageBytes.length;
      const labelBytes = await download(`${base}/train-labels.idx`, show);
      const images = idxImages(imageBytes, `${dataset.name} training images`);
      const labels = idxLabels(labelBytes, `${dataset.name} training labels`);
      setStatus(`Training on ${images.count} images in this browser…`);
      settingsUsed.current = { dataset: dataset.name, settings };
      const w = new Worker(new URL('../train-worker.ts', import.meta.url), { type: 'module', name: 'descent-training' });
      worker.current = w;
      const curve: Curves = { x: [], loss: [], accuracy: [] };
      w.onmessage = (message: MessageEvent<FromWorker>) => {
        const data = message.data;
        if (data.type === 'progress') {
          if (data.final) (setLines((l) => [...l, data.text]), setLive(''));
          else setLive(data.text);
        } else if (data.type === 'batch') {
          curve.x.push(data.epoch - 1 + data.batch / data.batches);
          curve.loss.push(data.loss);
          curve.accuracy.push(data.accuracy);
          setCurves({ ...curve });
        } else if (data.type === 'epoch') {
          setEpochs((rows) => [...rows, { epoch: data.epoch, seconds: data.seconds, logs: data.logs }]);
        } else if (data.type === 'done' || data.type === 'error') {
          if (data.type === 'error') setError(data.message);
          else setStatus(`${data.stopped ? 'Stopped' : 'Done'} (kernels on ${data.threads} thread${data.threads === 1 ? '' : 's'}).`);
          setRunning(false);
          w.terminate();
          worker.current = null;
        }
      };
      w.onerror = (e) => (setError(e.message || 'the training worker failed'), setRunning(false));
      const message: ToWorker = { type: 'start', images: images.pixels, labels, rows: images.rows, cols: images.cols, classes: dataset.classes.length, settings };
      w.postMessage(message, [imageBytes.buffer, labelBytes.buffer]);
    } catch (e) {
      setError((e as Error).message);
      setRunning(false);
    }
  };

  /** The same epoch, trained by Node on the server (a one-epoch job with the same settings). */
  const timeNode = async () => {
    const used = settingsUsed.current;
    if (!used) return;
    setNode({ seconds: null, status: 'queued' });
    try {
      const { settings } = used;
      const job = await sendJson<Job>('POST', '/api/v1/jobs', {
        dataset: used.dataset, name: `${used.dataset}-node-epoch`, model: { hidden: settings.hidden, dropout: 0 }, optimizer: 'adam',
        learning_rate: settings.learningRate, epochs: 1, batch_size: settings.batchSize, validation_split: settings.validationSplit, seed: settings.seed, progress_every: 0,
      });
      const source = new EventSource(`/api/v1/jobs/${job.id}/events`);
      source.addEventListener('epoch', (e) => setNode({ seconds: JSON.parse((e as MessageEvent).data).seconds, status: 'done' }));
      source.addEventListener('status', (e) => {
        const data = JSON.parse((e as MessageEvent).data) as { status: string };
        setNode((n) => ({ seconds: n?.seconds ?? null, status: data.status }));
        if (!['queued', 'running'].includes(data.status)) source.close();
      });
    } catch (e) {
      setNode({ seconds: null, status: (e as Error).message });
    }
  };

  const defaultDataset = datasets.find((d) => d.name === 'fashion-mnist')?.name ?? datasets[0]?.name;
  const mean = epochs.length ? epochs.reduce((a, r) => a + r.seconds, 0) / epochs.length : null;
  return (
    <div class="columns">
      <form class="card" onSubmit={start} aria-labelledby="bt-title">
        <h2 id="bt-title">The default model, trained here</h2>
        <p class="muted">The images come from the server once; every step then runs in this page, on descent's engine and WebAssembly kernels.</p>
        <label>Dataset
          <select name="dataset" key={defaultDataset} defaultValue={defaultDataset}>
            {datasets.map((d) => <option key={d.name} value={d.name}>{d.name} ({d.counts.train.reduce((a, b) => a + b, 0)} training images)</option>)}
          </select>
        </label>
        <label>Hidden layers (units, comma-separated)<input name="hidden" defaultValue="128" /></label>
        <div class="pair">
          <label>Epochs<input name="epochs" type="number" min="1" max="100" defaultValue="5" /></label>
          <label>Batch size<input name="batch_size" type="number" min="1" max="4096" defaultValue="32" /></label>
        </div>
        <div class="pair">
          <label>Learning rate (Adam)<input name="learning_rate" type="number" step="any" min="0.000001" defaultValue="0.001" /></label>
          <label>Validation split<input name="validation_split" type="number" min="0" max="0.9" step="0.05" defaultValue="0" /></label>
        </div>
        <label>Kernel threads<input name="threads" type="number" min="1" max="16" defaultValue={String(threadsAvailable() ? Math.min(16, navigator.hardwareConcurrency || 1) : 1)} disabled={!threadsAvailable()} /></label>
        {!threadsAvailable() ? <p class="muted small">This page is not cross-origin isolated, so the kernels run on one thread.</p> : null}
        <div class="buttons">
          <button type="submit" disabled={running || !datasets.length}>Train in this browser</button>
          <button type="button" class="danger" disabled={!running} onClick={() => worker.current?.postMessage({ type: 'stop' } satisfies ToWorker)}>Stop</button>
        </div>
        {error ? <p role="alert" class="error">{error}</p> : null}
        <p aria-live="polite" data-testid="browser-status">{status}</p>
      </form>
      <section class="card" aria-labelledby="bt-progress">
        <h2 id="bt-progress">Progress</h2>
        <pre class="console" data-testid="keras-progress" aria-live="off">{[...lines, live].filter(Boolean).join('\n') || ' '}</pre>
        <div class="charts">
          <LineChart title="Loss" xLabel="epoch" x={curves.x} series={[{ label: 'loss', values: curves.loss, color: '#2563eb' }]} />
          <LineChart title="Accuracy" xLabel="epoch" x={curves.x} series={[{ label: 'accuracy', values: curves.accuracy, color: '#16a34a' }]} />
        </div>
        <table class="list" data-testid="epoch-table">
          <caption>Seconds per epoch</caption>
          <thead><tr><th scope="col">Epoch</th><th scope="col">This browser</th><th scope="col">loss</th><th scope="col">accuracy</th></tr></thead>
          <tbody>
            {epochs.map((row) => (
              <tr key={row.epoch}><td>{row.epoch}</td><td data-seconds={row.seconds}>{row.seconds.toFixed(2)} s</td><td data-loss={row.logs.loss}>{row.logs.loss?.toFixed(4)}</td><td>{row.logs.accuracy?.toFixed(4)}</td></tr>
            ))}
          </tbody>
        </table>
        <p>
          Node on this machine (the server trains the same epoch):{' '}
          {node ? (node.seconds != null ? <strong data-testid="node-seconds">{node.seconds.toFixed(2)} s</strong> : <span class="muted">{node.status}…</span>) : <span class="muted">not measured yet</span>}
          {mean != null && node?.seconds ? <span class="muted"> · this browser {mean.toFixed(2)} s, {(mean / node.seconds).toFixed(2)}× Node</span> : null}
        </p>
        <button type="button" class="secondary" disabled={!settingsUsed.current || running || node?.status === 'queued' || node?.status === 'running'} onClick={() => void timeNode()}>Time one epoch in Node</button>
      </section>
    </div>
  );
}
