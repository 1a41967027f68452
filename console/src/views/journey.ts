// Journey: one customer's touchpoints in time order, one lane per channel, with channel switches,
// visit starts (and their attribution), stage changes and anonymous touchpoints (recorded before
// sign-in, joined at sign-in) marked. Pages of 500 arrive through the `next` cursor and are drawn
// as they come (a fragment per page, a yield between pages), so 10,000 touchpoints never stall
// the page. No short default window: the whole journey, browsable by day.

import { h, announce } from '../dom';
import { apiPath } from '../api';
import { buildUrl } from '../urlstate';
import { fmtTime, fmtCount } from '../format';
import { JourneyLayout, pageJourney, type LaneRow, type JourneyPage } from '../journey';
import { type ViewCtx, pageHead, errorBlock, appLink, personLabel } from './common';
import type { Profile } from './customers';

const PAGE = 500;

function attribution(tp: LaneRow['tp']): string {
  const parts: string[] = [];
  if (tp.utm_source || tp.utm_medium || tp.utm_campaign)
    parts.push(['utm', tp.utm_source, tp.utm_medium, tp.utm_campaign].filter(Boolean).join(' / '));
  if (tp.referrer_host) parts.push(`from ${tp.referrer_host}`);
  if (tp.click_id) parts.push('ad click');
  return parts.join(', ');
}

function rowEl(r: LaneRow): HTMLElement {
  const tp = r.tp;
  const badges = h('span', { class: 'badges' },
    r.visitStart ? h('span', { class: 'badge visit', 'data-mark': 'visit-start' }, 'visit start' + (attribution(tp) ? ': ' + attribution(tp) : '')) : null,
    r.switchedFrom ? h('span', { class: 'badge switch', 'data-mark': 'channel-switch' }, `switched from ${r.switchedFrom}`) : null,
    r.stageLabel ? h('span', { class: 'badge stage', 'data-mark': 'stage' }, `stage: ${r.stageLabel}`) : null,
    r.anonymous ? h('span', { class: 'badge anon', 'data-mark': 'anonymous' }, 'anonymous, joined at sign-in') : null);
  const box = h('div', { class: 'tp' + (r.anonymous ? ' anon' : ''), style: `grid-column:${r.lane + 2}` },
    h('span', { class: 'tp-name' }, tp.touchpoint || '(touchpoint)'),
    h('span', { class: 'tp-meta' }, [tp.channel, tp.device, tp.provider, tp.route].filter(Boolean).join(' · ')),
    badges);
  return h('li', {
    class: 'jrow' + (r.visitStart ? ' visit-start' : '') + (r.switchedFrom ? ' switch' : ''),
    'data-id': tp.id, 'data-channel': tp.channel, 'data-lane': r.lane,
    'data-anonymous': String(r.anonymous), 'data-visit-start': String(r.visitStart),
  }, h('time', { class: 'jtime', datetime: tp.occurred_at }, fmtTime(tp.occurred_at).slice(11, 19)), box);
}

export async function journeyView(ctx: ViewCtx): Promise<void> {
  const id = ctx.route.id!;
  ctx.main.appendChild(pageHead(ctx, 'Customer journey', 'view-journey',
    'Every touchpoint in time order, one lane per channel. Visits group touchpoints (30 minutes without one on that channel and device, or a new campaign click); they do not cut the journey.'));
  const who = h('p', { class: 'person-line', 'data-testid': 'journey-customer' }, 'Customer: ', h('code', {}, id));
  ctx.main.appendChild(who);
  // the name and email, not only the id (the profile read is audited like the journey's)
  ctx.api.get<Profile>(apiPath('customers', id)).then((p) => {
    if (ctx.gone()) return;
    who.replaceChildren('Customer: ', appLink(ctx, buildUrl({ name: 'profile', id }), personLabel(p.name, p.email, p.id)), ' ', h('code', { class: 'muted' }, p.id));
  }).catch(() => { /* the journey itself says what failed */ });

  const progress = h('p', { class: 'muted', 'data-testid': 'journey-progress', 'aria-live': 'polite' }, 'Loading…');
  const stopBtn = h('button', { type: 'button', class: 'small', 'data-testid': 'journey-stop' }, 'Stop loading');
  const moreBtn = h('button', { type: 'button', class: 'small', hidden: true, 'data-testid': 'journey-more' }, 'Load the rest');
  const jump = h('select', { id: 'jump-day', disabled: true }, h('option', { value: '' }, 'Jump to a day…'));
  const legend = h('p', { class: 'legend muted' },
    h('span', { class: 'badge visit' }, 'visit start'), ' ', h('span', { class: 'badge switch' }, 'channel switch'), ' ',
    h('span', { class: 'badge stage' }, 'stage change'), ' ', h('span', { class: 'badge anon' }, 'anonymous, joined at sign-in'));
  ctx.main.appendChild(h('div', { class: 'filters' },
    h('div', { class: 'field' }, h('label', { for: 'jump-day' }, 'Day'), jump),
    h('div', { class: 'field field-btn' }, stopBtn), h('div', { class: 'field field-btn' }, moreBtn),
    h('div', { class: 'field field-btn' }, h('a', { class: 'btn inline small', href: `/.console/api/export/touchpoints.csv?customer=${encodeURIComponent(id)}` }, 'Export CSV'))));
  ctx.main.appendChild(legend);

  const lanesHead = h('div', { class: 'jhead', 'aria-hidden': 'true' }, h('span', {}, 'Time (UTC)'));
  const list = h('ol', { class: 'jlist', 'aria-label': 'Touchpoints in time order' });
  const timeline = h('div', { class: 'timeline', 'data-testid': 'journey-timeline', 'data-count': 0, 'data-lanes': '', 'data-complete': 'false' }, lanesHead, list);
  ctx.main.appendChild(h('div', { class: 'timeline-scroll' }, timeline));

  const layout = new JourneyLayout();
  let stopped = false;
  let cursor: string | null = null;
  let lanesShown = 0;
  stopBtn.addEventListener('click', () => { stopped = true; });
  jump.addEventListener('change', () => {
    const el = jump.value ? list.querySelector(`li[data-day="${jump.value}"]`) : null;
    if (el) { (el as HTMLElement).scrollIntoView({ block: 'start' }); (el as HTMLElement).focus(); }
  });

  const onRows = (rows: LaneRow[], l: JourneyLayout, more: boolean) => {
    if (ctx.gone()) return;
    while (lanesShown < l.lanes.length) lanesHead.appendChild(h('span', { class: 'lane-name', 'data-lane': lanesShown }, l.lanes[lanesShown++]));
    timeline.style.setProperty('--lanes', String(Math.max(1, l.lanes.length)));
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      if (r.newDay) {
        frag.appendChild(h('li', { class: 'jday', 'data-day': r.newDay, tabindex: -1 }, h('h2', { class: 'jday-h' }, r.newDay)));
        jump.appendChild(h('option', { value: r.newDay }, r.newDay));
        jump.disabled = false;
      }
      frag.appendChild(rowEl(r));
    }
    list.appendChild(frag);
    timeline.setAttribute('data-count', String(l.count));
    timeline.setAttribute('data-lanes', l.lanes.join(','));
    progress.textContent = `${fmtCount(l.count)} touchpoints on ${l.lanes.length} channel${l.lanes.length === 1 ? '' : 's'}${more ? ' — loading more…' : '.'}`;
  };
  const fetchPage = (after: string | null) =>
    ctx.api.get<JourneyPage>(apiPath('customers', id, 'journey'), { after, limit: PAGE });

  const run = async () => {
    stopped = false;
    moreBtn.hidden = true;
    stopBtn.hidden = false;
    try {
      const r = await pageJourney(fetchPage, onRows, { layout, after: cursor, stop: () => stopped || ctx.gone() });
      if (ctx.gone()) return;
      cursor = r.next;
      stopBtn.hidden = true;
      if (cursor) {
        moreBtn.hidden = false;
        announce(`Loading stopped after ${fmtCount(layout.count)} touchpoints.`);
      } else {
        timeline.setAttribute('data-complete', 'true');
        if (layout.count === 0) list.appendChild(h('li', { class: 'muted' }, 'No touchpoint recorded for this customer.'));
        announce(`Journey loaded: ${fmtCount(layout.count)} touchpoints.`, 'ok');
      }
    } catch (e) {
      stopBtn.hidden = true;
      ctx.main.appendChild(errorBlock(e, () => void run()));
    }
  };
  moreBtn.addEventListener('click', () => void run());
  await run();
}
