// Shared checks for the report tests.
import { expect } from 'vitest';
import sharp from 'sharp';

/** Every text drawn in an SVG (each <text>, and each line of a multi-line one), entities decoded. */
export function svgTexts(svg: string): string[] {
  const texts: string[] = [];
  for (const [, body] of svg.matchAll(/<text\b[^>]*>([\s\S]*?)<\/text>/g)) {
    const lines = [...body.matchAll(/<tspan\b[^>]*>([\s\S]*?)<\/tspan>/g)].map((m) => m[1]);
    for (const line of lines.length > 0 ? lines : [body]) texts.push(decodeEntities(line.replace(/<[^>]+>/g, '')));
  }
  return texts;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code) => String.fromCodePoint(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code) => String.fromCodePoint(parseInt(code, 16)))
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;|&apos;/g, "'").replace(/&amp;/g, '&');
}

/** A PNG that decodes, has a size, and is a picture rather than a blank sheet. */
export async function expectPicture(png: Uint8Array, { minColours = 3 } = {}): Promise<{ width: number; height: number; colours: number }> {
  const image = sharp(Buffer.from(png));
  const meta = await image.metadata();
  expect(meta.format).toBe('png');
  expect(meta.width).toBeGreaterThan(0);
  expect(meta.height).toBeGreaterThan(0);
  const stats = await image.stats();
  expect(Math.max(...stats.channels.slice(0, 3).map((c) => c.stdev))).toBeGreaterThan(0);
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const colours = new Set<number>();
  for (let i = 0; i < data.length; i += info.channels) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  expect(colours.size).toBeGreaterThanOrEqual(minColours);
  return { width: meta.width!, height: meta.height!, colours: colours.size };
}
