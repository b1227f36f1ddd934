/** Stored predictions (every call of the predict API is recorded): filter by model, class and wrong ones; each with the image the model saw. */
import { useEffect, useState } from 'preact/hooks';
import { getJson, type ModelDetail, type ModelSummary, type StoredPrediction } from '../api.js';

const PAGE = 48;

export function Predictions({ query }: { query: URLSearchParams }) {
  const [models, setModels] = useState<ModelSummary[]>([]);
  const [classNames, setClassNames] = useState<string[]>([]);
  const [page, setPage] = useState<{ total: number; items: StoredPrediction[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const model = query.get('model') ?? '';
  const predicted = query.get('class') ?? '';
  const wrong = query.get('wrong') === 'true';
  const offset = Number(query.get('offset')) || 0;

  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams(query);
    for (const [key, value] of Object.entries(changes)) (value ? next.set(key, value) : next.delete(key));
    if (!('offset' in changes)) next.delete('offset');
    location.hash = `#/predictions?${next}`;
  };

  useEffect(() => void getJson<{ models: ModelSummary[] }>('/api/v1/models').then((r) => setModels(r.models), (e: Error) => setError(e.message)), []);
  useEffect(() => {
    if (!model) return setClassNames([]);
    void getJson<ModelDetail>(`/api/v1/models/${model}`).then((m) => setClassNames(m.class_names), () => setClassNames([]));
  }, [model]);
  useEffect(() => {
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if (model) params.set('model', model);
    if (predicted) params.set('class', predicted);
    if (wrong) params.set('wrong', 'true');
    void getJson<{ total: number; items: StoredPrediction[] }>(`/api/v1/predictions?${params}`).then(setPage, (e: Error) => setError(e.message));
  }, [model, predicted, wrong, offset]);

  return (
    <>
      <form class="card filters" onSubmit={(e) => e.preventDefault()} aria-label="filters">
        <label>Model
          <select value={model} onChange={(e) => go({ model: (e.target as HTMLSelectElement).value, class: '' })}>
            <option value="">all models</option>
            {models.map((m) => <option key={m.id} value={m.id}>{m.name}</option>)}
          </select>
        </label>
        <label>Predicted class
          <select value={predicted} onChange={(e) => go({ class: (e.target as HTMLSelectElement).value })} disabled={!classNames.length}>
            <option value="">any class</option>
            {classNames.map((name, i) => <option key={i} value={i}>{name}</option>)}
          </select>
        </label>
        <label class="inline"><input type="checkbox" checked={wrong} onChange={(e) => go({ wrong: (e.target as HTMLInputElement).checked ? 'true' : '' })} /> Only wrong ones (where the true class is known)</label>
      </form>
      {error ? <p role="alert" class="error">{error}</p> : null}
      {page ? <p class="muted" data-testid="predictions-total">{page.total} prediction{page.total === 1 ? '' : 's'}</p> : <p class="muted">Loading…</p>}
      <ul class="prediction-grid">
        {page?.items.map((p) => (
          <li key={p.id} class={p.true_label != null && p.true_label !== p.label ? 'wrong' : ''} data-testid="stored-prediction">
            <img src={p.image} width={84} height={84} alt={`the image of prediction ${p.id}`} loading="lazy" />
            <div>
              <strong>{p.class ?? `class ${p.label}`}</strong> <span class="muted">{(p.probability * 100).toFixed(1)}%</span>
              {p.true_label != null ? <div class={p.true_label === p.label ? 'ok' : 'error'}>true: {p.true_class ?? p.true_label}</div> : null}
              <div class="muted small">#{p.id} · {p.model ?? `model ${p.model_id}`} · {p.origin} · {p.created_at}{p.created_by ? ` · ${p.created_by}` : ''}</div>
            </div>
          </li>
        ))}
      </ul>
      {page && page.total > PAGE ? (
        <nav class="pager" aria-label="pages">
          <button type="button" class="secondary" disabled={offset === 0} onClick={() => go({ offset: String(Math.max(0, offset - PAGE)) })}>Previous</button>
          <span class="muted">{offset + 1}–{Math.min(page.total, offset + PAGE)} of {page.total}</span>
          <button type="button" class="secondary" disabled={offset + PAGE >= page.total} onClick={() => go({ offset: String(offset + PAGE) })}>Next</button>
        </nav>
      ) : null}
    </>
  );
}
