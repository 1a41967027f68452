// The console's shell: who is signed in (header, sign-out), the sections their roles open (nav),
// and the client-side router that draws one view per /.console/ path with its filters from the URL.

import './style.css';
import { Api, ApiError, type Me } from './api';
import { parseRoute, parseFilters, buildUrl, type Route, type RouteName } from './urlstate';
import { h, clear, announce } from './dom';
import { disposeCharts } from './chartview';
import { type View, type ViewCtx, errorBlock, pageHead } from './views/common';
import { signInView } from './views/signin';
import { overviewView } from './views/overview';
import { customersView, profileView } from './views/customers';
import { journeyView } from './views/journey';
import { flowsView } from './views/flows';
import { inventoryView } from './views/inventory';
import { exportsView } from './views/exports';
import { signinsView, flowView } from './views/signins';
import { customerSecurityView } from './views/custsec';
import { policiesView } from './views/policies';

const ROUTES: Partial<Record<RouteName, { view: View; role: string; nav?: string }>> = {
  overview: { view: overviewView, role: 'marketer', nav: 'Overview' },
  customers: { view: customersView, role: 'marketer', nav: 'Customers' },
  profile: { view: profileView, role: 'marketer' },
  journey: { view: journeyView, role: 'marketer' },
  flows: { view: flowsView, role: 'marketer', nav: 'Flows' },
  inventory: { view: inventoryView, role: 'marketer', nav: 'Inventory' },
  exports: { view: exportsView, role: 'marketer', nav: 'Exports' },
  signins: { view: signinsView, role: 'security', nav: 'Sign-in activity' },
  flow: { view: flowView, role: 'security' },
  'security-customer': { view: customerSecurityView, role: 'security' },
  policies: { view: policiesView, role: 'security', nav: 'Policies' },
};
const NAV_ORDER: RouteName[] = ['overview', 'customers', 'flows', 'inventory', 'exports', 'signins', 'policies'];

let me: Me | null = null;
let generation = 0;
// a 401 while signed in: the session ended (expired, revoked); show the sign-in screen, once
const api = new Api({ onUnauthorized: () => { if (me) { me = null; queueMicrotask(() => void render()); } } });

function currentUrl(): string {
  return location.pathname + location.search;
}

function navigate(url: string, replace = false): void {
  if (url !== currentUrl()) {
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
  }
  void render(true);
}

function header(): void {
  const top = document.getElementById('top')!;
  clear(top);
  const brand = h('a', { class: 'brand', href: '/.console/' }, 'journeygate', h('span', { class: 'brand-sub' }, ' console'));
  brand.addEventListener('click', (e) => { e.preventDefault(); navigate('/.console/'); });
  top.appendChild(brand);
  if (!me) return;
  if (me.demo) top.appendChild(h('span', { class: 'demo-badge', 'data-testid': 'demo-badge' }, 'Demo persona · sample data'));
  const signOut = h('button', { type: 'button', class: 'small', 'data-testid': 'sign-out' }, 'Sign out');
  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    try {
      await api.logout();
      me = null;
      announce('You are signed out.', 'ok');
      navigate('/.console/signin', true);
    } catch (e) {
      signOut.disabled = false;
      announce(e instanceof ApiError ? `Sign-out failed (${e.status}). Try again.` : 'Sign-out failed. Try again.', 'error');
    }
  });
  top.appendChild(h('div', { class: 'who', 'data-testid': 'who' },
    h('span', { class: 'who-name' }, me.name || me.email || 'Signed in'),
    me.email && me.name ? h('span', { class: 'muted' }, ` ${me.email}`) : null,
    h('span', { class: 'muted' }, ` via ${me.provider}`),
    h('span', { class: 'roles', 'data-testid': 'roles' }, ...me.roles.map((r) => h('span', { class: 'role' }, r))),
    signOut));
}

function nav(active: RouteName): void {
  const el = document.getElementById('nav')!;
  clear(el);
  el.hidden = !me;
  if (!me) return;
  const ul = h('ul', {});
  for (const name of NAV_ORDER) {
    const r = ROUTES[name]!;
    if (!me.roles.includes(r.role)) continue;
    const href = buildUrl({ name });
    const isActive = name === active || (name === 'customers' && (active === 'profile' || active === 'journey'))
      || (name === 'signins' && (active === 'flow' || active === 'security-customer'));
    const a = h('a', { href, 'aria-current': isActive ? 'page' : null, 'data-testid': `nav-${name}` }, r.nav!);
    a.addEventListener('click', (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      navigate(href);
    });
    ul.appendChild(h('li', {}, a));
  }
  el.appendChild(ul);
}

async function render(focus = false): Promise<void> {
  const gen = ++generation;
  disposeCharts();
  const main = document.getElementById('main')!;
  let route: Route = parseRoute(location.pathname);
  announce('');

  if (!me && route.name !== 'signin') {
    try {
      me = await api.me();
    } catch (e) {
      if (gen !== generation) return;
      if (e instanceof ApiError && e.status === 401) {
        history.replaceState(null, '', buildUrl({ name: 'signin' }, { return_to: currentUrl() }));
        route = { name: 'signin' };
      } else if (e instanceof ApiError && e.status === 403) {
        // signed in, but no role's policy allows this person any more (API.md: 403 everywhere, me included)
        header(); nav('notfound'); clear(main);
        main.setAttribute('data-testid', 'view-norole');
        main.appendChild(h('h1', { id: 'page-title' }, 'No console role'));
        main.appendChild(h('p', {}, 'You are signed in, but no console role allows you any more. Ask an administrator, or sign in with another account.'));
        main.appendChild(h('p', {}, h('a', { class: 'btn inline', href: buildUrl({ name: 'signin' }) }, 'Sign in with another account')));
        return;
      } else {
        header(); nav('notfound'); clear(main);
        main.appendChild(h('h1', { id: 'page-title' }, 'The console could not start'));
        main.appendChild(errorBlock(e, () => void render()));
        return;
      }
    }
  }
  if (gen !== generation) return;
  header();
  nav(route.name);
  clear(main);
  main.removeAttribute('data-testid');

  const ctx: ViewCtx = {
    api, me: me!, route, filters: parseFilters(route.name, location.search), main,
    navigate,
    setFilters: (f, replace) => navigate(buildUrl(route, f), replace),
    gone: () => gen !== generation,
  };
  if (route.name === 'signin') {
    await signInView(ctx);
  } else if (route.name === 'home') {
    const first = NAV_ORDER.find((n) => me!.roles.includes(ROUTES[n]!.role));
    if (first) { navigate(buildUrl({ name: first }), true); return; }
    main.appendChild(pageHead(ctx, 'No console role', 'view-norole'));
    main.appendChild(h('p', {}, 'You are signed in, but your roles open no section of the console.'));
  } else {
    const entry = ROUTES[route.name];
    if (!entry) {
      main.appendChild(pageHead(ctx, 'Page not found', 'view-notfound'));
      main.appendChild(h('p', {}, 'No console page has this address. Use the sections above.'));
    } else if (!me!.roles.includes(entry.role)) {
      main.appendChild(pageHead(ctx, 'Not available to your role', 'view-forbidden'));
      main.appendChild(errorBlock(new ApiError(403, 'forbidden', '', entry.role)));
    } else {
      try {
        await entry.view(ctx);
      } catch (e) {
        if (gen !== generation) return;
        if (e instanceof ApiError && e.status === 401) { me = null; void render(); return; }
        main.appendChild(errorBlock(e, () => void render()));
      }
    }
  }
  if (focus && gen === generation) main.focus({ preventScroll: false });
}

window.addEventListener('popstate', () => void render(true));
// a 401 from any view: the session ended; show the sign-in screen with this page to come back to
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason instanceof ApiError && ev.reason.status === 401) {
    ev.preventDefault();
    me = null;
    void render();
  }
});
void render();
