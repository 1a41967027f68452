// CSV built in the browser from a table a view shows (RFC 4180), with the spreadsheet
// formula-injection guard: a cell that starts with = + - @ (or a tab / carriage return) is
// prefixed with an apostrophe so a spreadsheet shows it as text instead of running it.

export type Cell = string | number | boolean | null | undefined;

/** One cell as CSV text: quoted when it holds a quote, comma, CR or LF; guarded against formulas. */
export function csvCell(v: Cell): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  // numbers are data, never formulas: a negative count stays a number
  if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  if (/[",\r\n]/.test(s)) s = '"' + s.replace(/"/g, '""') + '"';
  return s;
}

/** A whole CSV document: header row first, CRLF line ends (RFC 4180). */
export function toCsv(header: string[], rows: Cell[][]): string {
  const lines = [header.map(csvCell).join(',')];
  for (const r of rows) lines.push(r.map(csvCell).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** A file name for a view's table: letters, digits, dash only. */
export function csvFileName(view: string, table: string): string {
  const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `${clean(view) || 'console'}-${clean(table) || 'table'}.csv`;
}
