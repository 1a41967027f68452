// Chart option builders: pure functions from the API's answers to (a) an ECharts option and
// (b) the same figures as a table, shown beside the chart (accessible, testable, exportable).
// Rendering lives in chartview.ts; nothing here touches the DOM.

import type { EChartsCoreOption } from 'echarts/core';
import type { Cell } from './csv';

export interface TableData {
  header: string[];
  rows: Cell[][];
}

export interface ChartSpec {
  kind: 'bar' | 'line' | 'sankey' | 'funnel';
  title: string;
  option: EChartsCoreOption;
  table: TableData;
  /** data-* attributes of the chart's element (names without "data-") */
  attrs: Record<string, string>;
  /** the width (px) below which the chart scrolls sideways instead of squeezing its labels */
  minWidth?: number;
}

export const PALETTE = ['#0969da', '#bf8700', '#1a7f37', '#8250df', '#cf222e', '#1b7c83', '#953800', '#57606a'];
export const SUCCESS = '#1a7f37';
export const FAILURE = '#cf222e';

const base = {
  animation: false,
  color: PALETTE,
  textStyle: { fontFamily: 'system-ui, sans-serif', color: '#1b1f24' },
  aria: { enabled: true },
};

interface Series {
  name: string;
  data: number[];
  stack?: string;
  color?: string;
}

/** Bars (grouped or stacked) over categories; the table has one column per series. */
export function barChart(title: string, categories: string[], series: Series[], opts: { line?: boolean; horizontal?: boolean } = {}): ChartSpec {
  const type = opts.line ? 'line' : 'bar';
  // horizontal: one row per category, so every (long) category name is shown in full
  const cat = { type: 'category', data: categories, ...(opts.horizontal ? { inverse: true, axisLabel: { interval: 0 } } : { axisLabel: { hideOverlap: true } }) };
  const val = { type: 'value', minInterval: 1 };
  const option: EChartsCoreOption = {
    ...base,
    tooltip: { trigger: 'axis' },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 48, right: 16, top: 36, bottom: 48, containLabel: true },
    xAxis: opts.horizontal ? val : cat,
    yAxis: opts.horizontal ? cat : val,
    series: series.map((s) => ({
      name: s.name, type, data: s.data, stack: s.stack, ...(s.color ? { itemStyle: { color: s.color }, lineStyle: { color: s.color } } : {}),
      emphasis: { focus: 'series' },
    })),
  };
  return {
    kind: type,
    title,
    option,
    table: { header: ['', ...series.map((s) => s.name)], rows: categories.map((c, i) => [c, ...series.map((s) => s.data[i] ?? 0)]) },
    attrs: {
      chart: type,
      categories: String(categories.length),
      series: series.map((s) => s.name).join(','),
      total: String(series.reduce((a, s) => a + s.data.reduce((x, y) => x + (y || 0), 0), 0)),
    },
  };
}

/** Current vs previous period, per key (e.g. sign-ins by provider). */
export function comparisonChart(title: string, rows: { label: string; value: number; previous: number }[]): ChartSpec {
  return barChart(title, rows.map((r) => r.label), [
    { name: 'This period', data: rows.map((r) => r.value), color: PALETTE[0] },
    { name: 'Previous period', data: rows.map((r) => r.previous), color: '#8c959f' },
  ]);
}

/** Touchpoints by day, one stacked series per channel; days with no row count 0. */
export function byDayChart(title: string, rows: { day: string; channel: string; count: number }[], days?: string[]): ChartSpec {
  const dayList = days ?? [...new Set(rows.map((r) => r.day))].sort();
  const channels = [...new Set(rows.map((r) => r.channel))].sort();
  const idx = new Map(dayList.map((d, i) => [d, i]));
  const series = channels.map((ch) => {
    const data = dayList.map(() => 0);
    for (const r of rows) if (r.channel === ch && idx.has(r.day)) data[idx.get(r.day)!] += r.count;
    return { name: ch, data, stack: 'total' };
  });
  return barChart(title, dayList, series);
}

export interface SankeyNode { id: string; label: string; value?: number; share?: number; sink?: boolean }
export interface SankeyLink { source: string; target: string; value: number; avgSeconds?: number }

/** A Sankey diagram; the table lists every link (from, to, customers). */
export function sankeyChart(title: string, nodes: SankeyNode[], links: SankeyLink[], valueName = 'customers', labelWidth = 160): ChartSpec {
  const ids = new Set(nodes.map((n) => n.id));
  const kept = links.filter((l) => l.value > 0 && ids.has(l.source) && ids.has(l.target) && l.source !== l.target);
  const label = new Map(nodes.map((n) => [n.id, n.label]));
  const option: EChartsCoreOption = {
    ...base,
    tooltip: { trigger: 'item' },
    series: [{
      type: 'sankey',
      left: 8, right: 170, top: 8, bottom: 8,
      nodeGap: 10,
      nodeAlign: 'left', // a node stays at its step (a drop-off at step 2 is not pushed to the last column)
      draggable: false,
      emphasis: { focus: 'adjacency' },
      lineStyle: { color: 'gradient', opacity: 0.35 },
      // a label longer than a column is cut (the tooltip and the table beside the chart have it whole)
      label: { formatter: (p: { data: { label?: string } }) => p.data.label ?? '', width: labelWidth, overflow: 'truncate' },
      data: nodes.map((n) => ({
        name: n.id, label: n.label, value: n.value,
        ...(n.sink ? { itemStyle: { color: '#8c959f' } } : {}),
      })),
      links: kept.map((l) => ({ source: l.source, target: l.target, value: l.value })),
    }],
  };
  const hasAvg = kept.some((l) => typeof l.avgSeconds === 'number');
  return {
    kind: 'sankey',
    title,
    option,
    table: {
      header: ['From', 'To', valueName, ...(hasAvg ? ['Average seconds between'] : [])],
      rows: kept.map((l) => [label.get(l.source) ?? l.source, label.get(l.target) ?? l.target, l.value,
        ...(hasAvg ? [typeof l.avgSeconds === 'number' ? Math.round(l.avgSeconds * 10) / 10 : null] : [])]),
    },
    attrs: { chart: 'sankey', nodes: String(nodes.length), links: String(kept.length), total: String(kept.reduce((a, l) => a + l.value, 0)) },
  };
}

export interface Transitions {
  rows: string[];
  cols: string[];
  counts: number[][];
  shares: number[][];
}

/** The channel-transition matrix as a Sankey: "from" nodes on the left, "to" nodes on the right. */
export function transitionsSankey(t: Transitions): ChartSpec {
  const nodes: SankeyNode[] = [
    ...t.rows.map((r) => ({ id: 'from:' + r, label: r })),
    ...t.cols.map((c) => ({ id: 'to:' + c, label: '→ ' + c, sink: c === '(lost)' })),
  ];
  const links: SankeyLink[] = [];
  t.rows.forEach((r, i) => t.cols.forEach((c, j) => {
    const v = t.counts[i]?.[j] ?? 0;
    links.push({ source: 'from:' + r, target: 'to:' + c, value: v }); // sankeyChart leaves out zero links
  }));
  return sankeyChart('Channel transitions', nodes, links, 'transitions');
}

export interface PathsAnswer {
  scope: string;
  nodes: { id: string; step: number; touchpoint: string; customers: number; share: number }[];
  links: { source: string; target: string; customers: number; avg_seconds: number | null }[];
  started: number;
}

/** Paths as a Sankey keyed by step; drop-off nodes are grey sinks. */
export function pathsSankey(p: PathsAnswer): ChartSpec {
  const nodes = p.nodes.map((n) => ({
    id: n.id, label: `${n.step}. ${n.touchpoint} (${(n.share * 100).toFixed(0)}%)`, value: n.customers, share: n.share,
    sink: n.touchpoint === '(drop-off)',
  }));
  const links = p.links.map((l) => ({ source: l.source, target: l.target, value: l.customers, avgSeconds: l.avg_seconds ?? undefined }));
  const spec = sankeyChart('Paths', nodes, links, 'customers', 150);
  // one column per step, each wide enough for its labels: narrower screens scroll the chart
  spec.minWidth = 190 * Math.max(2, ...p.nodes.map((n) => n.step)) + 40;
  spec.attrs.started = String(p.started);
  spec.attrs.scope = p.scope;
  return spec;
}

export interface FunnelStep { stage: string; reached: number; overall: number; step: number; dropoff: number }

/** The stage funnel: width by customers reached; the table adds conversion and drop-off. */
export function funnelChart(steps: FunnelStep[], windowDays: number): ChartSpec {
  const max = steps.reduce((m, s) => Math.max(m, s.reached), 0);
  const option: EChartsCoreOption = {
    ...base,
    tooltip: { trigger: 'item' },
    series: [{
      type: 'funnel', sort: 'none', left: '5%', right: '35%', top: 8, bottom: 8, min: 0, max: max || 1, gap: 2,
      label: { position: 'right', formatter: '{b}: {c}', color: '#1b1f24' },
      data: steps.map((s) => ({ name: s.stage, value: s.reached })),
    }],
  };
  return {
    kind: 'funnel',
    title: `Stage funnel (${windowDays}-day window)`,
    option,
    table: {
      header: ['Stage', 'Reached', 'Overall conversion', 'Step conversion', 'Drop-off'],
      rows: steps.map((s) => [s.stage, s.reached, s.overall, s.step, s.dropoff]),
    },
    attrs: { chart: 'funnel', steps: String(steps.length), entered: String(steps[0]?.reached ?? 0),
      reached: String(steps[steps.length - 1]?.reached ?? 0) },
  };
}

export interface VolumeBucket {
  t: string;
  success: number;
  failure: number;
  by_reason?: Record<string, number>;
  by_provider?: Record<string, { success: number; failure: number }>;
  refusals?: number;
}

/** Sign-in volume: successes and failures stacked per bucket (plus rate-limit refusals). */
export function volumeChart(buckets: VolumeBucket[], bucket: 'hour' | 'day'): ChartSpec {
  const cats = buckets.map((b) => (bucket === 'day' ? b.t.slice(0, 10) : b.t.slice(0, 13).replace('T', ' ') + ':00'));
  const spec = barChart('Sign-ins over time', cats, [
    { name: 'success', data: buckets.map((b) => b.success), stack: 'signins', color: SUCCESS },
    { name: 'failure', data: buckets.map((b) => b.failure), stack: 'signins', color: FAILURE },
    { name: 'rate-limit refusals', data: buckets.map((b) => b.refusals ?? 0), color: '#bf8700' },
  ]);
  spec.attrs.bucket = bucket;
  return spec;
}

/** Failures by reason, summed over the buckets, largest first. */
export function failureReasons(buckets: VolumeBucket[]): { reason: string; count: number }[] {
  const m = new Map<string, number>();
  for (const b of buckets) for (const [k, v] of Object.entries(b.by_reason ?? {})) m.set(k, (m.get(k) ?? 0) + (v || 0));
  return [...m].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** Failures by reason as bars. */
export function reasonsChart(buckets: VolumeBucket[]): ChartSpec {
  const r = failureReasons(buckets);
  return barChart('Failures by reason', r.map((x) => x.reason), [{ name: 'failures', data: r.map((x) => x.count), color: FAILURE }], { horizontal: true });
}
