// Overview: a period's headline figures against the period before, sign-ins by provider,
// touchpoints by channel and by day; the API's definitions beside the figures.

import { h, dataTable, definitions } from '../dom';
import { fmtMetric, fmtChange, fmtPeriod, fmtTime, fmtCount } from '../format';
import { comparisonChart, byDayChart } from '../charts';
import { chartFigure } from '../chartview';
import { type ViewCtx, pageHead, periodForm, errorBlock } from './common';

interface Metric { key: string; value: number; previous: number }
export interface Overview {
  period: { from: string; to: string; days: number };
  previous: { from: string; to: string };
  metrics: Metric[];
  signins_by_provider: { provider: string; value: number; previous: number }[];
  touchpoints_by_channel: { channel: string; value: number; previous: number }[];
  touchpoints_by_day: { day: string; channel: string; count: number }[];
  definitions?: Record<string, string>;
  as_of?: string;
}

const LABELS: Record<string, string> = {
  customers_seen: 'Customers seen',
  multi_channel_share: 'Known on 2+ channels',
  new_customers: 'New customers',
  returning_customers: 'Returning customers',
  touchpoints: 'Touchpoints',
  anonymous_visitors: 'Anonymous visitors',
};

export function metricLabel(key: string): string {
  return LABELS[key] ?? key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** Every UTC day of a period, for a by-day chart with no gaps. */
export function daysOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(from + 'T00:00:00Z'), end = Date.parse(to + 'T00:00:00Z'); t <= end && out.length < 800; t += 86400000)
    out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

export async function overviewView(ctx: ViewCtx): Promise<void> {
  ctx.main.appendChild(pageHead(ctx, 'Overview', 'view-overview', 'Customers and touchpoints in a period, compared with the period of the same length just before it.'));
  ctx.main.appendChild(periodForm(ctx));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  ctx.main.appendChild(body);
  const load = async () => {
    try {
      const o = await ctx.api.get<Overview>('overview', { from: ctx.filters.from, to: ctx.filters.to });
      if (ctx.gone()) return;
      body.replaceChildren(...renderOverview(o));
    } catch (e) {
      body.replaceChildren(errorBlock(e, load));
    }
  };
  await load();
}

function renderOverview(o: Overview): HTMLElement[] {
  const defs = o.definitions ?? {};
  const cards = h('ul', { class: 'cards', 'data-testid': 'metric-cards' }, o.metrics.map((m) => {
    const ch = fmtChange(m.key, m.value, m.previous);
    return h('li', { class: 'metric', 'data-metric': m.key, 'data-value': m.value, 'data-previous': m.previous },
      h('span', { class: 'metric-label' }, metricLabel(m.key)),
      h('span', { class: 'metric-value' }, fmtMetric(m.key, m.value)),
      h('span', { class: `metric-change change-${ch.direction}` },
        `${ch.text} vs previous (${fmtMetric(m.key, m.previous)})`),
      defs[m.key] ? h('span', { class: 'metric-def' }, defs[m.key]) : null);
  }));
  const summary = h('p', { class: 'muted', 'data-testid': 'period' },
    `Period ${fmtPeriod(o.period.from, o.period.to)}; previous ${fmtPeriod(o.previous.from, o.previous.to)}.`,
    o.as_of ? ` Figures as of ${fmtTime(o.as_of)}.` : '');
  const byProvider = comparisonChart('Sign-ins by provider', o.signins_by_provider.map((r) => ({ label: r.provider, value: r.value, previous: r.previous })));
  const byChannel = comparisonChart('Touchpoints by channel', o.touchpoints_by_channel.map((r) => ({ label: r.channel, value: r.value, previous: r.previous })));
  const byDay = byDayChart('Touchpoints by day and channel', o.touchpoints_by_day, daysOf(o.period.from, o.period.to));
  const metricsTable = dataTable(['Metric', 'This period', 'Previous period'],
    o.metrics.map((m) => [metricLabel(m.key), m.value, m.previous]), { caption: 'Metrics', view: 'overview', testid: 'metrics-table',
      render: (v, row, col) => (col === 0 ? String(v) : fmtMetric(o.metrics.find((m) => metricLabel(m.key) === row[0])?.key ?? '', v as number)) });
  return [
    summary,
    cards,
    h('details', { class: 'chart-table' }, h('summary', {}, 'Table: metrics'), metricsTable),
    definitions(defs, 'What each figure means') ?? h('span'),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'sp-h', 'data-testid': 'signins-by-provider' }, h('h2', { id: 'sp-h' }, 'Sign-ins by provider'),
        chartFigure(byProvider, { view: 'overview', testid: 'chart-signins-by-provider', height: 240 })),
      h('section', { class: 'card', 'aria-labelledby': 'tc-h', 'data-testid': 'touchpoints-by-channel' }, h('h2', { id: 'tc-h' }, 'Touchpoints by channel'),
        chartFigure(byChannel, { view: 'overview', testid: 'chart-touchpoints-by-channel', height: 240 }))),
    h('section', { class: 'card', 'aria-labelledby': 'td-h', 'data-testid': 'touchpoints-by-day' }, h('h2', { id: 'td-h' }, 'Touchpoints by day'),
      h('p', { class: 'muted' }, `${fmtCount(o.touchpoints_by_day.reduce((a, r) => a + r.count, 0))} touchpoints, stacked by channel.`),
      chartFigure(byDay, { view: 'overview', testid: 'chart-touchpoints-by-day', height: 300 })),
  ];
}
