/**
 * The report page: one HTML file that needs nothing else. Charts are embedded as SVG data URIs
 * in <img> tags (each SVG keeps its own ids, so two charts cannot clash), the styles are inline,
 * and a Content-Security-Policy forbids the page from loading anything at all. The numbers behind
 * the charts sit in a JSON block (#report-data) for scripts and tests to read back.
 */

export interface PageChart {
  name: string;
  title: string;
  /** What to look for, for someone seeing this kind of chart for the first time. */
  explanation: string;
  svg: string;
  width: number;
  height: number;
  /** File name of the PNG written next to the page. */
  file: string;
}

export interface PageInput {
  title: string;
  /** Short facts shown under the title, e.g. ["Test accuracy 84.2%", ...]. */
  facts: string[];
  charts: PageChart[];
  /** Text of notes shown after the facts (e.g. why a chart is missing). */
  notes?: string[];
  /** Keras-style model summary. */
  modelSummary?: string;
  data: unknown;
}

const STYLE = `
  :root { color-scheme: light; }
  body { margin: 0; background: #f4f5f7; color: #1d1d1f; font: 15px/1.5 "DejaVu Sans", Verdana, "Liberation Sans", Arial, sans-serif; }
  main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
  h1 { font-size: 26px; margin: 8px 0 4px; }
  .facts { display: flex; flex-wrap: wrap; gap: 8px; padding: 0; margin: 12px 0 8px; list-style: none; }
  .facts li { background: white; border: 1px solid #dcdfe4; border-radius: 6px; padding: 4px 10px; }
  .note { color: #6b4e00; background: #fff6dc; border: 1px solid #f1d48a; border-radius: 6px; padding: 6px 10px; }
  figure { background: white; border: 1px solid #dcdfe4; border-radius: 8px; margin: 20px 0; padding: 16px; }
  figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
  figcaption { margin-top: 10px; color: #444; font-size: 14px; }
  figcaption a { color: #2f6db5; }
  .row { display: flex; flex-wrap: wrap; gap: 0 20px; }
  .row figure { flex: 1 1 440px; }
  details { margin: 16px 0; }
  pre { background: white; border: 1px solid #dcdfe4; border-radius: 6px; padding: 10px; overflow-x: auto; font-size: 13px; }
`;

export function reportPage({ title, facts, charts, notes = [], modelSummary, data }: PageInput): string {
  const figures: string[] = [];
  // The two training curves read best side by side.
  for (let i = 0; i < charts.length; i++) {
    const chart = charts[i];
    const next = charts[i + 1];
    if (chart.name === 'loss' && next?.name === 'accuracy') {
      figures.push(`<div class="row">\n${figure(chart)}\n${figure(next)}\n</div>`);
      i++;
    } else {
      figures.push(figure(chart));
    }
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<ul class="facts">
${facts.map((fact) => `<li>${escapeHtml(fact)}</li>`).join('\n')}
</ul>
${notes.map((note) => `<p class="note">${escapeHtml(note)}</p>`).join('\n')}
${modelSummary ? `<details><summary>Model</summary><pre>${escapeHtml(modelSummary)}</pre></details>` : ''}
${figures.join('\n')}
</main>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
</body>
</html>
`;
}

function figure(chart: PageChart): string {
  const src = `data:image/svg+xml;base64,${Buffer.from(chart.svg).toString('base64')}`;
  return `<figure id="chart-${escapeHtml(chart.name)}" data-chart="${escapeHtml(chart.name)}">
<img src="${src}" width="${Math.round(chart.width)}" height="${Math.round(chart.height)}" alt="${escapeHtml(chart.title)}">
<figcaption>${escapeHtml(chart.explanation)} <a href="${encodeURI(chart.file)}">${escapeHtml(chart.file)}</a></figcaption>
</figure>`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that cannot end the <script> element it sits in. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
