// What every view gets (the context), and the controls several views share: the period picker,
// the channel / stage filters, the error block with a retry.

import type { Api, Me } from '../api';
import { ApiError, errorText } from '../api';
import type { Filters, Route } from '../urlstate';
import { h, field, announce } from '../dom';
import { isDay, lastDays, periodDays } from '../format';

export interface ViewCtx {
  api: Api;
  me: Me;
  route: Route;
  filters: Filters;
  main: HTMLElement;
  /** go to a URL of this app (pushState), re-rendering */
  navigate: (url: string, replace?: boolean) => void;
  /** the same route with new filters (kept in the URL) */
  setFilters: (f: Filters, replace?: boolean) => void;
  /** true once the person left this view (stop background work) */
  gone: () => boolean;
}

export type View = (ctx: ViewCtx) => Promise<void>;

export const STAGES = ['need', 'research', 'select', 'convert', 'own', 'loyalty', 'advocacy'];

/** The heading and landmark every screen has (stable for end-to-end tests). */
export function pageHead(ctx: ViewCtx, title: string, testid: string, intro?: string): HTMLElement {
  document.title = `${title} · journeygate console`;
  ctx.main.setAttribute('data-testid', testid);
  ctx.main.setAttribute('aria-labelledby', 'page-title');
  return h('div', { class: 'page-head' }, h('h1', { id: 'page-title' }, title), intro ? h('p', { class: 'muted' }, intro) : null);
}

/** The period picker: from/to dates (UTC) plus presets; submits into the URL. */
export function periodForm(ctx: ViewCtx, extra: HTMLElement[] = [], extraKeys: string[] = []): HTMLElement {
  const def = lastDays(30);
  const from = h('input', { type: 'date', name: 'from', value: ctx.filters.from ?? def.from, required: true });
  const to = h('input', { type: 'date', name: 'to', value: ctx.filters.to ?? def.to, required: true });
  const presets = h('div', { class: 'presets', role: 'group', 'aria-label': 'Preset periods' },
    [7, 30, 90].map((n) => h('button', { type: 'button', class: 'small', onclick: () => {
      const p = lastDays(n);
      from.value = p.from; to.value = p.to;
      submit();
    } }, `Last ${n} days`)));
  const form = h('form', { class: 'filters', 'aria-label': 'Filters', 'data-testid': 'filters' },
    field('From (UTC)', from), field('To (UTC)', to), ...extra,
    h('div', { class: 'field field-btn' }, h('button', { type: 'submit' }, 'Apply')), presets);
  function submit() {
    if (!isDay(from.value) || !isDay(to.value) || periodDays(from.value, to.value) === 0) {
      announce('Choose a valid period: "From" on or before "To".', 'error');
      return;
    }
    if (periodDays(from.value, to.value) > 731) {
      announce('A period is at most 731 days.', 'error');
      return;
    }
    const f: Filters = { ...ctx.filters, from: from.value, to: to.value };
    for (const k of extraKeys) {
      const el = form.elements.namedItem(k) as HTMLInputElement | HTMLSelectElement | null;
      if (el) { if (el.value) f[k] = el.value; else delete f[k]; }
    }
    ctx.setFilters(f);
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  return form;
}

/** DOMAIN.md's channels, offered when the gateway's own list cannot be read. */
export const DEFAULT_CHANNELS = ['web', 'mobile-app', 'api', 'contact-centre', 'store', 'email', 'social', 'iot'];

let channelList: Promise<string[]> | null = null;

/**
 * The channels this gateway knows (its routes' and its ingested touchpoints' channels, from
 * `inventory`), sorted; asked once per page load. Channel names are the configuration's and the
 * senders' own ("mobile-app", "contact-centre"), so a filter offers them as they are recorded.
 */
export function knownChannels(ctx: ViewCtx): Promise<string[]> {
  if (!channelList) {
    channelList = ctx.api.get<{ routes?: { channel?: string }[]; ingested?: { channel?: string }[] }>('inventory')
      .then((inv) => {
        const names = new Set<string>();
        for (const r of [...(inv.routes ?? []), ...(inv.ingested ?? [])]) if (typeof r.channel === 'string' && r.channel) names.add(r.channel);
        return names.size ? [...names].sort() : DEFAULT_CHANNELS;
      })
      .catch(() => { channelList = null; return DEFAULT_CHANNELS; });
  }
  return channelList;
}

/** A <select> with an "all" first option. */
export function select(name: string, options: string[], value: string | undefined, allLabel: string): HTMLSelectElement {
  const s = h('select', { name },
    h('option', { value: '' }, allLabel),
    options.map((o) => h('option', { value: o, selected: o === value }, o)));
  if (value && !options.includes(value)) s.appendChild(h('option', { value, selected: true }, value));
  return s;
}

/** An error shown in the view (role=alert announces it once); 503 and network errors get a Retry button. */
export function errorBlock(e: unknown, retry?: () => void): HTMLElement {
  const text = errorText(e);
  const again = e instanceof ApiError && (e.status === 503 || e.status === 0) && retry;
  return h('div', { class: 'error-box', role: 'alert', 'data-testid': 'error' },
    h('p', {}, text),
    again ? h('button', { type: 'button', onclick: retry }, 'Retry') : null);
}

/** Loads data for a section, showing a placeholder, then the content or the error; load gets a reload. */
export async function section(parent: HTMLElement, title: string, testid: string, load: (reload: () => Promise<void>) => Promise<(HTMLElement | string)[]>, level: 'h2' | 'h3' = 'h2'): Promise<void> {
  const body = h('div', { class: 'section-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const sec = h('section', { class: 'card', 'aria-labelledby': testid + '-h', 'data-testid': testid }, h(level, { id: testid + '-h' }, title), body);
  parent.appendChild(sec);
  const run = async () => {
    body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      body.replaceChildren(...(await load(run)));
    } catch (e) {
      body.replaceChildren(errorBlock(e, run));
    }
  };
  await run();
}

/** A link inside the app (navigates without reloading; a normal link for a new tab). */
export function appLink(ctx: ViewCtx, href: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h('a', { href, ...attrs, onclick: (e: Event) => {
    const me = e as MouseEvent;
    if (me.ctrlKey || me.metaKey || me.shiftKey || me.button !== 0) return;
    e.preventDefault();
    ctx.navigate(href);
  } }, text);
}

/** "Name <email>" for a person, never a bare id alone. */
export function personLabel(name?: string | null, email?: string | null, id?: string | null): string {
  if (name && email) return `${name} <${email}>`;
  if (name || email) return (name || email)!;
  return id ? `(no name or email) ${id}` : '(unknown)';
}
