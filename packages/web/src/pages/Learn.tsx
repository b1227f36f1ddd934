/**
 * Learn: `descent explain` made interactive. One training step of a tiny network (two 4×4
 * images → 4 hidden ReLU units → 3 classes, softmax cross-entropy, one Adam update), every
 * number computed by the engine in this page with the reference kernels that `descent explain`
 * uses. Step through it; select a number to see it written out; change a pixel or a starting
 * weight and every number after it is computed again (the ones that changed are marked).
 */
import { useMemo, useRef, useState } from 'preact/hooks';
import {
  EXPLAIN_EXAMPLE, explainOneStep, formatNumbers, kernels, setBackend,
  type ExplainPhase, type ExplainStep, type ExplainWeight, type Explanation,
} from '@descent/engine/core';
import { expand, indexOf, name } from '../learn-formulas.js';
import { learnLink, slug } from '../learn-links.js';

const PHASES: Record<ExplainPhase, string> = {
  data: 'The data',
  forward: 'Forward pass: from pixels to probabilities',
  loss: 'Loss: how wrong the probabilities are',
  backward: 'Backward pass: the gradient of the loss with respect to everything, last layer first',
  update: 'Update: Adam moves every weight a small step against its gradient',
};
const INTEGERS = new Set(['pixels', 'y', 'onehot']);
const WEIGHTS: ExplainWeight[] = ['W1', 'b1', 'W2', 'b2'];

/** The step on the reference TypeScript kernels (as `descent explain` runs it), whatever the page uses elsewhere. */
function explain(pixels: number[], weights: Partial<Record<ExplainWeight, number[]>>): Explanation {
  const previous = kernels();
  setBackend('ts');
  try {
    return explainOneStep({ pixels, weights });
  } finally {
    setBackend(previous);
  }
}

export function Learn() {
  const seeded = useMemo(() => explain([...EXPLAIN_EXAMPLE.pixels], {}), []);
  const initialWeights = () => Object.fromEntries(WEIGHTS.map((w) => [w, seeded.steps.find((s) => s.key === w)!.values])) as Record<ExplainWeight, number[]>;
  const [pixels, setPixels] = useState<number[]>([...EXPLAIN_EXAMPLE.pixels]);
  const [weights, setWeights] = useState<Record<ExplainWeight, number[]>>(initialWeights);
  const [stepIndex, setStepIndex] = useState(0);
  const [selected, setSelected] = useState<{ key: string; flat: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const previous = useRef<Explanation>(seeded);

  const explanation = useMemo(() => {
    try {
      const next = explain(pixels, weights);
      setError(null);
      return next;
    } catch (e) {
      setError((e as Error).message);
      return previous.current;
    }
  }, [pixels, weights]);
  // Which numbers differ from the step before the last edit.
  const before = previous.current;
  const changed = (key: string, flat: number) => before !== explanation && before.steps.find((s) => s.key === key)?.values[flat] !== explanation.steps.find((s) => s.key === key)?.values[flat];
  const edit = (apply: () => void) => {
    previous.current = explanation;
    apply();
  };

  const steps = explanation.steps;
  const step = steps[stepIndex];
  const pick = (key: string, flat: number) => setSelected({ key, flat });

  return (
    <div class="learn">
      <p>
        One training step of a tiny network, every number real: two 4×4 images (a T-shirt and a trouser from Fashion-MNIST, shrunk) → 4 hidden ReLU units → 3 classes,
        softmax cross-entropy, one Adam update. The numbers are computed in this page by descent's engine, with the reference TypeScript kernels in float32, the same step{' '}
        <code>descent explain</code> prints. Select a number to see how it is computed; change a pixel or a starting weight and watch every number after it change.
      </p>
      {error ? <p role="alert" class="error">{error}</p> : null}
      <div class="columns">
        <section class="card" aria-labelledby="learn-inputs">
          <h2 id="learn-inputs">The images (change a pixel: 0 black … 255 white)</h2>
          <div class="images">
            {EXPLAIN_EXAMPLE.labels.map((label, image) => (
              <fieldset key={image} class="pixel-editor">
                <legend>Image {image}: {EXPLAIN_EXAMPLE.classNames[label]}</legend>
                <div class="pixel-grid">
                  {Array.from({ length: 16 }, (_, k) => {
                    const at = image * 16 + k;
                    const value = pixels[at];
                    return (
                      <input
                        key={k}
                        type="number" min={0} max={255} step={1}
                        value={value}
                        aria-label={`image ${image}, row ${Math.floor(k / 4)}, column ${k % 4}`}
                        data-pixel={at}
                        style={{ background: `rgb(${value},${value},${value})`, color: value > 110 ? '#000' : '#fff' }}
                        onChange={(e) => {
                          const v = Math.max(0, Math.min(255, Math.round(Number((e.target as HTMLInputElement).value) || 0)));
                          edit(() => setPixels((p) => p.map((old, i) => (i === at ? v : old))));
                        }}
                      />
                    );
                  })}
                </div>
              </fieldset>
            ))}
          </div>
          <details>
            <summary>Change the starting weights</summary>
            {WEIGHTS.map((w) => (
              <WeightEditor key={w} name={w} step={seeded.steps.find((s) => s.key === w)!} values={weights[w]} onChange={(values) => edit(() => setWeights((all) => ({ ...all, [w]: values })))} />
            ))}
          </details>
          <button type="button" class="secondary" onClick={() => edit(() => (setPixels([...EXPLAIN_EXAMPLE.pixels]), setWeights(initialWeights())))}>Back to the example</button>
        </section>
        <section class="card" aria-labelledby="learn-step" data-testid="learn-current">
          <div class="card-head">
            <h2 id="learn-step">Step {stepIndex + 1} of {steps.length}: <code>{step.key}</code></h2>
            <button type="button" class="secondary" disabled={stepIndex === 0} onClick={() => setStepIndex(stepIndex - 1)}>Previous</button>
            <button type="button" disabled={stepIndex === steps.length - 1} onClick={() => setStepIndex(stepIndex + 1)}>Next</button>
          </div>
          <p class="muted">{PHASES[step.phase]}</p>
          <StepView step={step} changed={changed} onPick={pick} selected={selected} />
          {selected ? (
            <div class="expansion" aria-live="polite">
              <h3>How {name(selected.key, indexOf(steps.find((s) => s.key === selected.key)!.shape, selected.flat))} is computed</h3>
              <pre class="mono" data-testid="expansion">{expand(explanation, selected.key, selected.flat).join('\n')}</pre>
            </div>
          ) : <p class="muted small">Select a number to see it written out.</p>}
        </section>
      </div>
      <section aria-labelledby="learn-all">
        <h2 id="learn-all">Every number of the step</h2>
        {(Object.keys(PHASES) as ExplainPhase[]).map((phase) => (
          <div key={phase} class="phase">
            <h3>{PHASES[phase]}</h3>
            {steps.filter((s) => s.phase === phase).map((s) => (
              <div key={s.key} class={`card step ${s === step ? 'current' : ''}`}>
                <StepView step={s} changed={changed} onPick={(key, flat) => (setStepIndex(steps.indexOf(s)), pick(key, flat))} selected={selected} />
              </div>
            ))}
          </div>
        ))}
      </section>
    </div>
  );
}

function StepView({ step, changed, onPick, selected }: {
  step: ExplainStep;
  changed: (key: string, flat: number) => boolean;
  onPick: (key: string, flat: number) => void;
  selected: { key: string; flat: number } | null;
}) {
  const link = learnLink(step.key);
  const text = formatNumbers(step.values, INTEGERS.has(step.key));
  const shape = step.shape;
  // Matrices to draw: [] → 1×1, [n] → 1×n, [r, c] → r×c, [n, r, c] → n of r×c.
  const [count, rows, cols] = shape.length === 3 ? shape : [1, shape.length === 2 ? shape[0] : 1, shape.length === 0 ? 1 : shape[shape.length - 1]];
  return (
    <div class="step-view" data-step={step.key}>
      <p class="formula"><code>{step.formula}</code> <span class="muted">shape [{shape.join(', ')}]</span></p>
      <p class="note">{step.note}</p>
      <div class="matrices">
        {Array.from({ length: count }, (_, m) => (
          <table class="matrix" key={m} aria-label={`${step.key}${count > 1 ? ` image ${m}` : ''}`}>
            <tbody>
              {Array.from({ length: rows }, (_, r) => (
                <tr key={r}>
                  {Array.from({ length: cols }, (_, c) => {
                    const flat = (m * rows + r) * cols + c;
                    const isSelected = selected?.key === step.key && selected.flat === flat;
                    return (
                      <td key={c} class={`${changed(step.key, flat) ? 'changed' : ''} ${isSelected ? 'selected' : ''}`}>
                        <button type="button" data-key={step.key} data-index={flat} data-value={String(step.values[flat])} aria-pressed={isSelected} onClick={() => onPick(step.key, flat)}>{text[flat]}</button>
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        ))}
      </div>
      <p class="links small">
        Derivation: <a href={`#/source?path=${link.doc.file}&section=${slug(link.doc.heading)}`}>{link.doc.file.replace('docs/learn/', '')} › {link.doc.heading}</a>
        {' · '}Code: <a href={`#/source?path=${link.source.file}&symbol=${link.source.symbol}`}>{link.source.file.replace('packages/engine/src/', '')} › {link.source.symbol}</a>
      </p>
    </div>
  );
}

function WeightEditor({ name: weight, step, values, onChange }: { name: ExplainWeight; step: ExplainStep; values: number[]; onChange: (values: number[]) => void }) {
  const cols = step.shape[step.shape.length - 1];
  const rows = step.shape.length === 2 ? step.shape[0] : 1;
  return (
    <fieldset class="weight-editor">
      <legend><code>{weight}</code> [{step.shape.join(', ')}]</legend>
      <table class="matrix">
        <tbody>
          {Array.from({ length: rows }, (_, r) => (
            <tr key={r}>
              {Array.from({ length: cols }, (_, c) => {
                const at = r * cols + c;
                return (
                  <td key={c}>
                    <input
                      type="number" step="0.01" value={Number(values[at].toFixed(4))}
                      aria-label={`${weight}[${step.shape.length === 2 ? `${r},${c}` : c}]`}
                      data-weight={`${weight}:${at}`}
                      onChange={(e) => {
                        const v = Number((e.target as HTMLInputElement).value);
                        if (Number.isFinite(v)) onChange(values.map((old, i) => (i === at ? v : old)));
                      }}
                    />
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </fieldset>
  );
}
