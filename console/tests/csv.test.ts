import { describe, it, expect } from 'vitest';
import { csvCell, toCsv, csvFileName } from '../src/csv';

describe('CSV', () => {
  it('quotes cells with quotes, commas and newlines (RFC 4180)', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line1\nline2')).toBe('"line1\nline2"');
    expect(csvCell('cr\r')).toBe('"cr\r"');
  });
  it('guards against formula injection (= + - @, tab, CR first)', () => {
    expect(csvCell('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-2+3')).toBe("'-2+3");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\tx')).toBe("'\tx");
    expect(csvCell('a=b')).toBe('a=b');
  });
  it('numbers stay numbers (a negative count is not a formula); empty for null', () => {
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell(0.25)).toBe('0.25');
    expect(csvCell(NaN)).toBe('');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(true)).toBe('true');
  });
  it('builds a document with a header row and CRLF line ends', () => {
    expect(toCsv(['name', 'n'], [['Ana, B', 1], ['=cmd', null]])).toBe('name,n\r\n"Ana, B",1\r\n\'=cmd,\r\n');
  });
  it('file names are safe', () => {
    expect(csvFileName('Sign-ins', 'Audit records, newest “first”')).toBe('sign-ins-audit-records-newest-first.csv');
    expect(csvFileName('', '')).toBe('console-table.csv');
  });
});
