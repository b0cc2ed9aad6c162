/*  node_http assets: the status page's files (node/http/page/), built into engramd so that it
 *  serves them without reading the disk. The build writes assets.c from the files
 *  (cmake/embed_assets.cmake). */
#ifndef NODE_HTTP_ASSETS_H
#define NODE_HTTP_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path; /* as requested: "/", "/app.js" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} node_http_asset_t;

/*  The asset served at url, or NULL. */
const node_http_asset_t *node_http_asset(const char *url);

#endif
