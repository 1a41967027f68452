// Sign-in activity (Keycloak events, Okta System Log, Auth0 logs): the chain's state at a glance,
// volume over time (successes and failures stacked, refusals), failures by reason, anomalies, and
// the audit list with removable filter chips kept in the URL (click a value to filter by it).
// Also one sign-in flow: every step of one flow id with its timing.

import { h, dataTable, announce, field, apiDefinition, timeCell } from '../dom';
import { apiPath, type Params } from '../api';
import { buildUrl, withFilter, type Filters } from '../urlstate';
import { fmtTime, fmtCount } from '../format';
import { volumeChart, reasonsChart, type VolumeBucket } from '../charts';
import { chartFigure } from '../chartview';
import { type ViewCtx, pageHead, section, appLink, personLabel, errorBlock } from './common';

export interface AuditRecord {
  seq: number; time: string; event: string; outcome: string; reason: string | null; provider: string | null;
  customer_id: string | null; customer_name: string | null; customer_email: string | null; client: string | null;
  user_agent: string | null; flow_id: string | null; request_id: string | null; actor: string | null; route: string | null;
  detail: string | null; count: number | null;
}
interface Chain { state: 'verified' | 'broken'; count: number; verified_up_to: number; head_seq: number; signed_head: string | null; first_broken: number | null; why: string | null; check?: string; full_check_at?: string }
interface Volume { buckets: VolumeBucket[]; anomalies: { t: string; failures: number; baseline: number; factor: number }[]; bucket?: 'hour' | 'day'; definition?: string }

export const AUDIT_FILTERS: { key: string; label: string }[] = [
  { key: 'event', label: 'Event' }, { key: 'provider', label: 'Provider' }, { key: 'outcome', label: 'Outcome' },
  { key: 'customer', label: 'Customer id' }, { key: 'client', label: 'Address' }, { key: 'from', label: 'From' }, { key: 'to', label: 'To' },
];

/** The chain's state in one line: "verified up to N, signed head …" or the first broken sequence. */
export function chainText(c: Chain): string {
  if (c.state === 'broken' && c.first_broken === 0)
    return `BROKEN: the signed head does not verify${c.why ? `: ${c.why}` : ''} (verified up to ${c.verified_up_to} of ${c.count})`;
  if (c.state === 'broken')
    return `BROKEN at sequence ${c.first_broken ?? '?'}${c.why ? `: ${c.why}` : ''} (verified up to ${c.verified_up_to} of ${c.count})`;
  return `Verified up to ${c.verified_up_to} of ${c.count} records, signed head ${c.signed_head ? c.signed_head.slice(0, 16) + '…' : '(none)'} at sequence ${c.head_seq}`;
}

export async function signinsView(ctx: ViewCtx): Promise<void> {
  const f = ctx.filters;
  ctx.main.appendChild(pageHead(ctx, 'Sign-in activity', 'view-signins',
    'Every sign-in step, refusal and admin action in the tamper-evident audit trail, newest first.'));

  // filter chips: each removable; the filter form adds
  const chips = h('ul', { class: 'chips', 'aria-label': 'Active filters', 'data-testid': 'filter-chips' });
  for (const { key, label } of AUDIT_FILTERS) {
    if (!f[key]) continue;
    chips.appendChild(h('li', { class: 'chip', 'data-filter': key },
      h('span', {}, `${label}: ${f[key]}`),
      h('button', { type: 'button', class: 'chip-x', 'aria-label': `Remove filter ${label}: ${f[key]}`, 'data-testid': `remove-${key}`,
        onclick: () => ctx.setFilters(withFilter(ctx.filters, key, null)) }, '×')));
  }
  const form = h('form', { class: 'filters', 'aria-label': 'Audit filters', 'data-testid': 'audit-filters' },
    AUDIT_FILTERS.map(({ key, label }) => field(label, h('input', { name: key, value: f[key] ?? '', maxlength: 200,
      ...(key === 'from' || key === 'to' ? { type: 'date' } : {}) }))),
    h('div', { class: 'field field-btn' }, h('button', { type: 'submit' }, 'Apply')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    let nf: Filters = { ...ctx.filters };
    for (const { key } of AUDIT_FILTERS) nf = withFilter(nf, key, (form.elements.namedItem(key) as HTMLInputElement).value.trim());
    ctx.setFilters(nf);
  });
  ctx.main.appendChild(h('details', { class: 'filter-box', open: Object.keys(f).length === 0 ? null : true }, h('summary', {}, 'Filters'), form));
  if (chips.childElementCount) ctx.main.appendChild(chips);

  let fullCheck = false;
  await section(ctx.main, 'Audit chain', 'chain', async (reload) => {
    const c = await ctx.api.get<Chain>('audit/chain', { full: fullCheck ? 1 : null });
    const again = h('button', { type: 'button', class: 'small', 'data-testid': 'chain-full' }, 'Verify the whole chain now');
    again.addEventListener('click', () => { fullCheck = true; void reload().then(() => announce('Whole-chain check finished: its state is shown above.', 'ok')); });
    return [h('p', { class: c.state === 'broken' ? 'chain chain-broken' : 'chain chain-ok', 'data-testid': 'chain-state', 'data-state': c.state,
      'data-verified-up-to': c.verified_up_to, 'data-first-broken': c.first_broken ?? '' }, chainText(c)),
    h('p', { class: 'muted' }, c.check ? `This check: ${c.check}.` : '', c.full_check_at ? ` Whole chain last walked ${fmtTime(c.full_check_at)}.` : '', ' ', again),
    c.signed_head ? h('details', {}, h('summary', {}, 'Signed head'), h('code', { class: 'wrap' }, c.signed_head)) : h('p', { class: 'muted' }, 'No signed head yet.')];
  });

  await section(ctx.main, 'Sign-ins over time', 'volume', async () => {
    // no bucket asked: the gateway picks (hours for a week or less, else days) and says which
    const v = await ctx.api.get<Volume>('signins/volume', { from: f.from, to: f.to, bucket: f.bucket === 'hour' || f.bucket === 'day' ? f.bucket : null });
    const bucket = v.bucket === 'hour' || (!v.bucket && f.bucket === 'hour') ? 'hour' : 'day';
    const toggle = h('p', {}, 'Bucket: ',
      appLink(ctx, buildUrl(ctx.route, { ...ctx.filters, bucket: 'day' }), 'by day', { 'aria-current': bucket === 'day' ? 'true' : 'false' }), ' · ',
      appLink(ctx, buildUrl(ctx.route, { ...ctx.filters, bucket: 'hour' }), 'by hour', { 'aria-current': bucket === 'hour' ? 'true' : 'false' }));
    const anomalies = dataTable(['Hour', 'Failures', 'Baseline (median)', 'Factor'], (v.anomalies ?? []).map((a) => [a.t, a.failures, a.baseline, a.factor]),
      { caption: 'Anomalies: failures far above the trailing baseline', view: 'signins', testid: 'anomalies-table', empty: 'No anomaly in the period.',
        render: (x, _r, c) => (c === 0 ? timeCell(x) : c === 3 ? `${(x as number).toFixed(1)}×` : String(x)) });
    return [toggle, apiDefinition(v) ?? '',
      h('p', { class: 'muted' }, bucket === 'day' ? 'Select a day (click its bar) to filter the list below to it.' : 'Successes and failures stacked per hour.'),
      chartFigure(volumeChart(v.buckets, bucket), { view: 'signins', testid: 'chart-volume', height: 280, onClick: (name) => {
        if (bucket === 'day' && /^\d{4}-\d{2}-\d{2}$/.test(name)) ctx.setFilters({ ...ctx.filters, from: name, to: name });
      } }),
      h('div', { class: 'grid2' },
        h('div', {}, h('h3', {}, 'Failures by reason'), chartFigure(reasonsChart(v.buckets), { view: 'signins', testid: 'chart-reasons', height: 240 })),
        h('div', {}, h('h3', {}, 'Anomalies'), h('p', { class: 'muted' }, 'Hourly failures against a trailing baseline, flagged above k × median.'), anomalies))];
  });

  await section(ctx.main, 'Audit records', 'audit', async () => {
    const records: AuditRecord[] = [];
    const wrap = h('div', {});
    const more = h('button', { type: 'button', 'data-testid': 'audit-older', hidden: true }, 'Load older records');
    const params: Params = { event: f.event, provider: f.provider, outcome: f.outcome, customer: f.customer, client: f.client, from: f.from, to: f.to, limit: 100 };
    let before: number | null = null;
    const filterBtn = (key: string, value: string | null, text?: string) =>
      value ? h('button', { type: 'button', class: 'linkish', title: `Filter by ${key} ${value}`, 'data-filter-key': key,
        onclick: () => ctx.setFilters(withFilter(ctx.filters, key, value)) }, text ?? value) : '–';
    const draw = () => {
      const bySeq = new Map(records.map((x) => [x.seq, x]));
      wrap.replaceChildren(dataTable(['Time', 'Customer', 'Event', 'Outcome', 'Reason', 'Provider', 'Address', 'Flow', 'Actor', 'Route', 'Detail', 'User agent', 'Seq'],
        records.map((r) => [r.time, personLabel(r.customer_name, r.customer_email, r.customer_id), r.event, r.outcome, r.reason, r.provider, r.client,
          r.flow_id, r.actor, r.route, r.detail, r.user_agent, r.seq]),
        { caption: 'Audit records, newest first', view: 'signins', testid: 'audit-table', empty: 'No record matches the filters.',
          rowAttrs: (row) => ({ class: row[3] === 'failure' || row[3] === 'refused' ? 'row-fail' : null }),
          render: (v, row, col) => {
            const r = bySeq.get(row[12] as number)!;
            switch (col) {
              case 0: return timeCell(v);
              case 1: return r.customer_id ? h('span', {}, appLink(ctx, buildUrl({ name: 'security-customer', id: r.customer_id }), String(v)), ' ',
                filterBtn('customer', r.customer_id, 'filter')) : '–';
              case 2: return filterBtn('event', r.event);
              case 3: return filterBtn('outcome', r.outcome);
              case 5: return filterBtn('provider', r.provider);
              case 6: return filterBtn('client', r.client);
              case 7: return r.flow_id ? appLink(ctx, buildUrl({ name: 'flow', id: r.flow_id }), r.flow_id.slice(0, 12), { title: `Flow ${r.flow_id}` }) : '–';
              // a user agent is long: one line, cut, whole in its title (and in the CSV)
              case 11: return v ? h('span', { class: 'clip', title: String(v) }, String(v)) : '–';
              default: return v === null || v === undefined || v === '' ? '–' : String(v);
            }
          } }));
    };
    const load = async () => {
      more.disabled = true;
      try {
        const a = await ctx.api.get<{ records: AuditRecord[]; next_before: number | null }>('audit', { ...params, before });
        records.push(...(a.records ?? []));
        before = a.next_before;
        more.hidden = before === null;
        draw();
        announce(`${fmtCount(records.length)} audit records shown${before !== null ? '; older ones can be loaded' : ''}.`, 'ok');
      } catch (e) {
        wrap.appendChild(errorBlock(e, () => void load()));
      } finally {
        more.disabled = false;
      }
    };
    more.addEventListener('click', () => void load());
    await load();
    return [h('p', { class: 'muted' }, 'Click an event, outcome, provider, address or customer to filter by it.'), wrap, more];
  });
}

interface Flow { complete?: boolean; flow_id: string; steps: { seq: number; time: string; event: string; outcome: string; reason: string | null; provider: string | null; ms_since_start: number }[]; customer_id: string | null; customer_name: string | null }

export async function flowView(ctx: ViewCtx): Promise<void> {
  const id = ctx.route.id!;
  ctx.main.appendChild(pageHead(ctx, 'Sign-in flow', 'view-flow', 'Every step of one sign-in (start → provider → callback → token check → session) with its timing and outcome.'));
  await section(ctx.main, `Flow ${id}`, 'flow-steps', async () => {
    const fl = await ctx.api.get<Flow>(apiPath('audit', 'flow', id));
    return [
      fl.complete === false ? h('p', { class: 'muted' }, 'The search for this flow stopped at its bound: older steps may be missing.') : '',
      h('p', {}, 'Customer: ', fl.customer_id ? appLink(ctx, buildUrl({ name: 'security-customer', id: fl.customer_id }), personLabel(fl.customer_name, null, fl.customer_id)) : 'none (the flow did not sign anyone in)'),
      dataTable(['Step', 'Time', 'Event', 'Outcome', 'Reason', 'Provider', 'Since start (ms)', 'Seq'],
        fl.steps.map((s, i) => [i + 1, s.time, s.event, s.outcome, s.reason, s.provider, s.ms_since_start, s.seq]),
        { caption: 'Flow steps', view: 'flow', testid: 'flow-table', rowAttrs: (r) => ({ class: r[3] === 'failure' ? 'row-fail' : null }),
          render: (v, _r, c) => (c === 1 ? timeCell(v) : v === null || v === '' ? '–' : String(v)) }),
      h('p', {}, appLink(ctx, buildUrl({ name: 'signins' }, {}), '← All sign-in activity')),
    ];
  });
}
