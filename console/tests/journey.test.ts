import { describe, it, expect } from 'vitest';
import { JourneyLayout, pageJourney, type Touchpoint, type JourneyPage } from '../src/journey';

const tp = (i: number, channel: string, extra: Partial<Touchpoint> = {}): Touchpoint => ({
  id: 't' + i, occurred_at: new Date(Date.UTC(2026, 10, 1) + i * 600000).toISOString(), channel, touchpoint: 'step ' + i, ...extra,
});

describe('journey lane layout', () => {
  it('one lane per channel in order of first appearance; switches, visits, stages, anonymous marked', () => {
    const l = new JourneyLayout();
    const rows = l.add([
      tp(0, 'web', { anonymous: true, visit_start: true, stage: 'need' }),
      tp(1, 'web', { stage: 'need' }),
      tp(2, 'email', { stage: 'research' }),
      tp(3, 'web', { visit_start: true }),
      tp(4, 'mobile_app', { stage: 'research' }),
    ]);
    expect(l.lanes).toEqual(['web', 'email', 'mobile_app']);
    expect(rows.map((r) => r.lane)).toEqual([0, 0, 1, 0, 2]);
    expect(rows.map((r) => r.switchedFrom)).toEqual([null, null, 'web', 'email', 'web']);
    expect(rows.map((r) => r.visitStart)).toEqual([true, false, false, true, false]);
    expect(rows.map((r) => r.stageLabel)).toEqual(['need', null, 'research', null, null]);
    expect(rows.map((r) => r.anonymous)).toEqual([true, false, false, false, false]);
    expect(rows[0].newDay).toBe('2026-11-01');
    expect(rows[1].newDay).toBeNull();
  });

  it('continues across pages: no repeated lane, switch or day at a page boundary; duplicates skipped', () => {
    const l = new JourneyLayout();
    l.add([tp(0, 'web'), tp(1, 'email')]);
    const rows = l.add([tp(1, 'email'), tp(2, 'email'), tp(3, 'web')]);
    expect(rows.map((r) => r.tp.id)).toEqual(['t2', 't3']);
    expect(rows[0].switchedFrom).toBeNull();
    expect(rows[1].switchedFrom).toBe('email');
    expect(rows[0].newDay).toBeNull();
    expect(l.count).toBe(4);
    expect(l.lanes).toEqual(['web', 'email']);
  });

  it('counts a touchpoint out of time order instead of hiding it', () => {
    const l = new JourneyLayout();
    l.add([tp(5, 'web'), tp(2, 'web')]);
    expect(l.outOfOrder).toBe(1);
  });
});

describe('journey paging', () => {
  const journey = Array.from({ length: 10000 }, (_, i) => tp(i, ['web', 'email', 'mobile_app', 'contact_centre'][Math.floor(i / 7) % 4]));
  const server = (limit: number) => async (after: string | null): Promise<JourneyPage> => {
    const start = after === null ? 0 : Number(after);
    const page = journey.slice(start, start + limit);
    return { touchpoints: page, next: start + limit < journey.length ? String(start + limit) : null };
  };

  it('pages through 10,000 touchpoints 500 at a time, yielding between pages, rendering each page as it comes', async () => {
    const cursors: (string | null)[] = [];
    let yields = 0;
    const batches: number[] = [];
    const fetch = server(500);
    const r = await pageJourney(async (after) => { cursors.push(after); return fetch(after); },
      (rows, _l, more) => batches.push(rows.length * (more ? 1 : -1)),
      { yieldFn: async () => { yields++; } });
    expect(r.layout.count).toBe(10000);
    expect(r.next).toBeNull();
    expect(cursors.length).toBe(20);
    expect(cursors[0]).toBeNull();
    expect(cursors[1]).toBe('500');
    expect(yields).toBe(19);
    expect(batches.slice(0, 19).every((n) => n === 500)).toBe(true);
    expect(batches[19]).toBe(-500); // the last page says there is no more
    expect(r.layout.lanes).toEqual(['web', 'email', 'mobile_app', 'contact_centre']);
  });

  it('stops when asked and resumes from the cursor with the same layout', async () => {
    let pages = 0;
    const first = await pageJourney(server(500), () => {}, { stop: () => ++pages >= 3, yieldFn: async () => {} });
    expect(first.layout.count).toBe(1500);
    expect(first.next).toBe('1500');
    const rest = await pageJourney(server(500), () => {}, { layout: first.layout, after: first.next, yieldFn: async () => {} });
    expect(rest.layout.count).toBe(10000);
    expect(rest.next).toBeNull();
  });

  it('ends on a repeating cursor instead of looping', async () => {
    let calls = 0;
    const r = await pageJourney(async () => { calls++; return { touchpoints: [tp(calls, 'web')], next: 'same' }; }, () => {}, { yieldFn: async () => {} });
    expect(calls).toBe(2);
    expect(r.next).toBeNull();
  });
});
