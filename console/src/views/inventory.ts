// Touchpoint inventory (DOMAIN.md question 6): every route and ingested touchpoint with its
// channel and stage, its volume over 30 days, and the identity data each upstream receives.

import { h, dataTable, apiDefinition } from '../dom';
import { fmtCount } from '../format';
import { type ViewCtx, pageHead, section, STAGES } from './common';

/** Lifecycle stages in their order, then other stage names, then none. */
function stageRank(stage: string | null): number {
  const i = stage ? STAGES.indexOf(stage) : -1;
  return i >= 0 ? i : stage ? STAGES.length : STAGES.length + 1;
}

interface Inventory {
  routes: { name: string; host: string; path_prefix: string; channel: string; stage: string | null; touchpoint: string; auth: string;
    policy: string | null; upstream: string; identity_headers: string[]; assertion: boolean; touchpoints_30d: number }[];
  ingested: { source: string; channel: string; touchpoint: string; stage: string | null; touchpoints_30d: number }[];
}

export async function inventoryView(ctx: ViewCtx): Promise<void> {
  ctx.main.appendChild(pageHead(ctx, 'Touchpoint inventory', 'view-inventory',
    'Every route and ingested touchpoint by channel and stage, with the identity data each upstream receives.'));
  let inv: Inventory | null = null;
  await section(ctx.main, 'Routes', 'inventory-routes', async () => {
    inv = await ctx.api.get<Inventory>('inventory');
    return [apiDefinition(inv) ?? h('span'), dataTable(['Route', 'Host', 'Path', 'Channel', 'Stage', 'Touchpoint', 'Sign-in', 'Policy', 'Upstream', 'Identity headers sent', 'Signed assertion', 'Touchpoints (30 days)'],
      inv.routes.map((r) => [r.name, r.host || '*', r.path_prefix, r.channel, r.stage ?? '', r.touchpoint, r.auth, r.policy ?? '', r.upstream,
        (r.identity_headers ?? []).join(' '), r.assertion ? 'yes' : 'no', r.touchpoints_30d]),
      { caption: 'Routes', view: 'inventory', testid: 'inventory-routes-table',
        render: (v, _r, c) => (c === 11 ? fmtCount(v as number) : c === 9 && v ? h('span', { class: 'headers' }, String(v).split(' ').map((x) => h('code', {}, x))) : v === '' || v === null ? '–' : String(v)) })];
  });
  await section(ctx.main, 'Ingested touchpoints', 'inventory-ingested', async () => {
    const i = inv ?? (await ctx.api.get<Inventory>('inventory'));
    return [dataTable(['Source', 'Channel', 'Touchpoint', 'Stage', 'Touchpoints (30 days)'],
      [...i.ingested].sort((x, y) => stageRank(x.stage) - stageRank(y.stage) || y.touchpoints_30d - x.touchpoints_30d)
        .map((r) => [r.source, r.channel, r.touchpoint, r.stage ?? '', r.touchpoints_30d]),
      { caption: 'Ingested touchpoints', view: 'inventory', testid: 'inventory-ingested-table', empty: 'Nothing ingested yet.',
        render: (v, _r, c) => (c === 4 ? fmtCount(v as number) : v === '' || v === null ? '–' : String(v)) })];
  });
}
