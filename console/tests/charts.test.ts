import { describe, it, expect } from 'vitest';
import { type VolumeBucket, barChart, byDayChart, comparisonChart, transitionsSankey, pathsSankey, funnelChart, volumeChart, reasonsChart, failureReasons } from '../src/charts';

type AnySeries = { type: string; data: unknown[]; links?: { source: string; target: string; value: number }[]; stack?: string; name?: string };
const series = (o: object) => (o as { series: unknown }).series as AnySeries[];

describe('chart option builders', () => {
  it('bar: categories, series and the table agree', () => {
    const s = barChart('t', ['a', 'b'], [{ name: 'x', data: [1, 2] }, { name: 'y', data: [3, 4] }]);
    expect((s.option.xAxis as { data: string[] }).data).toEqual(['a', 'b']);
    expect(series(s.option).map((x) => x.data)).toEqual([[1, 2], [3, 4]]);
    expect(s.table).toEqual({ header: ['', 'x', 'y'], rows: [['a', 1, 3], ['b', 2, 4]] });
    expect(s.attrs).toMatchObject({ chart: 'bar', categories: '2', series: 'x,y', total: '10' });
  });

  it('comparison: this period vs previous', () => {
    const s = comparisonChart('Sign-ins', [{ label: 'google', value: 80, previous: 70 }]);
    expect(series(s.option).map((x) => [x.name, x.data])).toEqual([['This period', [80]], ['Previous period', [70]]]);
  });

  it('by day: stacked per channel, missing days are 0', () => {
    const s = byDayChart('d', [{ day: '2026-11-01', channel: 'web', count: 5 }, { day: '2026-11-03', channel: 'email', count: 2 }, { day: '2026-11-03', channel: 'web', count: 1 }],
      ['2026-11-01', '2026-11-02', '2026-11-03']);
    const ss = series(s.option);
    expect(ss.map((x) => x.name)).toEqual(['email', 'web']);
    expect(ss.every((x) => x.stack === 'total')).toBe(true);
    expect(ss[0].data).toEqual([0, 0, 2]);
    expect(ss[1].data).toEqual([5, 0, 1]);
    expect(s.attrs.total).toBe('8');
  });

  it('transitions Sankey: from-nodes and to-nodes apart (acyclic), zero links left out', () => {
    const s = transitionsSankey({ rows: ['(start)', 'web'], cols: ['web', '(converted)', '(lost)'], counts: [[10, 0, 2], [3, 4, 5]], shares: [[0.83, 0, 0.17], [0.25, 0.33, 0.42]] });
    const links = series(s.option)[0].links!;
    expect(links).toEqual([
      { source: 'from:(start)', target: 'to:web', value: 10 },
      { source: 'from:(start)', target: 'to:(lost)', value: 2 },
      { source: 'from:web', target: 'to:web', value: 3 },
      { source: 'from:web', target: 'to:(converted)', value: 4 },
      { source: 'from:web', target: 'to:(lost)', value: 5 },
    ]);
    expect(s.table.rows[0]).toEqual(['(start)', '→ web', 10]);
    expect(s.attrs).toMatchObject({ chart: 'sankey', links: '5', total: '24' });
  });

  it('paths Sankey: nodes keyed by step, drop-off as a sink, shares in labels, average times in the table', () => {
    const s = pathsSankey({ scope: 'person', started: 80,
      nodes: [{ id: '1_home', step: 1, touchpoint: 'home', customers: 80, share: 1 }, { id: '2_pricing', step: 2, touchpoint: 'pricing', customers: 50, share: 0.625 },
        { id: '2_(drop-off)', step: 2, touchpoint: '(drop-off)', customers: 30, share: 0.375 }],
      links: [{ source: '1_home', target: '2_pricing', customers: 50, avg_seconds: 35.5 }, { source: '1_home', target: '2_(drop-off)', customers: 30, avg_seconds: 0 }] });
    const data = series(s.option)[0].data as { name: string; label: string; itemStyle?: unknown }[];
    expect(data.map((d) => d.name)).toEqual(['1_home', '2_pricing', '2_(drop-off)']);
    expect(data[1].label).toBe('2. pricing (63%)');
    expect(data[2].itemStyle).toBeDefined();
    expect(s.table.header).toEqual(['From', 'To', 'customers', 'Average seconds between']);
    expect(s.table.rows[0]).toEqual(['1. home (100%)', '2. pricing (63%)', 50, 35.5]);
    expect(s.attrs).toMatchObject({ started: '80', scope: 'person', nodes: '3' });
  });

  it('funnel: widths are customers reached, order kept, table has conversions and drop-off', () => {
    const s = funnelChart([{ stage: 'need', reached: 100, overall: 1, step: 1, dropoff: 0 }, { stage: 'research', reached: 60, overall: 0.6, step: 0.6, dropoff: 40 }], 14);
    const f = series(s.option)[0] as AnySeries & { sort: string; max: number };
    expect(f.sort).toBe('none');
    expect(f.max).toBe(100);
    expect(f.data).toEqual([{ name: 'need', value: 100 }, { name: 'research', value: 60 }]);
    expect(s.table.rows[1]).toEqual(['research', 60, 0.6, 0.6, 40]);
    expect(s.attrs).toMatchObject({ entered: '100', reached: '60', steps: '2' });
  });

  it('sign-in volume: success and failure stacked; reasons summed and sorted', () => {
    const b: VolumeBucket[] = [
      { t: '2026-12-06T00:00:00.000Z', success: 10, failure: 2, by_reason: { state_unknown: 1, token_invalid: 1 }, refusals: 3 },
      { t: '2026-12-07T00:00:00.000Z', success: 8, failure: 3, by_reason: { token_invalid: 3 } },
    ];
    const v = volumeChart(b, 'day');
    const ss = series(v.option);
    expect(ss.map((x) => [x.name, x.stack, x.data])).toEqual([
      ['success', 'signins', [10, 8]], ['failure', 'signins', [2, 3]], ['rate-limit refusals', undefined, [3, 0]]]);
    expect((v.option.xAxis as { data: string[] }).data).toEqual(['2026-12-06', '2026-12-07']);
    expect(failureReasons(b)).toEqual([{ reason: 'token_invalid', count: 4 }, { reason: 'state_unknown', count: 1 }]);
    expect(series(reasonsChart(b).option)[0].data).toEqual([4, 1]);
    expect(volumeChart(b, 'hour').table.rows[0][0]).toBe('2026-12-06 00:00');
  });
});
