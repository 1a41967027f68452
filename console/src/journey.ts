// A customer's journey as lanes: one lane per channel (in order of first appearance), each
// touchpoint placed in its channel's lane, with channel switches, visit starts, stage changes and
// anonymous (joined at sign-in) touchpoints marked. Pages of the API (500 at a time, `next`
// cursor) are merged in as they arrive, so the timeline renders incrementally.

export interface Touchpoint {
  id: string;
  occurred_at: string;
  channel: string;
  touchpoint: string;
  stage?: string | null;
  route?: string | null;
  method?: string | null;
  status?: number | null;
  device?: string | null;
  provider?: string | null;
  source?: string | null;
  visit_id?: string | null;
  visit_start?: boolean | null;
  referrer_host?: string | null;
  utm_source?: string | null;
  utm_medium?: string | null;
  utm_campaign?: string | null;
  click_id?: string | null;
  anonymous?: boolean;
  [k: string]: unknown;
}

export interface JourneyPage {
  touchpoints: Touchpoint[];
  next: string | null;
}

export interface LaneRow {
  tp: Touchpoint;
  lane: number; // index into lanes
  switchedFrom: string | null; // the previous touchpoint's channel when it differs
  visitStart: boolean;
  stageLabel: string | null; // set when the stage differs from the previous touchpoint's
  anonymous: boolean;
  newDay: string | null; // "YYYY-MM-DD" when this touchpoint starts a new UTC day
}

/** Incremental layout state: feed it pages in order, get the rows to append. */
export class JourneyLayout {
  readonly lanes: string[] = [];
  private seen = new Set<string>();
  private lastChannel: string | null = null;
  private lastStage: string | null = null;
  private lastDay: string | null = null;
  private lastTime = '';
  count = 0;
  outOfOrder = 0;

  /** The lane of a channel, adding one the first time it appears. */
  laneOf(channel: string): number {
    let i = this.lanes.indexOf(channel);
    if (i < 0) {
      this.lanes.push(channel);
      i = this.lanes.length - 1;
    }
    return i;
  }

  /**
   * Lays out the touchpoints of one page. Touchpoints already laid out (same id, when a cursor
   * repeats the last one) are skipped; the API answers in time order, and a page that is not is
   * counted (outOfOrder) rather than silently reordered across pages already on screen.
   */
  add(page: Touchpoint[]): LaneRow[] {
    const rows: LaneRow[] = [];
    for (const tp of page) {
      if (!tp || typeof tp.id !== 'string' || this.seen.has(tp.id)) continue;
      this.seen.add(tp.id);
      const channel = tp.channel || '(unknown)';
      const lane = this.laneOf(channel);
      const stage = tp.stage || null;
      const day = (tp.occurred_at || '').slice(0, 10);
      if (tp.occurred_at < this.lastTime) this.outOfOrder++;
      else this.lastTime = tp.occurred_at;
      rows.push({
        tp,
        lane,
        switchedFrom: this.lastChannel !== null && this.lastChannel !== channel ? this.lastChannel : null,
        visitStart: tp.visit_start === true,
        stageLabel: stage !== null && stage !== this.lastStage ? stage : null,
        anonymous: tp.anonymous === true,
        newDay: day && day !== this.lastDay ? day : null,
      });
      this.lastChannel = channel;
      if (stage !== null) this.lastStage = stage;
      if (day) this.lastDay = day;
      this.count++;
    }
    return rows;
  }
}

/**
 * Pages through a journey: calls fetchPage(cursor) until `next` is null or `stop()` says so, hands
 * each page's new rows to onRows, and yields to the browser between pages (so the page never
 * stalls while 10,000 touchpoints arrive). Resumes from opts.after with opts.layout. Returns the
 * layout and the cursor to resume from (null at the end).
 */
export async function pageJourney(
  fetchPage: (after: string | null) => Promise<JourneyPage>,
  onRows: (rows: LaneRow[], layout: JourneyLayout, more: boolean) => void,
  opts: { stop?: () => boolean; yieldFn?: () => Promise<void>; maxPages?: number; layout?: JourneyLayout; after?: string | null } = {},
): Promise<{ layout: JourneyLayout; next: string | null }> {
  const layout = opts.layout ?? new JourneyLayout();
  const yieldFn = opts.yieldFn ?? (() => new Promise<void>((r) => setTimeout(r, 0)));
  const maxPages = opts.maxPages ?? 1000;
  let cursor: string | null = opts.after ?? null;
  const used = new Set<string>(cursor ? [cursor] : []);
  for (let i = 0; i < maxPages; i++) {
    const page = await fetchPage(cursor);
    const rows = layout.add(Array.isArray(page.touchpoints) ? page.touchpoints : []);
    // a cursor that repeats would loop forever: treat it as the end
    const next = typeof page.next === 'string' && page.next && !used.has(page.next) ? page.next : null;
    onRows(rows, layout, next !== null);
    cursor = next;
    if (next === null || opts.stop?.()) break;
    used.add(next);
    await yieldFn();
  }
  return { layout, next: cursor };
}
