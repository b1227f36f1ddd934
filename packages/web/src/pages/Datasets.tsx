/**
 * Datasets: each with its classes, counts per split, a row of sample thumbnails per class, an
 * upload (images with a label, or a zip of one folder per label) with a progress bar, and delete.
 */
import { useEffect, useState } from 'preact/hooks';
import { getJson, sendJson, upload, type Dataset, type DatasetImage } from '../api.js';

const SAMPLES_PER_CLASS = 8;

export function Datasets() {
  const [datasets, setDatasets] = useState<Dataset[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const refresh = () => getJson<{ datasets: Dataset[] }>('/api/v1/datasets').then((r) => setDatasets(r.datasets), (e: Error) => setError(e.message));
  useEffect(() => void refresh(), []);

  return (
    <>
      <CreateDataset onCreated={(name) => void refresh().then(() => setOpen(name))} />
      {error ? <p role="alert" class="error">{error}</p> : null}
      {datasets === null ? <p class="muted">Loading…</p> : datasets.length === 0 ? <p>No datasets yet: create one above, then upload a zip.</p> : null}
      {datasets?.map((d) => (
        <DatasetCard key={d.name} dataset={d} expanded={open === d.name || datasets.length === 1} onToggle={() => setOpen(open === d.name ? null : d.name)} onChanged={() => void refresh()} />
      ))}
    </>
  );
}

function CreateDataset({ onCreated }: { onCreated: (name: string) => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    const formElement = event.currentTarget as HTMLFormElement;
    const form = new FormData(formElement);
    const name = String(form.get('name')).trim();
    const classes = String(form.get('classes') ?? '').split(',').map((c) => c.trim()).filter(Boolean);
    setError(null);
    try {
      await sendJson('POST', '/api/v1/datasets', { name, ...(classes.length ? { classes } : {}) });
      formElement.reset();
      onCreated(name);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form class="card row-form" onSubmit={submit}>
      <h2>New dataset</h2>
      <label>Name<input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" title="letters, digits, dot, dash, underscore" placeholder="clothes" /></label>
      <label>Classes (comma-separated, optional)<input name="classes" placeholder="a zip's folders name them" /></label>
      <button type="submit">Create</button>
      {error ? <p role="alert" class="error">{error}</p> : null}
    </form>
  );
}

function DatasetCard({ dataset, expanded, onToggle, onChanged }: { dataset: Dataset; expanded: boolean; onToggle: () => void; onChanged: () => void }) {
  const train = dataset.counts.train.reduce((a, b) => a + b, 0);
  const test = dataset.counts.test.reduce((a, b) => a + b, 0);
  const remove = async () => {
    if (!confirm(`Delete the dataset ${dataset.name} and its ${dataset.images} images?`)) return;
    try {
      await sendJson('DELETE', `/api/v1/datasets/${encodeURIComponent(dataset.name)}`);
      onChanged();
    } catch (e) {
      alert((e as Error).message);
    }
  };
  return (
    <section class="card" aria-labelledby={`ds-${dataset.name}`} data-testid={`dataset-${dataset.name}`}>
      <div class="card-head">
        <h2 id={`ds-${dataset.name}`}>{dataset.name}</h2>
        <span class="muted">{dataset.classes.length} classes · {train} training · {test} test images</span>
        <button type="button" class="secondary" aria-expanded={expanded} onClick={onToggle}>{expanded ? 'Hide' : 'Show'}</button>
        <button type="button" class="danger" onClick={remove}>Delete</button>
      </div>
      {expanded ? (
        <>
          <Upload dataset={dataset} onUploaded={onChanged} />
          <ClassGrid dataset={dataset} />
        </>
      ) : null}
    </section>
  );
}

function Upload({ dataset, onUploaded }: { dataset: Dataset; onUploaded: () => void }) {
  const [progress, setProgress] = useState<number | null>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const base = `/api/v1/datasets/${encodeURIComponent(dataset.name)}`;

  const submit = async (event: Event) => {
    event.preventDefault();
    const formElement = event.currentTarget as HTMLFormElement;
    const form = new FormData(formElement);
    const files = (form.getAll('files') as File[]).filter((f) => f.size > 0);
    const split = String(form.get('split'));
    const label = String(form.get('label') ?? '');
    if (files.length === 0) return setMessage({ text: 'Choose a zip or some images first.', error: true });
    setMessage(null);
    setProgress(0);
    let added = 0;
    try {
      const total = files.reduce((a, f) => a + f.size, 0);
      let done = 0;
      for (const file of files) {
        const body = new FormData();
        const zip = /\.zip$/i.test(file.name) || file.type === 'application/zip';
        if (!zip) {
          if (!label) throw new Error(`${file.name}: choose the class of the images`);
          body.append('label', label);
          body.append('split', split);
        }
        body.append(zip ? 'file' : 'image', file, file.name);
        const result = await upload<{ added: { train: number; test: number } }>(zip ? `${base}/zip?split=${split}` : `${base}/images`, body, (f) => setProgress((done + f * file.size) / total));
        added += result.added.train + result.added.test;
        done += file.size;
      }
      setProgress(1);
      setMessage({ text: `Added ${added} image${added === 1 ? '' : 's'}.`, error: false });
      formElement.reset();
      onUploaded();
    } catch (e) {
      setMessage({ text: (e as Error).message, error: true });
    } finally {
      setProgress(null);
    }
  };

  return (
    <form class="upload" onSubmit={submit}>
      <label>Images or a zip (one folder per class)<input type="file" name="files" multiple accept=".zip,application/zip,image/*" /></label>
      <label>Class of the images
        <select name="label">
          <option value="">(a zip names them)</option>
          {dataset.classes.map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
      </label>
      <label>Split
        <select name="split"><option value="train">train</option><option value="test">test</option></select>
      </label>
      <button type="submit" disabled={progress !== null}>Upload</button>
      {progress !== null ? <progress max={1} value={progress} aria-label="upload progress">{Math.round(progress * 100)}%</progress> : null}
      {message ? <p role={message.error ? 'alert' : 'status'} class={message.error ? 'error' : 'ok'}>{message.text}</p> : null}
    </form>
  );
}

function ClassGrid({ dataset }: { dataset: Dataset }) {
  const [samples, setSamples] = useState<Record<number, DatasetImage[]>>({});
  useEffect(() => {
    let live = true;
    const base = `/api/v1/datasets/${encodeURIComponent(dataset.name)}/images`;
    void Promise.all(dataset.classes.map((_, label) => getJson<{ items: DatasetImage[] }>(`${base}?label=${label}&limit=${SAMPLES_PER_CLASS}`).then((r) => [label, r.items] as const)))
      .then((entries) => live && setSamples(Object.fromEntries(entries)));
    return () => void (live = false);
  }, [dataset.name, dataset.images]);
  return (
    <div class="class-grid">
      {dataset.classes.map((name, label) => (
        <div class="class-row" key={name}>
          <h3>{name} <span class="muted">{dataset.counts.train[label] ?? 0} train · {dataset.counts.test[label] ?? 0} test</span></h3>
          <ul class="thumbs">
            {(samples[label] ?? []).map((image) => (
              <li key={image.id}><img src={image.thumbnail} width={56} height={56} alt={`${name}, ${image.split} image ${image.id}`} /></li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}
