/**
 * Charts are vega-lite specs, compiled to vega and rendered headlessly to SVG (no browser, no
 * canvas); the PNG is that SVG rasterised by sharp (librsvg). Text in the PNG is drawn with the
 * fonts fontconfig finds on the system, so FONT lists common families before the generic one.
 * vega, vega-lite and sharp load on the first chart: a command that draws none never pays for them.
 */
import type { TopLevelSpec } from 'vega-lite';
import { loadSharp } from './images.js';

export type { TopLevelSpec } from 'vega-lite';

export interface RenderedChart {
  svg: string;
  png: Buffer;
  /** Size of the SVG in CSS pixels (the PNG is `scale` times larger). */
  width: number;
  height: number;
  /** What vega-lite and vega warned about (kept here rather than printed to the console). */
  warnings: string[];
}

export interface RenderOptions {
  /** Pixel density of the PNG relative to the SVG. Default 2, sharp on high-density screens. */
  scale?: number;
}

export const FONT = 'DejaVu Sans, Verdana, Liberation Sans, Arial, sans-serif';

/** Look shared by every chart: white background, one font, quiet axes. */
export const BASE_CONFIG = {
  font: FONT,
  background: 'white',
  padding: 8,
  title: { fontSize: 15, anchor: 'start', offset: 10, subtitleFontSize: 12, subtitleColor: '#555' },
  // No label is cut short: vega's text width estimate (no canvas here) is generous and would truncate.
  axis: { labelLimit: 0, labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', titleColor: '#333', labelColor: '#333' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  header: { labelFontSize: 12, titleFontSize: 12 },
  view: { stroke: null },
} as const;

/** Compiles a vega-lite spec and renders it to an SVG string and a PNG buffer. */
export async function renderVegaLite(spec: TopLevelSpec, { scale = 2 }: RenderOptions = {}): Promise<RenderedChart> {
  const [vega, { compile }, sharp] = await Promise.all([import('vega'), import('vega-lite'), loadSharp()]);
  const withConfig = { ...spec, config: mergeConfig(BASE_CONFIG as Plain, (spec as { config?: Plain }).config ?? {}) } as TopLevelSpec;
  const warnings: string[] = [];
  const log = vega.logger(vega.Warn, undefined, (method, _level, args) => {
    const message = args.map(String).join(' ');
    if (method === 'error') throw new Error(`chart: ${message}`);
    warnings.push(message);
  });
  const compiled = compile(withConfig, { logger: log }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger: log });
  try {
    await view.runAsync();
    // The SVG is written at 1x: the page scales it; the PNG is rasterised at `scale`x.
    const svg = await view.toSVG();
    const { width, height } = svgSize(svg);
    const png = await sharp(Buffer.from(svg), { density: 72 * scale }).png({ compressionLevel: 9 }).toBuffer();
    return { svg, png, width, height, warnings };
  } finally {
    view.finalize();
  }
}

function svgSize(svg: string): { width: number; height: number } {
  const match = /^<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  if (!match) throw new Error('vega produced an SVG without a width and height');
  return { width: Number(match[1]), height: Number(match[2]) };
}

type Plain = Record<string, unknown>;

function mergeConfig(base: Plain, extra: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isPlain(current) && isPlain(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
