// Flows (journeys across customers): channel transitions (first-order matrix, table + Sankey, top
// sequences), paths from a touchpoint (Sankey with drop-offs), the stage funnel with drop-off and
// what those customers did next, and stage flow. Filters: period, channel, stage (in the URL).

import { h, dataTable, field, apiDefinition } from '../dom';
import { fmtShare, fmtCount, fmtDuration } from '../format';
import { transitionsSankey, pathsSankey, funnelChart, type Transitions, type PathsAnswer, type FunnelStep } from '../charts';
import { chartFigure } from '../chartview';
import { type ViewCtx, pageHead, periodForm, select, section, knownChannels, STAGES } from './common';

interface TransitionsAnswer extends Transitions { sequences: { channels: string[]; customers: number }[]; converted_stage: string }
interface FunnelAnswer { window_days: number; steps: FunnelStep[]; next_after_dropoff: { after: string; touchpoint: string; customers: number }[] }
interface StagesAnswer { stages: { stage: string; entered: number; median_days: number | null }[]; transitions: { from: string; to: string; customers: number; regression: boolean }[] }

export async function flowsView(ctx: ViewCtx): Promise<void> {
  const f = ctx.filters;
  ctx.main.appendChild(pageHead(ctx, 'Flows', 'view-flows', 'How customers move between channels, touchpoints and lifecycle stages across the period.'));
  const channels = await knownChannels(ctx);
  if (ctx.gone()) return;
  ctx.main.appendChild(periodForm(ctx, [
    field('Channel', select('channel', channels, f.channel, 'All channels')),
    field('Stage', select('stage', STAGES, f.stage, 'All stages')),
  ], ['channel', 'stage']));
  const common = { from: f.from, to: f.to, channel: f.channel, stage: f.stage };

  await section(ctx.main, 'Channel transitions', 'transitions', async () => {
    const t = await ctx.api.get<TransitionsAnswer>('transitions', common);
    const matrix = dataTable(['From \\ to', ...t.cols], t.rows.map((r, i) => [r, ...t.cols.map((_c, j) => t.shares[i]?.[j] ?? 0)]), {
      caption: 'Transition shares (row-normalised)', view: 'flows', testid: 'transitions-table',
      render: (v, _row, col) => (col === 0 ? String(v) : fmtShare(v as number)),
    });
    const counts = dataTable(['From \\ to', ...t.cols], t.rows.map((r, i) => [r, ...t.cols.map((_c, j) => t.counts[i]?.[j] ?? 0)]),
      { caption: 'Transition counts', view: 'flows', testid: 'transitions-counts' });
    const seqs = dataTable(['Channel sequence', 'Customers'], (t.sequences ?? []).map((s) => [s.channels.join(' → '), s.customers]),
      { caption: 'Top channel sequences', view: 'flows', testid: 'sequences-table' });
    return [
      h('p', { class: 'muted defs-inline' }, `First-order Markov matrix over each customer's consecutive touchpoints: rows are the channel moved from (“(start)” for the first), columns the channel moved to, “(converted)” on reaching stage “${t.converted_stage}”, “(lost)” when the journey stops. Each row sums to 100%.`),
      apiDefinition(t) ?? '',
      matrix,
      chartFigure(transitionsSankey(t), { view: 'flows', testid: 'chart-transitions', height: 360 }),
      h('details', {}, h('summary', {}, 'Counts'), counts),
      h('h3', {}, 'Top channel sequences'), seqs,
    ];
  });

  await section(ctx.main, 'Paths', 'paths', async () => {
    const steps = f.steps ?? '5', top = f.top ?? '6';
    const form = h('form', { class: 'filters', 'aria-label': 'Path options' },
      field('Start at touchpoint', h('input', { name: 'start', value: f.start ?? '', placeholder: 'any (first touchpoint)', maxlength: 200 })),
      field('Steps', h('input', { name: 'steps', type: 'number', min: 2, max: 10, value: steps })),
      field('Top nodes per step', h('input', { name: 'top', type: 'number', min: 2, max: 20, value: top })),
      h('div', { class: 'field field-btn' }, h('button', { type: 'submit' }, 'Show paths')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value.trim();
      ctx.setFilters({ ...ctx.filters, start: v('start'), steps: v('steps'), top: v('top') });
    });
    const p = await ctx.api.get<PathsAnswer>('paths', { ...common, start: f.start, steps, top });
    const nodes = dataTable(['Step', 'Touchpoint', 'Customers', 'Share of those who started'], p.nodes.map((n) => [n.step, n.touchpoint, n.customers, n.share]),
      { caption: 'Path nodes', view: 'flows', testid: 'paths-nodes', render: (v, _r, c) => (c === 3 ? fmtShare(v as number) : String(v)) });
    const links = dataTable(['From', 'To', 'Customers', 'Average time between'], p.links.map((l) => [l.source, l.target, l.customers, l.avg_seconds]),
      { caption: 'Path links', view: 'flows', testid: 'paths-links', render: (v, _r, c) => (c === 3 ? fmtDuration(v as number | null) : String(v)) });
    return [form,
      h('p', { class: 'muted defs-inline' }, `Scope: ${p.scope} (each customer counted once per step). ${fmtCount(p.started)} customers started. Consecutive repeats collapse; beyond the top nodes of a step the rest is “Other”; “(drop-off)” ends a path.`),
      apiDefinition(p) ?? '',
      chartFigure(pathsSankey(p), { view: 'flows', testid: 'chart-paths', height: 380 }),
      nodes, h('details', {}, h('summary', {}, 'Links with average time between steps'), links)];
  });

  await section(ctx.main, 'Stage funnel', 'funnel', async () => {
    const fa = await ctx.api.get<FunnelAnswer>('funnel', { from: f.from, to: f.to, channel: f.channel, window_days: f.window_days ?? 14, steps: STAGES.join(',') });
    const detail = h('div', { 'aria-live': 'polite', 'data-testid': 'dropoff-detail' });
    const showNext = (after: string) => {
      const rows = fa.next_after_dropoff.filter((n) => n.after === after);
      detail.replaceChildren(dataTable(['Touchpoint', 'Customers'], rows.map((n) => [n.touchpoint, n.customers]),
        { caption: `What customers who stopped after “${after}” did next`, view: 'flows', testid: 'next-after-dropoff', empty: 'Nothing recorded after they stopped.' }));
    };
    const table = dataTable(['Stage', 'Reached', 'Overall conversion', 'Step conversion', 'Drop-off'],
      fa.steps.map((s) => [s.stage, s.reached, s.overall, s.step, s.dropoff]), {
        caption: 'Funnel steps', view: 'flows', testid: 'funnel-table',
        render: (v, row, col) => {
          if (col === 2 || col === 3) return fmtShare(v as number);
          if (col === 4 && (v as number) > 0) {
            const i = fa.steps.findIndex((s) => s.stage === row[0]);
            const prev = fa.steps[i - 1]?.stage ?? String(row[0]);
            return h('button', { type: 'button', class: 'linkish', 'data-testid': 'dropoff-button', onclick: () => showNext(prev) }, `${fmtCount(v as number)} — what did they do next?`);
          }
          return typeof v === 'number' ? fmtCount(v) : String(v);
        },
      });
    return [
      h('p', { class: 'muted defs-inline' }, `Ordered steps within ${fa.window_days} days of the first (Mixpanel / GA4): overall conversion = reached step ÷ entered step 1; step conversion = reached ÷ reached the step before; drop-off = reached the step before − reached. The period bounds entry only, so late converters count.`),
      apiDefinition(fa) ?? '',
      chartFigure(funnelChart(fa.steps, fa.window_days), { view: 'flows', testid: 'chart-funnel', height: 320, onClick: (name) => {
        const i = fa.steps.findIndex((s) => s.stage === name);
        if (i > 0) showNext(fa.steps[i - 1].stage);
      } }),
      table, detail];
  });

  await section(ctx.main, 'Stage flow', 'stages', async () => {
    const s = await ctx.api.get<StagesAnswer>('stages', { from: f.from, to: f.to, channel: f.channel });
    return [
      h('p', { class: 'muted defs-inline' }, 'Customers entering each lifecycle stage in the period, and median days spent in it; transitions include regressions (moving back to an earlier stage).'),
      apiDefinition(s) ?? '',
      dataTable(['Stage', 'Entered', 'Median days in stage'], s.stages.map((x) => [x.stage, x.entered, x.median_days]),
        { caption: 'Stages', view: 'flows', testid: 'stages-table', render: (v, _r, c) => (c === 2 ? (typeof v === 'number' ? v.toFixed(1) : '–') : String(v)) }),
      dataTable(['From stage', 'To stage', 'Customers', 'Regression'], s.transitions.map((x) => [x.from, x.to, x.customers, x.regression ? 'yes' : 'no']),
        { caption: 'Stage transitions', view: 'flows', testid: 'stage-transitions', rowAttrs: (r) => ({ class: r[3] === 'yes' ? 'regression' : null }) }),
    ];
  });
}
