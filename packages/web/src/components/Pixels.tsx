/** A rows × cols gray image (bytes, light on dark) drawn on a small canvas, scaled without smoothing. */
import { useEffect, useRef } from 'preact/hooks';

export function PixelImage({ pixels, rows = 28, cols = 28, size = 112, label }: { pixels: Uint8Array; rows?: number; cols?: number; size?: number; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const context = canvas.current!.getContext('2d')!;
    const image = context.createImageData(cols, rows);
    for (let i = 0; i < rows * cols; i++) image.data.set([pixels[i], pixels[i], pixels[i], 255], i * 4);
    context.putImageData(image, 0, 0);
  }, [pixels, rows, cols]);
  return <canvas ref={canvas} class="pixels" width={cols} height={rows} style={{ width: `${size}px`, height: `${(size * rows) / cols}px` }} role="img" aria-label={label} />;
}
