/*
 * journeygate — a CSV cell (csv.h): the one place the exports quote and guard their cells.
 */
#include "csv.h"

#include <string.h>

void gw_csv_cell(const char *s, int quote_always, gw_csv_put_fn put, void *ctx)
{
    int guard, quote;

    if (s == NULL || (s[0] == '\0' && !quote_always))
        return; /* an empty cell */
    guard = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    quote = quote_always || guard || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        put(ctx, s, strlen(s));
        return;
    }
    put(ctx, guard ? "\"'" : "\"", guard ? 2 : 1);
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
        put(ctx, s, (size_t)(q - s));
        put(ctx, "\"\"", 2);
    }
    put(ctx, s, strlen(s));
    put(ctx, "\"", 1);
}
