/*
 * journeygate — one CSV cell as every export writes it (the console's exports, `journeygate
 * export --format csv`): RFC 4180 quoting and the spreadsheet formula guard. Pure, no I/O of
 * its own: the caller's sink receives the bytes.
 */
#ifndef GW_CSV_H
#define GW_CSV_H

#include <stddef.h>

/** Receives n bytes of output (not NUL-terminated) for ctx. */
typedef void (*gw_csv_put_fn)(void *ctx, const char *p, size_t n);

/**
 * Writes the cell s (a NUL-terminated string) through put, without a separator. RFC 4180: a cell
 * holding a comma, a quote, CR or LF is quoted and its quotes doubled; with quote_always every
 * cell is quoted, so an empty string ("") differs from an empty cell (s NULL: nothing written).
 * A cell a spreadsheet would take for a formula (starting with = + - @, or a tab or CR that some
 * strip first) gets a leading ' (OWASP's CSV injection guard) and is quoted so the ' is kept as
 * text. Thread-safe.
 */
void gw_csv_cell(const char *s, int quote_always, gw_csv_put_fn put, void *ctx);

#endif
