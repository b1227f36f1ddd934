/**
 * One number of the step written out: which numbers it is computed from, with their values
 * (e.g. z1[0,2] = x[0,0]·W1[0,2] + … + b1[2] = 0.1804·(−0.3121) + … = 0.4410). The sums are the
 * formulas of explainOneStep; the value shown last is the engine's own.
 */
import type { Explanation } from '@descent/engine/core';

type Values = Record<string, { shape: number[]; values: number[] }>;

const fmt = (v: number) => {
  if (v === 0) return '0';
  const text = Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4 ? v.toExponential(3) : v.toFixed(4);
  return v < 0 ? `(${text.replace('-', '−')})` : text;
};
const plain = (v: number) => fmt(v).replace(/^\((.*)\)$/, '$1');
/** At most this many terms of a sum are written out. */
const MAX_TERMS = 6;

function sum(terms: Array<{ text: string; value: number }>): { text: string; skipped: number } {
  const shown = terms.filter((t) => t.value !== 0);
  const skipped = terms.length - shown.length;
  const list = shown.length > MAX_TERMS ? [...shown.slice(0, MAX_TERMS - 1).map((t) => t.text), '…', shown[shown.length - 1].text] : shown.map((t) => t.text);
  return { text: list.length ? list.join(' + ') : '0', skipped };
}

/** Index of an element as [i, j] (or [i] / []) from its flat position in a row-major shape. */
export function indexOf(shape: number[], flat: number): number[] {
  const index: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return index;
}

export function name(key: string, index: number[]): string {
  return index.length ? `${key}[${index.join(',')}]` : key;
}

/** The written-out computation of element `flat` of step `key`: lines of text. */
export function expand(explanation: Explanation, key: string, flat: number): string[] {
  const v: Values = Object.fromEntries(explanation.steps.map((s) => [s.key, s]));
  const at = (k: string, ...index: number[]) => {
    const { shape, values } = v[k];
    let offset = 0;
    for (let d = 0; d < shape.length; d++) offset = offset * shape[d] + index[d];
    return values[offset];
  };
  const own = v[key].values[flat];
  const index = indexOf(v[key].shape, flat);
  const [i, j] = index;
  const head = `${name(key, index)} = `;
  const { settings } = explanation;
  const n = settings.labels.length;
  const hidden = v.W1.shape[1];
  const classes = v.W2.shape[1];
  const inputs = v.W1.shape[0];
  const product = (formula: string, terms: Array<{ text: string; value: number }>, bias?: { text: string; value: number }) => {
    const { text, skipped } = sum(terms);
    return [
      `${head}${formula}`,
      `  = ${text}${bias ? ` + ${bias.text}` : ''}${skipped ? `   (${skipped} term${skipped === 1 ? ' is' : 's are'} 0)` : ''}`,
      `  = ${plain(own)}`,
    ];
  };
  const adam = /^(m|v|step)_(.+)$|^(.+)_new$/.exec(key);
  if (adam) {
    const parameter = adam[2] ?? adam[3];
    const g = v[`d${parameter}`].values[flat];
    const { beta1, beta2, epsilon } = settings;
    const m = v[`m_${parameter}`].values[flat];
    const vv = v[`v_${parameter}`].values[flat];
    const lrT = v.lr_t.values[0];
    const idx = index.join(',');
    if (adam[1] === 'm') return [`${head}β1·0 + (1 − β1)·d${parameter}[${idx}]`, `  = ${1 - beta1 === 0.1 ? '0.1' : plain(1 - beta1)} · ${fmt(g)}`, `  = ${plain(own)}`];
    if (adam[1] === 'v') return [`${head}β2·0 + (1 − β2)·d${parameter}[${idx}]²`, `  = ${plain(1 - beta2)} · ${fmt(g)}²`, `  = ${plain(own)}`];
    if (adam[1] === 'step') return [`${head}lr_t · m_${parameter}[${idx}] / (√v_${parameter}[${idx}] + ε)`, `  = ${plain(lrT)} · ${fmt(m)} / (√${plain(vv)} + ${epsilon})`, `  = ${plain(own)}`];
    return [`${head}${parameter}[${idx}] − Δ${parameter}[${idx}]`, `  = ${plain(v[parameter].values[flat])} − ${fmt(v[`step_${parameter}`].values[flat])}`, `  = ${plain(own)}`];
  }
  switch (key) {
    case 'pixels':
    case 'y':
    case 'onehot':
      return [`${head}${plain(own)}   (${key === 'pixels' ? 'a pixel of the input image: change it above' : key === 'y' ? `the class of image ${i}` : `1 where c is image ${i}'s class y[${i}] = ${at('y', i)}`})`];
    case 'x': {
      const rowsCols = v.pixels.shape[1] * v.pixels.shape[2];
      const [r, c] = [Math.floor(j / v.pixels.shape[2]), j % v.pixels.shape[2]];
      return [`${head}pixels[${i},${r},${c}] / 255`, `  = ${at('pixels', i, r, c)} / 255`, `  = ${plain(own)}   (column ${j} of ${rowsCols}: row ${r}, column ${c} of the image)`];
    }
    case 'W1':
    case 'W2':
    case 'b1':
    case 'b2':
      return [`${head}${plain(own)}   (a starting ${key.startsWith('b') ? 'bias' : 'weight'}: change it above)`];
    case 'z1':
      return product(`Σₖ x[${i},k]·W1[k,${j}] + b1[${j}]`, Array.from({ length: inputs }, (_, k) => ({ text: `${plain(at('x', i, k))}·${fmt(at('W1', k, j))}`, value: at('x', i, k) * at('W1', k, j) })), { text: fmt(at('b1', j)), value: at('b1', j) });
    case 'z2':
      return product(`Σₖ h1[${i},k]·W2[k,${j}] + b2[${j}]`, Array.from({ length: hidden }, (_, k) => ({ text: `${plain(at('h1', i, k))}·${fmt(at('W2', k, j))}`, value: at('h1', i, k) * at('W2', k, j) })), { text: fmt(at('b2', j)), value: at('b2', j) });
    case 'h1':
      return [`${head}max(z1[${i},${j}], 0)`, `  = max(${plain(at('z1', i, j))}, 0)`, `  = ${plain(own)}`];
    case 'p': {
      const row = Array.from({ length: classes }, (_, c) => at('z2', i, c));
      return [`${head}exp(z2[${i},${j}]) / Σ_c exp(z2[${i},c])`, `  = exp(${plain(row[j])}) / (${row.map((z) => `exp(${plain(z)})`).join(' + ')})`, `  = ${plain(own)}`];
    }
    case 'loss':
    case 'loss_after': {
      const terms = settings.labels.map((label, k) => `log p[${k},${label}]`);
      const values = settings.labels.map((label, k) => `log ${plain(at('p', k, label))}`);
      return key === 'loss'
        ? [`${head}−(${terms.join(' + ')}) / ${n}`, `  = −(${values.join(' + ')}) / ${n}`, `  = ${plain(own)}`]
        : [`${head}the same loss with W1_new, b1_new, W2_new, b2_new`, `  = ${plain(own)}   (it was ${plain(v.loss.values[0])})`];
    }
    case 'dz2':
      return [`${head}(p[${i},${j}] − onehot[${i},${j}]) / ${n}`, `  = (${plain(at('p', i, j))} − ${at('onehot', i, j)}) / ${n}`, `  = ${plain(own)}`];
    case 'dW2':
      return product(`Σᵢ h1[i,${i}]·dz2[i,${j}]`, Array.from({ length: n }, (_, k) => ({ text: `${plain(at('h1', k, i))}·${fmt(at('dz2', k, j))}`, value: at('h1', k, i) * at('dz2', k, j) })));
    case 'db2':
    case 'db1': {
      const from = key === 'db2' ? 'dz2' : 'dz1';
      return product(`Σᵢ ${from}[i,${i}]`, Array.from({ length: n }, (_, k) => ({ text: fmt(at(from, k, i)), value: at(from, k, i) })));
    }
    case 'dh1':
      return product(`Σ_c dz2[${i},c]·W2[${j},c]`, Array.from({ length: classes }, (_, c) => ({ text: `${fmt(at('dz2', i, c))}·${fmt(at('W2', j, c))}`, value: at('dz2', i, c) * at('W2', j, c) })));
    case 'dz1':
      return [`${head}dh1[${i},${j}] · [z1[${i},${j}] > 0]`, `  = ${fmt(at('dh1', i, j))} · ${at('z1', i, j) > 0 ? 1 : 0}   (z1[${i},${j}] = ${plain(at('z1', i, j))})`, `  = ${plain(own)}`];
    case 'dW1':
      return product(`Σᵢ x[i,${i}]·dz1[i,${j}]`, Array.from({ length: n }, (_, k) => ({ text: `${plain(at('x', k, i))}·${fmt(at('dz1', k, j))}`, value: at('x', k, i) * at('dz1', k, j) })));
    default:
      return [`${head}${plain(own)}`];
  }
}
