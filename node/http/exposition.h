/*  node_http exposition: the metric families node/api/observe.c gathers, as JSON
 *  ({"families": [{name, type, help, samples: [{name, labels: {...}, value}]}]}), written in
 *  Prometheus's text exposition format 0.0.4: per family `# HELP` and `# TYPE`, then one line
 *  per sample, `name{label="value",...} value`.
 *
 *  Escaping, as the format asks: in HELP text a backslash and a line feed (\\ and \n); in label
 *  values those and the double quote (\"). Names are written as given: observe.c makes them,
 *  never a client. Values: integers as integers, reals with 17 significant digits (always
 *  finite: JSON, and jansson, hold no NaN or infinity).
 */
#ifndef NODE_HTTP_EXPOSITION_H
#define NODE_HTTP_EXPOSITION_H

#include <stddef.h>

/*  The text for a families document, malloc'd (its length in *len_p), or NULL if json is not
 *  one (or memory ran out). */
char *node_http_exposition(const char *json, size_t *len_p);

#endif
