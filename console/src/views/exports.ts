// Exports: the gateway streams CSV of touchpoints and customers (audited as console_export); the
// links carry the filters chosen here. Every table in every view also has its own "Download CSV".

import { h, field } from '../dom';
import { queryString } from '../api';
import { type ViewCtx, pageHead, periodForm, select, knownChannels, STAGES } from './common';

export function exportUrl(kind: 'touchpoints' | 'customers', params: Record<string, string | undefined>): string {
  return `/.console/api/export/${kind}.csv${queryString(params)}`;
}

export async function exportsView(ctx: ViewCtx): Promise<void> {
  const f = ctx.filters;
  ctx.main.appendChild(pageHead(ctx, 'Exports', 'view-exports',
    'Download what the views show as CSV: every recorded field, times in ISO 8601 UTC. Each download is recorded in the audit trail.'));
  const channels = await knownChannels(ctx);
  if (ctx.gone()) return;
  ctx.main.appendChild(periodForm(ctx, [
    field('Channel', select('channel', channels, f.channel, 'All channels')),
    field('Stage', select('stage', STAGES, f.stage, 'All stages')),
    field('Customer id', h('input', { name: 'customer', value: f.customer ?? '', maxlength: 64, placeholder: 'all customers' })),
    field('Customer search', h('input', { name: 'q', value: f.q ?? '', maxlength: 512, placeholder: 'email, id or provider:subject' })),
  ], ['channel', 'stage', 'customer', 'q']));
  const tp = exportUrl('touchpoints', { from: f.from, to: f.to, channel: f.channel, stage: f.stage, customer: f.customer });
  const cu = exportUrl('customers', { q: f.q });
  ctx.main.appendChild(h('section', { class: 'card', 'aria-labelledby': 'ex-h', 'data-testid': 'export-links' }, h('h2', { id: 'ex-h' }, 'Downloads'),
    h('ul', { class: 'plain' },
      h('li', {}, h('a', { class: 'btn inline', href: tp, download: '', 'data-testid': 'export-touchpoints' }, 'Touchpoints (CSV)'),
        ' ', h('code', { class: 'muted' }, tp)),
      h('li', {}, h('a', { class: 'btn inline', href: cu, download: '', 'data-testid': 'export-customers' }, 'Customers (CSV)'),
        ' ', h('code', { class: 'muted' }, cu)))));
}
