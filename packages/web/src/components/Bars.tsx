/** One bar per class with its probability; the most likely class first in the label above. */
import { useLayoutEffect } from 'preact/hooks';

export function ProbabilityBars({ classNames, probabilities, onShown, name }: {
  classNames: readonly string[];
  probabilities: ArrayLike<number>;
  /** Called once the bars are in the document (before the browser paints them). */
  onShown?: () => void;
  name: string;
}) {
  useLayoutEffect(() => onShown?.(), [probabilities]);
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  return (
    <div class="prediction" data-testid={`prediction-${name}`} data-label={best}>
      <p class="verdict" aria-live="polite">
        <strong data-testid={`label-${name}`}>{classNames[best] ?? `class ${best}`}</strong>
        <span class="muted"> {(probabilities[best] * 100).toFixed(1)}%</span>
      </p>
      <ul class="bars" aria-label="probability of each class">
        {Array.from(probabilities, (p, i) => (
          <li key={i} class={i === best ? 'best' : ''}>
            <span class="bar-label">{classNames[i] ?? `class ${i}`}</span>
            <span class="bar-track"><span class="bar-fill" style={{ width: `${(p * 100).toFixed(2)}%` }} /></span>
            <span class="bar-value" data-probability={p}>{(p * 100).toFixed(1)}%</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
