// Number, share, change and period formatting: one place, so every view says figures the same way.

const intFmt = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 0 });

/** An integer count with thousands separators ("12,345"); "–" when unknown. */
export function fmtCount(n: number | null | undefined): string {
  return typeof n === 'number' && Number.isFinite(n) ? intFmt.format(n) : '–';
}

/** A share in [0, 1] as a percentage with one decimal ("42.0%"). */
export function fmtShare(x: number | null | undefined): string {
  return typeof x === 'number' && Number.isFinite(x) ? (x * 100).toFixed(1) + '%' : '–';
}

/** A metric value: shares (keys ending in _share, or values flagged share) as %, else a count. */
export function fmtMetric(key: string, v: number | null | undefined): string {
  return /(_share|_rate)$/.test(key) ? fmtShare(v) : fmtCount(v);
}

export interface Change {
  text: string; // "+20.0%", "−5.0%", "no change", "new" (previous 0), "–"
  direction: 'up' | 'down' | 'flat' | 'none';
}

/**
 * Change of a value against the previous period. Shares change in percentage points ("+4.0 pp"),
 * counts in percent of the previous value; from 0 to more is "new".
 */
export function fmtChange(key: string, value: number, previous: number | null | undefined): Change {
  if (typeof previous !== 'number' || !Number.isFinite(previous) || !Number.isFinite(value))
    return { text: '–', direction: 'none' };
  if (value === previous) return { text: 'no change', direction: 'flat' };
  const dir = value > previous ? 'up' : 'down';
  const sign = dir === 'up' ? '+' : '−';
  if (/(_share|_rate)$/.test(key)) {
    return { text: `${sign}${Math.abs((value - previous) * 100).toFixed(1)} pp`, direction: dir };
  }
  if (previous === 0) return { text: 'new', direction: 'up' };
  return { text: `${sign}${Math.abs(((value - previous) / previous) * 100).toFixed(1)}%`, direction: dir };
}

/** "2026-12-07T23:09:43.123Z" → "2026-12-07 23:09:43 UTC" (the API's times are UTC; so is the screen). */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '–';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

/** Seconds as a short duration: "45 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
export function fmtDuration(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${Math.round(seconds * 10) / 10} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return s ? `${m} min ${s} s` : `${m} min`;
  const h = Math.floor(m / 60), mm = m % 60;
  if (h < 48) return mm ? `${h} h ${mm} min` : `${h} h`;
  const d = Math.floor(h / 24), hh = h % 24;
  return hh ? `${d} d ${hh} h` : `${d} d`;
}

const DAY_MS = 86400000;

/** A UTC day "YYYY-MM-DD" of a Date. */
export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** True for a real calendar day written YYYY-MM-DD. */
export function isDay(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(s + 'T00:00:00Z');
  return !Number.isNaN(d.getTime()) && isoDay(d) === s;
}

/** The last `days` UTC days ending on `today` (both inclusive), as the API's from/to. */
export function lastDays(days: number, today: Date = new Date()): { from: string; to: string } {
  const to = isoDay(today);
  const from = isoDay(new Date(Date.parse(to + 'T00:00:00Z') - (days - 1) * DAY_MS));
  return { from, to };
}

/** Number of days in an inclusive period, or 0 when malformed or reversed. */
export function periodDays(from: string, to: string): number {
  if (!isDay(from) || !isDay(to)) return 0;
  const n = (Date.parse(to + 'T00:00:00Z') - Date.parse(from + 'T00:00:00Z')) / DAY_MS + 1;
  return n >= 1 ? n : 0;
}

/** "2026-11-08 – 2026-12-07 (30 days)". */
export function fmtPeriod(from: string, to: string): string {
  const n = periodDays(from, to);
  return n ? `${from} – ${to} (${n} day${n === 1 ? '' : 's'})` : `${from} – ${to}`;
}
