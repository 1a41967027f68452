// Customers: search (email of any identity, customer id, or provider:subject) and the profile
// (Segment's profile explorer: identities with how and when they were linked, channels, devices,
// first/last seen, stages reached, consent). Names and emails always, never a bare id alone.

import { h, dataTable, announce, timeCell } from '../dom';
import { apiPath } from '../api';
import { buildUrl } from '../urlstate';
import { fmtTime } from '../format';
import { type ViewCtx, pageHead, errorBlock, appLink, personLabel, STAGES } from './common';

export interface CustomerSummary {
  id: string; name: string; email: string; providers: string[]; channels: string[];
  first_seen: string; last_seen: string; stage: string | null;
}

export interface Identity {
  provider: string; subject: string; email: string; email_verified: boolean; name: string;
  linked_at: string; linked_by: 'first_sign_in' | 'explicit_link' | 'verified_email' | string; last_login: string;
}

export interface Profile {
  id: string; name: string; email: string; picture?: string | null; created: string; first_seen: string; last_seen: string;
  stage: string | null; stages_reached: string[]; identities: Identity[];
  channels: { channel: string; first_seen: string; last_seen: string }[];
  devices: { device: string; last_seen: string }[];
  consent: unknown;
}

export const LINKED_BY: Record<string, string> = {
  first_sign_in: 'first sign-in (created the customer)',
  explicit_link: 'linked explicitly by the customer',
  verified_email: 'linked automatically by verified email',
};

export async function customersView(ctx: ViewCtx): Promise<void> {
  ctx.main.appendChild(pageHead(ctx, 'Customers', 'view-customers',
    'Find a customer by any email their identities carry (verified or not), a customer id, or provider:subject. Finding never links.'));
  const input = h('input', { type: 'search', id: 'customer-search', name: 'q', value: ctx.filters.q ?? '',
    placeholder: 'email, customer id or google:1234', autocomplete: 'off', spellcheck: 'false', maxlength: 512 });
  const form = h('form', { class: 'filters search', role: 'search', 'aria-label': 'Customer search', 'data-testid': 'customer-search' },
    h('div', { class: 'field grow' }, h('label', { for: 'customer-search' }, 'Search customers'), input),
    h('div', { class: 'field field-btn' }, h('button', { type: 'submit' }, 'Search')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.setFilters({ q: input.value.trim() });
  });
  ctx.main.appendChild(form);
  const results = h('div', { 'data-testid': 'customer-results' });
  ctx.main.appendChild(results);
  const q = ctx.filters.q;
  if (!q) {
    results.appendChild(h('p', { class: 'muted' }, 'Type an email, a customer id or provider:subject, then press Enter.'));
    input.focus();
    return;
  }
  const load = async () => {
    results.replaceChildren(h('p', { class: 'muted' }, 'Searching…'));
    try {
      const r = await ctx.api.get<{ customers: CustomerSummary[] }>('customers', { q, limit: 50 });
      if (ctx.gone()) return;
      const list = r.customers ?? [];
      announce(`${list.length} customer${list.length === 1 ? '' : 's'} found for “${q}”.`, 'ok');
      results.replaceChildren(dataTable(['Customer', 'Email', 'Providers', 'Channels', 'Stage', 'First seen', 'Last seen', 'Customer id'],
        list.map((c) => [c.name || c.email || '(no name or email)', c.email, (c.providers ?? []).join(', '), (c.channels ?? []).join(', '), c.stage ?? '', c.first_seen, c.last_seen, c.id]),
        {
          caption: `Customers matching “${q}”`, view: 'customers', testid: 'customers-table', empty: 'No customer matches.',
          render: (v, row, col) => {
            if (col === 0) return appLink(ctx, buildUrl({ name: 'profile', id: String(row[7]) }), String(v), { 'data-testid': 'customer-link' });
            if (col === 5 || col === 6) return timeCell(v);
            if (col === 7) return h('code', {}, String(v));
            return v === '' || v === null ? '–' : String(v);
          },
        }));
    } catch (e) {
      results.replaceChildren(errorBlock(e, load));
    }
  };
  await load();
}

export async function profileView(ctx: ViewCtx): Promise<void> {
  const id = ctx.route.id!;
  const head = pageHead(ctx, 'Customer profile', 'view-profile');
  ctx.main.appendChild(head);
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  ctx.main.appendChild(body);
  const load = async () => {
    try {
      const p = await ctx.api.get<Profile>(apiPath('customers', id));
      if (ctx.gone()) return;
      body.replaceChildren(...renderProfile(ctx, p));
    } catch (e) {
      body.replaceChildren(errorBlock(e, load));
    }
  };
  await load();
}

function renderProfile(ctx: ViewCtx, p: Profile): HTMLElement[] {
  const who = h('div', { class: 'card person', 'data-testid': 'profile-summary' },
    h('h2', {}, personLabel(p.name, p.email, p.id)),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Customer id'), h('dd', {}, h('code', {}, p.id)),
      h('dt', {}, 'Created'), h('dd', {}, fmtTime(p.created)),
      h('dt', {}, 'First seen'), h('dd', {}, fmtTime(p.first_seen)),
      h('dt', {}, 'Last seen'), h('dd', {}, fmtTime(p.last_seen)),
      h('dt', {}, 'Current stage'), h('dd', {}, p.stage ?? '–'),
      h('dt', {}, 'Consent'), h('dd', { 'data-testid': 'consent' }, p.consent === null || p.consent === undefined ? 'none recorded' : JSON.stringify(p.consent))),
    h('p', { class: 'actions' },
      appLink(ctx, buildUrl({ name: 'journey', id: p.id }), 'View journey', { class: 'btn inline', 'data-testid': 'journey-link' }),
      ctx.me.roles.includes('security') ? appLink(ctx, buildUrl({ name: 'security-customer', id: p.id }), 'Sessions and security', { class: 'btn inline', 'data-testid': 'security-link' }) : null,
      h('a', { class: 'btn inline', href: `/.console/api/export/touchpoints.csv?customer=${encodeURIComponent(p.id)}`, 'data-testid': 'export-customer' }, 'Export touchpoints (CSV)')));
  const reached = new Set(p.stages_reached ?? []);
  const stages = h('section', { class: 'card', 'aria-labelledby': 'st-h', 'data-testid': 'stages-reached' }, h('h2', { id: 'st-h' }, 'Lifecycle stages reached'),
    h('ol', { class: 'stages' }, STAGES.map((s) => h('li', { class: reached.has(s) ? 'reached' : 'not-reached', 'data-stage': s, 'data-reached': String(reached.has(s)) },
      s, h('span', { class: 'sr-only' }, reached.has(s) ? ' (reached)' : ' (not reached)')))));
  return [
    who,
    h('section', { class: 'card', 'aria-labelledby': 'id-h', 'data-testid': 'identities' }, h('h2', { id: 'id-h' }, 'Identities'),
      identitiesTable(p.identities ?? [], 'profile')),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'ch-h', 'data-testid': 'channels' }, h('h2', { id: 'ch-h' }, 'Channels'),
        dataTable(['Channel', 'First seen', 'Last seen'], (p.channels ?? []).map((c) => [c.channel, c.first_seen, c.last_seen]),
          { caption: 'Channels seen', view: 'profile', render: (v, _r, c) => (c === 0 ? String(v) : timeCell(v)) })),
      h('section', { class: 'card', 'aria-labelledby': 'dv-h', 'data-testid': 'devices' }, h('h2', { id: 'dv-h' }, 'Devices'),
        dataTable(['Device', 'Last seen'], (p.devices ?? []).map((d) => [d.device, d.last_seen]),
          { caption: 'Devices seen', view: 'profile', render: (v, _r, c) => (c === 0 ? String(v) : timeCell(v)) }))),
    stages,
  ];
}

/** Identities: provider, the person's name/email there, how and when linked, last sign-in. */
export function identitiesTable(ids: Identity[], view: string, actions?: (i: Identity) => HTMLElement | null): HTMLElement {
  const header = ['Provider', 'Name', 'Email', 'Email verified', 'Linked', 'How linked', 'Last sign-in', 'Subject'];
  if (actions) header.push('Actions');
  return dataTable(header,
    ids.map((i) => [i.provider, i.name, i.email, i.email_verified ? 'yes' : 'no', i.linked_at, i.linked_by, i.last_login, i.subject, ...(actions ? [''] : [])]),
    {
      caption: 'Identities', view, testid: 'identities-table', empty: 'No identity.',
      render: (v, row, col) => {
        if (col === 4 || col === 6) return timeCell(v);
        if (col === 5) return LINKED_BY[String(v)] ?? String(v);
        if (col === 7) return h('code', {}, String(v));
        if (col === 8 && actions) return actions(ids.find((i) => i.provider === row[0] && i.subject === row[7])!);
        return v === '' || v === null || v === undefined ? '–' : String(v);
      },
    });
}

