/**
 * Predict: drop or pick an image, or draw one. The image is prepared in the page (src/image.ts)
 * and classified at once by the engine running here, with the model's files loaded from the
 * server; the switch sends the same prepared image to the server's predict API instead.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { getJson, request, type ModelDetail, type ModelSummary, type ServerPrediction } from '../api.js';
import { ProbabilityBars } from '../components/Bars.js';
import { DrawPad } from '../components/DrawPad.js';
import { PixelImage } from '../components/Pixels.js';
import { engineInfo, loadModel, predictPixels, type LoadedModel } from '../engine.js';
import { pixelsToPng, prepareCanvas, prepareFile } from '../image.js';

type Where = 'browser' | 'server';

interface Result {
  where: Where;
  probabilities: ArrayLike<number>;
  /** performance.now() when the image was ready (the stroke ended, the file was read). */
  started: number;
}

export function Predict({ query }: { query: URLSearchParams }) {
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [modelId, setModelId] = useState<number | null>(Number(query.get('model')) || null);
  const [detail, setDetail] = useState<ModelDetail | null>(null);
  const [loaded, setLoaded] = useState<LoadedModel | null>(null);
  const [where, setWhere] = useState<Where>('browser');
  const [pixels, setPixels] = useState<Uint8Array | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const timing = useRef<HTMLSpanElement>(null);
  const pending = useRef(0);

  useEffect(() => {
    void getJson<{ models: ModelSummary[] }>('/api/v1/models').then((r) => {
      setModels(r.models);
      if (modelId === null && r.models.length) setModelId(r.models[0].id);
    }, (e: Error) => setError(e.message));
  }, []);
  useEffect(() => {
    if (modelId === null) return;
    setLoaded(null);
    setResult(null);
    setError(null);
    void Promise.all([getJson<ModelDetail>(`/api/v1/models/${modelId}`), loadModel(modelId)]).then(([d, m]) => {
      setDetail(d);
      setLoaded(m);
    }, (e: Error) => setError(e.message));
  }, [modelId]);

  // An image may finish decoding after the model has loaded or the switch moved: classify reads
  // the current ones, not those of the render that started the decoding.
  const current = useRef({ loaded, where, modelId });
  current.current = { loaded, where, modelId };
  const classify = async (prepared: Uint8Array, started: number, final: boolean) => {
    setPixels(prepared);
    setError(null);
    const { loaded, where, modelId } = current.current;
    if (where === 'browser') {
      if (!loaded) return; // the effect below classifies it once the model is loaded
      setResult({ where, probabilities: predictPixels(loaded, prepared), started });
      return;
    }
    if (!final || modelId === null) return;
    const ticket = ++pending.current;
    try {
      const response = await request(`/api/v1/models/${modelId}/predict?top=3`, { method: 'POST', body: await pixelsToPng(prepared), headers: { 'content-type': 'image/png' } });
      const answer = (await response.json()) as ServerPrediction;
      if (ticket === pending.current) setResult({ where, probabilities: answer.probabilities, started });
    } catch (e) {
      setError((e as Error).message);
    }
  };
  // Switching sends the image on screen to the other side.
  useEffect(() => {
    if (pixels) void classify(pixels, performance.now(), true);
  }, [where, loaded]);

  const fromFile = async (file: File | undefined) => {
    if (!file) return;
    try {
      const started = performance.now();
      const prepared = await prepareFile(file);
      await classify(prepared.pixels, started, true);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const shown = () => {
    if (result && timing.current) {
      const ms = performance.now() - result.started;
      timing.current.textContent = `${result.where === 'browser' ? 'in this browser' : 'on the server'}, ${ms.toFixed(1)} ms from the image to these bars`;
      timing.current.dataset.ms = String(ms);
    }
  };

  const info = engineInfo();
  const classNames = detail?.class_names ?? [];
  return (
    <div class="columns">
      <section class="card" aria-labelledby="input-title">
        <h2 id="input-title">Image</h2>
        <label>Model
          <select value={modelId ?? ''} onChange={(e) => setModelId(Number((e.target as HTMLSelectElement).value))} data-testid="model-select">
            {models?.map((m) => <option key={m.id} value={m.id}>{m.name}{m.test_accuracy != null ? ` (${(m.test_accuracy * 100).toFixed(1)}%)` : ''}</option>)}
          </select>
        </label>
        {models?.length === 0 ? <p>No models yet: <a href="#/train">train one</a> first.</p> : null}
        <fieldset class="switch">
          <legend>Where the model runs</legend>
          <label><input type="radio" name="where" value="browser" checked={where === 'browser'} onChange={() => setWhere('browser')} /> In this browser (descent's engine, WebAssembly)</label>
          <label><input type="radio" name="where" value="server" checked={where === 'server'} onChange={() => setWhere('server')} /> On the server (the predict API)</label>
        </fieldset>
        <div
          class={`drop ${dragging ? 'over' : ''}`}
          onDragOver={(e) => (e.preventDefault(), setDragging(true))}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            void fromFile(e.dataTransfer?.files[0]);
          }}
        >
          <label>Drop an image here, or pick one
            <input type="file" accept="image/*" data-testid="image-file" onChange={(e) => void fromFile((e.target as HTMLInputElement).files?.[0])} />
          </label>
        </div>
        <p class="muted">… or draw one:</p>
        <DrawPad onDraw={(canvas, final) => {
          const started = performance.now();
          void classify(prepareCanvas(canvas).pixels, started, final);
        }} onClear={() => (setPixels(null), setResult(null))} />
      </section>
      <section class="card" aria-labelledby="answer-title">
        <h2 id="answer-title">What the model sees, and what it says</h2>
        {error ? <p role="alert" class="error">{error}</p> : null}
        {!loaded && modelId !== null && !error ? <p class="muted">Loading the model…</p> : null}
        {pixels ? <PixelImage pixels={pixels} label="the image as the model sees it: 28 by 28 gray pixels" /> : <p class="muted">No image yet.</p>}
        {result && classNames.length ? <ProbabilityBars name={result.where} classNames={classNames} probabilities={result.probabilities} onShown={shown} /> : null}
        <p class="muted small"><span ref={timing} data-testid="timing" /></p>
        <p class="muted small">Engine here: {info.backend === 'wasm' ? 'WebAssembly SIMD kernels' : 'reference TypeScript kernels'}{info.fallback ? ` (${info.fallback})` : ''}.</p>
      </section>
    </div>
  );
}
