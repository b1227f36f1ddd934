/**
 * A canvas to draw on with a mouse, pen or finger: white strokes on black, like the training
 * images. `onDraw` is called at most once per animation frame while drawing (final: false) and
 * once when a stroke ends (final: true).
 */
import { useEffect, useRef } from 'preact/hooks';

const SIDE = 280;

export function DrawPad({ onDraw, onClear }: { onDraw: (canvas: HTMLCanvasElement, final: boolean) => void; onClear: () => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef<{ x: number; y: number } | null>(null);
  const frame = useRef(0);

  const clear = () => {
    const context = canvas.current!.getContext('2d', { willReadFrequently: true })!;
    context.fillStyle = '#000';
    context.fillRect(0, 0, SIDE, SIDE);
  };
  useEffect(clear, []);

  const point = (event: PointerEvent) => {
    const box = canvas.current!.getBoundingClientRect();
    return { x: ((event.clientX - box.left) * SIDE) / box.width, y: ((event.clientY - box.top) * SIDE) / box.height };
  };
  const stroke = (to: { x: number; y: number }) => {
    const context = canvas.current!.getContext('2d', { willReadFrequently: true })!;
    const from = drawing.current ?? to;
    context.strokeStyle = '#fff';
    context.lineWidth = 22;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    drawing.current = to;
    if (!frame.current) {
      frame.current = requestAnimationFrame(() => {
        frame.current = 0;
        onDraw(canvas.current!, false);
      });
    }
  };

  return (
    <div class="draw">
      <canvas
        ref={canvas}
        width={SIDE}
        height={SIDE}
        class="pad"
        aria-label="drawing area: draw a piece of clothing with the mouse, a pen or a finger"
        data-testid="draw-pad"
        onPointerDown={(e) => {
          canvas.current!.setPointerCapture(e.pointerId);
          drawing.current = null;
          stroke(point(e));
        }}
        onPointerMove={(e) => drawing.current && stroke(point(e))}
        onPointerUp={() => {
          if (!drawing.current) return;
          drawing.current = null;
          cancelAnimationFrame(frame.current);
          frame.current = 0;
          onDraw(canvas.current!, true);
        }}
      />
      <button type="button" class="secondary" onClick={() => (clear(), onClear())}>Clear the drawing</button>
    </div>
  );
}
