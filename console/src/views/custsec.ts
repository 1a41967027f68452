// A customer's security page: sessions (cookie and bearer) with revoke one / all, identities
// with unlink and erase (role admin), each behind a confirmation and announced when done; the
// customer's latest audit events. Every action is the signed-in person's, recorded as such.

import { h, dataTable, announce, timeCell } from '../dom';
import { apiPath, errorText } from '../api';
import { buildUrl } from '../urlstate';
import { type ViewCtx, pageHead, section, appLink, personLabel } from './common';
import { identitiesTable, type Identity } from './customers';
import { confirmDialog } from './confirm';
import type { AuditRecord } from './signins';

interface Security {
  customer: { id: string; name: string; email: string };
  sessions: { id: string; kind: 'cookie' | 'bearer'; provider: string; channel: string; device: string; created: string; last_seen: string; expires: string }[];
  identities: Identity[];
  events: AuditRecord[];
}

export async function customerSecurityView(ctx: ViewCtx): Promise<void> {
  const id = ctx.route.id!;
  const isAdmin = ctx.me.roles.includes('admin');
  ctx.main.appendChild(pageHead(ctx, 'Customer security', 'view-customer-security',
    'Sessions, identities and sign-in events of one customer. Revoking, unlinking and erasing are recorded in the audit trail under your name.'));
  const lookup = h('form', { class: 'filters', 'aria-label': 'Open a customer' },
    h('div', { class: 'field' }, h('label', { for: 'sec-id' }, 'Customer id'), h('input', { id: 'sec-id', name: 'id', value: id, maxlength: 64, size: 30, spellcheck: 'false' })),
    h('div', { class: 'field field-btn' }, h('button', { type: 'submit' }, 'Open')));
  lookup.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = (lookup.elements.namedItem('id') as HTMLInputElement).value.trim();
    if (v) ctx.navigate(buildUrl({ name: 'security-customer', id: v }));
  });
  ctx.main.appendChild(lookup);
  const body = h('div', {});
  ctx.main.appendChild(body);

  const act = async (what: string, path: string, payload: unknown, describe: (r: Record<string, unknown>) => string) => {
    try {
      const r = await ctx.api.post<Record<string, unknown>>(apiPath('customers', id, ...path.split('/')), payload);
      announce(describe(r), 'ok');
      return true;
    } catch (e) {
      announce(`${what} failed: ${errorText(e)}`, 'error');
      return false;
    }
  };

  const draw = async () => {
    body.replaceChildren();
    await section(body, 'Customer', 'sec-customer', async () => {
      const s = await ctx.api.get<Security>(apiPath('customers', id, 'security'));
      const c = s.customer;
      // the action right after the kind: on a tablet it stays in view while the times scroll
      const sessions = dataTable(['Kind', 'Action', 'Provider', 'Channel', 'Device', 'Created', 'Last seen', 'Expires', 'Session'],
        s.sessions.map((x) => [x.kind, '', x.provider, x.channel, x.device, x.created, x.last_seen, x.expires, x.id]),
        { caption: 'Sessions', view: 'customer-security', testid: 'sessions-table', empty: 'No live session.',
          render: (v, row, col) => {
            if (col >= 5 && col <= 7) return timeCell(v);
            if (col === 8) return h('code', {}, String(v).slice(0, 12));
            if (col === 1) return h('button', { type: 'button', class: 'small', 'data-testid': 'revoke-session', 'aria-label': `Revoke ${row[0]} session ${String(row[8]).slice(0, 12)}`,
              onclick: async () => {
                if (!(await confirmDialog({ title: 'Revoke this session?', text: `The ${row[0]} session on ${row[4] || 'an unknown device'} ends now; the customer signs in again there.`, confirmLabel: 'Revoke session' }))) return;
                if (await act('Revoking the session', 'sessions/revoke', { session: row[8] }, (r) => `Revoked ${r.revoked} session(s).`)) await draw();
              } }, 'Revoke');
            return v === '' || v === null ? '–' : String(v);
          } });
      const revokeAll = h('button', { type: 'button', 'data-testid': 'revoke-all', disabled: s.sessions.length === 0, onclick: async () => {
        if (!(await confirmDialog({ title: 'Revoke every session?', text: `All ${s.sessions.length} sessions of ${personLabel(c.name, c.email, c.id)} end now, cookie and bearer.`, confirmLabel: 'Revoke all sessions', danger: true }))) return;
        if (await act('Revoking all sessions', 'sessions/revoke', { all: true }, (r) => `Revoked ${r.revoked} session(s).`)) await draw();
      } }, 'Revoke all sessions');
      const unlink = isAdmin ? (i: Identity) => h('button', { type: 'button', class: 'small', 'data-testid': 'unlink-identity', 'aria-label': `Unlink ${i.provider} identity`,
        disabled: s.identities.length < 2, title: s.identities.length < 2 ? 'The last identity cannot be unlinked: erase the customer instead' : undefined,
        onclick: async () => {
          if (!(await confirmDialog({ title: `Unlink ${i.provider}?`, text: `${personLabel(c.name, c.email, c.id)} can no longer sign in with this ${i.provider} account (${i.email || i.subject}); its sessions end.`, confirmLabel: `Unlink ${i.provider}`, danger: true }))) return;
          if (await act('Unlinking', 'unlink', { provider: i.provider }, (r) => `Unlinked ${r.unlinked}; ${r.sessions_ended} session(s) ended.`)) await draw();
        } }, 'Unlink') : undefined;
      const erase = isAdmin ? h('section', { class: 'card danger-zone', 'aria-labelledby': 'er-h', 'data-testid': 'erase' }, h('h3', { id: 'er-h' }, 'Erase this customer'),
        h('p', {}, 'Erasure removes the profile, identities and sessions for good (the audit trail keeps that it happened).'),
        h('button', { type: 'button', class: 'danger', 'data-testid': 'erase-customer', onclick: async () => {
          if (!(await confirmDialog({ title: 'Erase this customer?', text: `${personLabel(c.name, c.email, c.id)} is erased: profile, identities and sessions. This cannot be undone.`, confirmLabel: 'Erase customer', danger: true, typeToConfirm: c.id }))) return;
          if (await act('Erasing', 'erase', { confirm: c.id }, (r) => `Customer erased; ${r.sessions_ended} session(s) ended.`)) {
            body.replaceChildren(h('p', { 'data-testid': 'erased' }, `${personLabel(c.name, c.email, c.id)} was erased.`));
          }
        } }, 'Erase customer…')) : null;
      return [
        h('p', { class: 'person-line', 'data-testid': 'sec-person' }, h('strong', {}, personLabel(c.name, c.email, c.id)), ' ', h('code', { class: 'muted' }, c.id), ' ',
          ctx.me.roles.includes('marketer') ? appLink(ctx, buildUrl({ name: 'profile', id: c.id }), 'profile') : null),
        h('h3', {}, 'Sessions'), sessions, h('p', {}, revokeAll),
        h('h3', {}, 'Identities'), identitiesTable(s.identities, 'customer-security', unlink),
        erase ?? h('span'),
        h('h3', {}, 'Latest events'),
        dataTable(['Time', 'Event', 'Outcome', 'Reason', 'Provider', 'Address', 'Actor', 'Flow'],
          s.events.map((r) => [r.time, r.event, r.outcome, r.reason, r.provider, r.client, r.actor, r.flow_id]),
          { caption: 'Latest 100 events', view: 'customer-security', testid: 'sec-events',
            render: (v, _r, col) => (col === 0 ? timeCell(v) : col === 7 && v ? appLink(ctx, buildUrl({ name: 'flow', id: String(v) }), String(v).slice(0, 12)) : v === null || v === '' ? '–' : String(v)) }),
      ];
    });
  };
  await draw();
}
