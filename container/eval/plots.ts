/**
 * A sweep's plots, in the paper's figure form, one line per setting (RoPE × pooling) over the frame
 * counts: the score vs frames, the planned peak memory vs frames, the time per video vs frames.
 * Charts are Vega-Lite specifications compiled and rendered to SVG by vega-lite and vega (no
 * browser, no native canvas), and turned into PNG by resvg.
 */
import { writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import { importEsm } from './esm';
import type { SettingReport } from './report';

type VegaLite = { compile(spec: unknown): { spec: unknown } };
type Vega = { parse(spec: unknown): unknown; View: new (runtime: unknown, opts: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void } };

interface PlotDef {
  /** File suffix: `<stem>-<name>.svg|png`. */
  name: string;
  title: string;
  yTitle: string;
  /** A fixed y range (scores are percentages), else from zero to the data. */
  domain?: [number, number];
  value: (r: SettingReport) => number | undefined;
}

export function plotDefs(scoreTitle: string): PlotDef[] {
  return [
    { name: 'score', title: `${scoreTitle} vs frames`, yTitle: `${scoreTitle} (%)`, domain: [0, 100], value: (r) => (r.score.total ? r.score.score : undefined) },
    { name: 'memory', title: 'Peak memory vs frames (planned, `longsight plan`)', yTitle: 'peak memory (GiB)', value: (r) => (r.plannedPeakBytes === undefined ? undefined : r.plannedPeakBytes / 2 ** 30) },
    { name: 'time', title: 'Time per video vs frames (median, on the worker)', yTitle: 'seconds per video', value: (r) => r.secondsPerVideo },
  ];
}

/** The Vega-Lite specification of one plot: a line with points per series, frames on a log-2 axis. */
export function plotSpec(def: PlotDef, reports: SettingReport[]): Record<string, unknown> {
  const values = reports.flatMap((r) => {
    const y = def.value(r);
    return y === undefined ? [] : [{ frames: r.frames, value: y, series: r.series }];
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: def.title,
    width: 420,
    height: 260,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'frames', type: 'quantitative', title: 'frames', scale: { type: 'log', base: 2 }, axis: { values: [...new Set(values.map((v) => v.frames))] } },
      y: { field: 'value', type: 'quantitative', title: def.yTitle, scale: def.domain ? { domain: def.domain } : { zero: true } },
      color: { field: 'series', type: 'nominal', title: 'setting', legend: { orient: 'bottom', columns: 1, labelLimit: 0 } },
    },
  };
}

export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const [vl, vega] = await Promise.all([importEsm<VegaLite>('vega-lite'), importEsm<Vega>('vega')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
}

/** Writes `<stem>-score|memory|time.svg` and `.png`; returns the paths (a plot with no values is left out). */
export async function writePlots(stem: string, scoreTitle: string, reports: SettingReport[]): Promise<string[]> {
  const written: string[] = [];
  for (const def of plotDefs(scoreTitle)) {
    const spec = plotSpec(def, reports);
    if ((spec.data as { values: unknown[] }).values.length === 0) continue;
    const svg = await renderSvg(spec);
    writeFileSync(`${stem}-${def.name}.svg`, svg);
    writeFileSync(`${stem}-${def.name}.png`, svgToPng(svg));
    written.push(`${stem}-${def.name}.svg`, `${stem}-${def.name}.png`);
  }
  return written;
}
