/**
 * Line charts (loss, accuracy) drawn by uPlot. Series may be updated many times a second (live
 * training): the chart keeps one uPlot instance and hands it new data. The numbers are also in a
 * visually hidden table for screen readers.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  values: Array<number | null>;
  color: string;
  dash?: boolean;
}

export function LineChart({ title, xLabel, x, series, height = 220, yRange }: {
  title: string;
  xLabel: string;
  x: number[];
  series: Series[];
  height?: number;
  yRange?: [number, number];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const element = box.current!;
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height,
      title,
      scales: { x: { time: false }, ...(yRange ? { y: { range: yRange } } : {}) },
      axes: [{ label: xLabel, size: 40 }, { size: 50 }],
      series: [{ label: xLabel }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dash ? [6, 4] : undefined, spanGaps: true }))],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
    };
    plot.current = new uPlot(options, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, element);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, element.clientWidth), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, title, height]);

  useEffect(() => {
    plot.current?.setData([x, ...series.map((s) => s.values)] as uPlot.AlignedData);
  });

  const last = x.length - 1;
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`${title}: ${series.map((s) => `${s.label} ${last >= 0 && s.values[last] != null ? s.values[last]!.toFixed(4) : 'no data yet'}`).join(', ')}`} />
    </figure>
  );
}
