/*
 * journeygate — policies: declarations shared by the module's own files (not part of the API).
 */
#ifndef POL_INT_H
#define POL_INT_H

#include "gw.h"

#include <stddef.h>

/* Cap on every file the module reads (policy files, emails files); key files use a smaller one. */
#define POL_FILE_MAX_BYTES (1024 * 1024)

/*
 * Reads a whole regular file of at most max_bytes. Never blocks on a FIFO or device: anything but a
 * regular file is refused.
 * On GW_OK, *out is a malloc'ed copy with a NUL appended (the caller frees it with free(); the
 * content itself may hold NULs, *out_len tells its length). Otherwise nothing is allocated and
 * *os_error holds the errno of the failing call, or 0: GW_ENOTFOUND (no such file), GW_EINVAL (not a
 * regular file), GW_ETOOBIG (over max_bytes), GW_EIO (other errors, see *os_error), GW_ENOMEM.
 * Thread-safe.
 */
gw_status_t pol_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len, int *os_error);

/* ASCII case-insensitive comparison, independent of the locale (bytes >= 0x80 compare as they are). */
int pol_ascii_casecmp(const char *a, const char *b);

#endif
