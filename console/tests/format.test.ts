import { describe, it, expect } from 'vitest';
import { fmtCount, fmtShare, fmtMetric, fmtChange, fmtTime, fmtDuration, lastDays, periodDays, isDay, fmtPeriod } from '../src/format';

describe('formatting', () => {
  it('counts and shares', () => {
    expect(fmtCount(1234567)).toBe('1,234,567');
    expect(fmtCount(undefined)).toBe('–');
    expect(fmtShare(0.42)).toBe('42.0%');
    expect(fmtShare(1)).toBe('100.0%');
    expect(fmtMetric('multi_channel_share', 0.381)).toBe('38.1%');
    expect(fmtMetric('customers_seen', 120)).toBe('120');
  });
  it('change vs the previous period', () => {
    expect(fmtChange('customers_seen', 120, 100)).toEqual({ text: '+20.0%', direction: 'up' });
    expect(fmtChange('touchpoints', 95, 100)).toEqual({ text: '−5.0%', direction: 'down' });
    expect(fmtChange('touchpoints', 100, 100)).toEqual({ text: 'no change', direction: 'flat' });
    expect(fmtChange('new_customers', 5, 0)).toEqual({ text: 'new', direction: 'up' });
    expect(fmtChange('multi_channel_share', 0.42, 0.38)).toEqual({ text: '+4.0 pp', direction: 'up' });
    expect(fmtChange('x', 1, undefined)).toEqual({ text: '–', direction: 'none' });
  });
  it('times and durations', () => {
    expect(fmtTime('2026-12-07T23:09:43.123Z')).toBe('2026-12-07 23:09:43 UTC');
    expect(fmtTime(null)).toBe('–');
    expect(fmtDuration(35.5)).toBe('35.5 s');
    expect(fmtDuration(185)).toBe('3 min 5 s');
    expect(fmtDuration(7800)).toBe('2 h 10 min');
    expect(fmtDuration(3 * 86400 + 4 * 3600)).toBe('3 d 4 h');
    expect(fmtDuration(-1)).toBe('–');
  });
  it('periods (UTC days, both ends inclusive)', () => {
    expect(lastDays(30, new Date('2026-12-07T23:00:00Z'))).toEqual({ from: '2026-11-08', to: '2026-12-07' });
    expect(lastDays(1, new Date('2026-12-07T00:00:00Z'))).toEqual({ from: '2026-12-07', to: '2026-12-07' });
    expect(periodDays('2026-11-08', '2026-12-07')).toBe(30);
    expect(periodDays('2026-12-07', '2026-11-08')).toBe(0);
    expect(periodDays('2024-02-28', '2024-03-01')).toBe(3);
    expect(isDay('2026-02-30')).toBe(false);
    expect(isDay('2026-2-3')).toBe(false);
    expect(fmtPeriod('2026-12-07', '2026-12-07')).toBe('2026-12-07 – 2026-12-07 (1 day)');
  });
});
