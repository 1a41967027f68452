/*
 * journeygate — the console's built front end (console/: TypeScript built with Vite), embedded in
 * the binary. The build generates the table (console/CMakeLists.txt: npm ci, npm run build, then
 * console/scripts/embed.mjs writes console_assets.c in the build tree from console/dist): one
 * entry per file, path relative to dist ("index.html", "assets/index-abc123.js",
 * "THIRD_PARTY_LICENSES.txt"), its content type by extension, and its bytes. The data is static and
 * read-only for the process's lifetime; console.c serves it under /.console/.
 */
#ifndef GW_CONSOLE_ASSETS_H
#define GW_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct console_asset { const char *path; const char *content_type; const unsigned char *data; size_t len; } console_asset_t;
extern const console_asset_t console_assets[];
extern const size_t console_num_assets;

#endif
