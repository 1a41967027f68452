// Policies: which policy guards which route (routes × policies), each policy's rules, and
// "explain": the decision for a chosen customer on a chosen route, with the rule that made it.

import { h, dataTable, announce } from '../dom';
import { errorText } from '../api';
import { type ViewCtx, pageHead, section, errorBlock } from './common';

interface Policies {
  policies: { name: string; description: string; rules: { effect: 'allow' | 'deny'; conditions: Record<string, unknown> }[] }[];
  routes: { name: string; host: string; path_prefix: string; auth: string; policy: string | null; channel: string }[];
}
interface Explain {
  decision: 'allow' | 'deny' | 'step_up'; policy: string | null; rule: unknown; explanation: string;
  facts?: Record<string, string | number | boolean | null>;
}

const FACT_LABELS: Record<string, string> = {
  provider: 'Signed in with', email: 'Email', email_verified: 'Email verified', hd: 'Hosted domain (hd)',
  linked_providers: 'Linked providers', channel: 'Channel', method: 'Method', session_age_s: 'Session age (s)',
};

export async function policiesView(ctx: ViewCtx): Promise<void> {
  ctx.main.appendChild(pageHead(ctx, 'Policies', 'view-policies', 'Which policy guards each route, what each policy says, and why a customer is allowed or refused on a route.'));
  let data: Policies | null = null;
  await section(ctx.main, 'Routes × policies', 'routes-policies', async () => {
    data = await ctx.api.get<Policies>('policies');
    const names = data.policies.map((p) => p.name);
    return [dataTable(['Route', 'Host', 'Path', 'Channel', 'Sign-in', ...names],
      data.routes.map((r) => [r.name, r.host || '*', r.path_prefix, r.channel, r.auth, ...names.map((n) => (r.policy === n ? 'applies' : ''))]),
      { caption: 'Routes and the policy each applies', view: 'policies', testid: 'routes-policies-table',
        render: (v, _r, c) => (c >= 5 ? (v ? h('span', { class: 'tick' }, '✓ applies') : h('span', { class: 'sr-only' }, 'no')) : v === '' || v === null ? '–' : String(v)) })];
  });
  await section(ctx.main, 'Policy rules', 'policy-rules', async () => {
    const d = data ?? (await ctx.api.get<Policies>('policies'));
    return d.policies.map((p) => h('article', { class: 'policy', 'data-policy': p.name },
      h('h3', {}, p.name), p.description ? h('p', { class: 'muted' }, p.description) : null,
      h('ol', {}, p.rules.map((r) => h('li', {}, h('span', { class: `effect effect-${r.effect}` }, r.effect), ' ', h('code', { class: 'wrap' }, JSON.stringify(r.conditions)))))));
  });
  await section(ctx.main, 'Explain a decision', 'explain', async () => {
    const d = data ?? (await ctx.api.get<Policies>('policies'));
    const f = ctx.filters;
    const customer = h('input', { id: 'explain-customer', name: 'customer', value: f.customer ?? '', maxlength: 64, size: 30, required: true, spellcheck: 'false' });
    const route = h('select', { id: 'explain-route', name: 'route', required: true },
      h('option', { value: '' }, 'Choose a route'), d.routes.map((r) => h('option', { value: r.name, selected: r.name === f.route }, `${r.name} (${r.host || '*'}${r.path_prefix})`)));
    const out = h('div', { 'aria-live': 'polite', 'data-testid': 'explain-result' });
    const form = h('form', { class: 'filters', 'aria-label': 'Explain' },
      h('div', { class: 'field' }, h('label', { for: 'explain-customer' }, 'Customer id'), customer),
      h('div', { class: 'field' }, h('label', { for: 'explain-route' }, 'Route'), route),
      h('div', { class: 'field field-btn' }, h('button', { type: 'submit' }, 'Explain')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      ctx.setFilters({ customer: customer.value.trim(), route: route.value });
    });
    if (f.customer && f.route) {
      try {
        const x = await ctx.api.get<Explain>('policies/explain', { customer: f.customer, route: f.route });
        out.replaceChildren(h('p', { class: `decision decision-${x.decision}`, 'data-decision': x.decision }, `Decision: ${x.decision.replace('_', '-')}`),
          h('p', { class: 'muted' }, `Policy: ${x.policy ?? '(none)'}`, x.rule !== null && x.rule !== undefined ? `; rule: ${JSON.stringify(x.rule)}` : '; no rule matched (default deny)'),
          x.facts ? h('dl', { class: 'kv', 'data-testid': 'explain-facts' }, Object.entries(x.facts).map(([k, v]) => [
            h('dt', {}, FACT_LABELS[k] ?? k), h('dd', {}, v === null || v === undefined || v === '' ? '–' : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v))])) : '',
          // the gateway's explanation is lines of text (rule by rule): kept as lines
          h('details', { open: true }, h('summary', {}, 'How the decision was reached'), h('pre', { class: 'pre', 'data-testid': 'explain-text' }, x.explanation)));
        announce(`Decision for ${f.route}: ${x.decision}.`, 'ok');
      } catch (e) {
        out.replaceChildren(errorBlock(e));
        announce(errorText(e), 'error');
      }
    }
    return [form, out];
  });
}
