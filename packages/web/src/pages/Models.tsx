/** Models: the list with test metrics; one model's architecture, curves, confusion heatmap, downloads and delete. */
import { useEffect, useState } from 'preact/hooks';
import { getJson, sendJson, type ModelDetail, type ModelSummary } from '../api.js';
import { LineChart } from '../components/Chart.js';
import { ConfusionHeatmap } from '../components/Heatmap.js';

const percent = (v: number | null) => (v == null ? '—' : `${(v * 100).toFixed(2)}%`);

export function Models({ query }: { query: URLSearchParams }) {
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const selected = Number(query.get('id')) || null;
  const refresh = () => getJson<{ models: ModelSummary[] }>('/api/v1/models').then((r) => setModels(r.models), (e: Error) => setError(e.message));
  useEffect(() => void refresh(), []);
  return (
    <div class="columns wide-right">
      <section class="card">
        <h2>All models</h2>
        {error ? <p role="alert" class="error">{error}</p> : null}
        {models?.length === 0 ? <p>No models yet: <a href="#/train">train one</a>.</p> : null}
        <table class="list">
          <thead><tr><th scope="col">Model</th><th scope="col">Dataset</th><th scope="col">Test accuracy</th><th scope="col">Predictions</th></tr></thead>
          <tbody>
            {models?.map((m) => (
              <tr key={m.id} aria-current={m.id === selected ? 'true' : undefined}>
                <td><a href={`#/models?id=${m.id}`}>{m.name}</a></td>
                <td>{m.dataset ?? '—'}</td>
                <td>{percent(m.test_accuracy)}</td>
                <td>{m.predictions}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {selected ? <ModelView key={selected} id={selected} onDeleted={() => { location.hash = '#/models'; void refresh(); }} /> : null}
    </div>
  );
}

function ModelView({ id, onDeleted }: { id: number; onDeleted: () => void }) {
  const [model, setModel] = useState<ModelDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => void getJson<ModelDetail>(`/api/v1/models/${id}`).then(setModel, (e: Error) => setError(e.message)), [id]);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!model) return <p class="muted">Loading…</p>;
  const remove = async () => {
    if (!confirm(`Delete model ${model.name}?`)) return;
    try {
      await sendJson('DELETE', `/api/v1/models/${id}`);
      onDeleted();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const history = model.history ?? {};
  const epochs = (history.loss ?? []).map((_, i) => i + 1);
  return (
    <section class="card" aria-labelledby="model-title" data-testid="model-view">
      <div class="card-head">
        <h2 id="model-title">{model.name}</h2>
        <a class="button secondary" href={`#/predict?model=${id}`}>Predict</a>
        <a class="button secondary" href={model.files.zip} download>Download (.zip)</a>
        <button type="button" class="danger" onClick={remove}>Delete</button>
      </div>
      <dl class="metrics">
        <div><dt>Test accuracy</dt><dd data-testid="test-accuracy">{percent(model.test_accuracy)}</dd></div>
        <div><dt>Test loss</dt><dd>{model.test_loss?.toFixed(4) ?? '—'}</dd></div>
        <div><dt>Dataset</dt><dd>{model.dataset ?? '—'}</dd></div>
        <div><dt>Created</dt><dd>{model.created_at}{model.created_by ? ` by ${model.created_by}` : ''}</dd></div>
      </dl>
      <p class="muted">Files: <a href={model.files['model.json']} download>model.json</a> · <a href={model.files['weights.bin']} download>weights.bin</a> (the TensorFlow.js Layers format)</p>
      <details>
        <summary>Architecture and hyperparameters</summary>
        <pre class="mono small">{JSON.stringify({ architecture: model.architecture, hyperparameters: model.hyperparameters }, null, 2)}</pre>
      </details>
      {epochs.length ? (
        <div class="charts">
          <LineChart title="Loss per epoch" xLabel="epoch" x={epochs} series={[{ label: 'loss', values: history.loss ?? [], color: '#2563eb' }, { label: 'val_loss', values: history.val_loss ?? [], color: '#dc2626', dash: true }]} />
          <LineChart title="Accuracy per epoch" xLabel="epoch" x={epochs} series={[{ label: 'accuracy', values: history.accuracy ?? [], color: '#2563eb' }, { label: 'val_accuracy', values: history.val_accuracy ?? [], color: '#dc2626', dash: true }]} />
        </div>
      ) : null}
      {model.confusion ? (
        <>
          <h3>Confusion matrix (test split)</h3>
          <ConfusionHeatmap matrix={model.confusion} classNames={model.class_names} />
        </>
      ) : <p class="muted">No test split: no confusion matrix.</p>}
    </section>
  );
}
