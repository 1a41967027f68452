/* TEMPORARY: replaced by the front-end build at merge (console/ generates the real table). */
#include "console_assets.h"

static const char index_html[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>journeygate console</title></head>\n"
    "<body><main><h1>journeygate console</h1><p>The front end is built separately.</p></main></body></html>\n";

const console_asset_t console_assets[] = {
    {"index.html", "text/html; charset=utf-8", (const unsigned char *)index_html, sizeof(index_html) - 1},
};
const size_t console_num_assets = sizeof(console_assets) / sizeof(console_assets[0]);
