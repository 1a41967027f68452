// The sign-in screen: one button per provider the gateway offers staff (GET providers), each a
// plain link to /.console/login/{provider} with return_to (the page the person asked for).

import { h } from '../dom';
import { safeReturnTo } from '../urlstate';
import { type ViewCtx, pageHead, errorBlock } from './common';

interface Provider { name: string; label: string }

export async function signInView(ctx: ViewCtx): Promise<void> {
  ctx.main.appendChild(pageHead(ctx, 'Sign in to the console', 'view-signin',
    'The console is for staff: marketers, security analysts and administrators. Sign in with your work account.'));
  const box = h('div', { class: 'signin', 'data-testid': 'providers' }, h('p', { class: 'muted' }, 'Loading sign-in options…'));
  ctx.main.appendChild(box);
  const returnTo = safeReturnTo(ctx.filters.return_to);
  const load = async () => {
    try {
      const r = await ctx.api.get<{ providers: Provider[] }>('providers');
      const list = Array.isArray(r.providers) ? r.providers : [];
      box.replaceChildren(...(list.length === 0
        ? [h('p', {}, 'No sign-in provider is configured for the console.')]
        : list.map((p) => h('a', {
            class: 'btn', 'data-testid': `login-${p.name}`,
            href: `/.console/login/${encodeURIComponent(p.name)}?return_to=${encodeURIComponent(returnTo)}`,
          }, `Continue with ${p.label || p.name}`))),
        h('p', { class: 'muted' }, 'Signing in to the console makes a staff session only: it records no touchpoint and creates no customer.'));
    } catch (e) {
      box.replaceChildren(errorBlock(e, load));
    }
  };
  await load();
}
