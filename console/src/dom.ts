// Small DOM helpers: elements with text (never innerHTML from data), tables with a CSV download
// built in the browser, and the shared aria-live status region.

import { toCsv, csvFileName, type Cell } from './csv';
import { fmtTime } from './format';

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** An element; attributes named on* with a function become listeners; text is always text. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

let uid = 0;
/** A unique id for label/aria wiring. */
export function newId(prefix = 'id'): string {
  return `${prefix}-${++uid}`;
}

/** Saves text as a file (a CSV built here, in the browser). */
export function download(name: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob(['\ufeff', text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export interface TableOpts {
  caption: string;
  view: string; // names the CSV file
  testid?: string;
  /** how a cell shows (default: its text); return a Node for links and buttons */
  render?: (value: Cell, row: Cell[], col: number) => Child;
  empty?: string;
  rowAttrs?: (row: Cell[], i: number) => Attrs;
}

/** A table with caption and a "Download CSV" button (the CSV holds the raw values shown). */
export function dataTable(header: string[], rows: Cell[][], o: TableOpts): HTMLElement {
  const cap = h('caption', {}, o.caption);
  const table = h('table', { 'data-testid': o.testid },
    cap,
    h('thead', {}, h('tr', {}, header.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: header.length || 1, class: 'muted' }, o.empty ?? 'Nothing to show.'))
      : rows.map((r, i) => h('tr', o.rowAttrs ? o.rowAttrs(r, i) : {},
          r.map((v, j) => (j === 0 ? h('th', { scope: 'row' }, cell(v, r, j, o)) : h('td', { class: typeof v === 'number' ? 'num' : null }, cell(v, r, j, o))))))),
  );
  const btn = h('button', { type: 'button', class: 'small', onclick: () => download(csvFileName(o.view, o.caption), toCsv(header, rows)) },
    'Download CSV');
  btn.setAttribute('aria-label', `Download CSV: ${o.caption}`);
  return h('div', { class: 'table-wrap' }, h('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': `Table: ${o.caption}` }, table), h('div', { class: 'table-tools' }, btn));
}

function cell(v: Cell, row: Cell[], col: number, o: TableOpts): Child {
  if (o.render) return o.render(v, row, col);
  if (v === null || v === undefined) return '–';
  return String(v);
}

/** The page's status region (aria-live): results, errors and progress are announced there. */
export function announce(text: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
  const el = document.getElementById('status');
  if (!el) return;
  el.textContent = text;
  el.className = `status status-${kind}`;
  el.hidden = text === '';
}

/** A labelled control: <label for> + the control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || newId('f');
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: id + '-hint' }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** The one-sentence definition a figure's answer carries ("definition"), shown beside it. */
export function apiDefinition(answer: unknown): HTMLElement | null {
  const d = (answer as { definition?: unknown } | null)?.definition;
  return typeof d === 'string' && d ? h('p', { class: 'definition', 'data-testid': 'definition' }, h('strong', {}, 'Definition: '), d) : null;
}

/** A <details> block of definitions (what each figure means, as the API says). */
export function definitions(defs: Record<string, string> | undefined, title = 'Definitions'): HTMLElement | null {
  if (!defs || Object.keys(defs).length === 0) return null;
  return h('details', { class: 'defs', 'data-testid': 'definitions' }, h('summary', {}, title),
    h('dl', {}, Object.entries(defs).map(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, v)])));
}

/** A time in a table cell: "2026-12-07 23:09:43 UTC" on one line (a narrow column would break it in four). */
export function timeCell(iso: unknown): HTMLElement | string {
  if (typeof iso !== 'string' || !iso) return '–';
  return h('time', { class: 'nowrap', datetime: iso }, fmtTime(iso));
}
