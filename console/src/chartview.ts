// Draws a ChartSpec with Apache ECharts' SVG renderer (tree-shaken: bar, line, Sankey, funnel),
// and puts the same figures beside it as a table in <details>, with data-* attributes on the
// chart element so a browser test can assert what is drawn.

import * as echarts from 'echarts/core';
import { BarChart, LineChart, SankeyChart, FunnelChart } from 'echarts/charts';
import { GridComponent, TooltipComponent, LegendComponent, AriaComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';
import type { ChartSpec } from './charts';
import { h, dataTable } from './dom';

echarts.use([BarChart, LineChart, SankeyChart, FunnelChart, GridComponent, TooltipComponent, LegendComponent, AriaComponent, SVGRenderer]);

const live = new Set<echarts.ECharts>();

/** Disposes every chart drawn so far (called when the view changes). */
export function disposeCharts(): void {
  for (const c of live) c.dispose();
  live.clear();
}

export interface ChartOpts {
  view: string;
  testid: string;
  height?: number;
  /** a click on a data item (category name or node id) */
  onClick?: (name: string, seriesName: string) => void;
}

/** A <figure> with the chart and its table; the chart is drawn once the figure is in the page. */
export function chartFigure(spec: ChartSpec, o: ChartOpts): HTMLElement {
  const box = h('div', { class: 'chart', role: 'img', 'aria-label': `${spec.title} (chart; the same figures are in the table below)`, 'data-testid': o.testid });
  for (const [k, v] of Object.entries(spec.attrs)) box.setAttribute('data-' + k, v);
  box.style.height = `${o.height ?? 280}px`;
  if (spec.minWidth) box.style.minWidth = `${spec.minWidth}px`;
  const fig = h('figure', { class: 'chart-figure' },
    h('figcaption', {}, spec.title),
    spec.minWidth ? h('div', { class: 'chart-scroll' }, box) : box,
    h('details', { class: 'chart-table' }, h('summary', {}, `Table: ${spec.title}`),
      dataTable(spec.table.header, spec.table.rows, { caption: spec.title, view: o.view, testid: o.testid + '-table' })));
  const draw = () => {
    if (!box.isConnected) return;
    const chart = echarts.init(box, undefined, { renderer: 'svg' });
    chart.setOption(spec.option);
    live.add(chart);
    if (o.onClick) {
      const cb = o.onClick;
      chart.on('click', (p: { name?: string; seriesName?: string; dataType?: string }) => {
        if (p.name && p.dataType !== 'edge') cb(p.name, p.seriesName ?? '');
      });
    }
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(() => { if (!chart.isDisposed()) chart.resize(); });
      ro.observe(box);
    }
    box.setAttribute('data-rendered', 'true');
  };
  requestAnimationFrame(draw);
  return fig;
}
