/*
 * journeygate — the console's front end, embedded in the binary: a table of files by path
 * relative to /.console/ ("index.html", "assets/app-1a2b3c4d.js"). The front-end build generates
 * the table (console/); console.c serves it.
 */
#ifndef GW_CONSOLE_ASSETS_H
#define GW_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct console_asset {
    const char *path;         /* relative to /.console/, no leading '/' */
    const char *content_type; /* "text/html; charset=utf-8", "application/javascript", ... */
    const unsigned char *data;
    size_t len;
} console_asset_t;

extern const console_asset_t console_assets[];
extern const size_t console_num_assets;

#endif
