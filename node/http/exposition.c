/*  node_http exposition: the families document in Prometheus's text format (see exposition.h). */
#include "node/http/exposition.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/*  Writes text escaped: a backslash and a line feed always, a double quote in label values. */
static void s_escaped(FILE *out, const char *text, int quotes)
{
    for (const char *c = text; *c; c++) {
        if (*c == '\\')
            fputs("\\\\", out);
        else if (*c == '\n')
            fputs("\\n", out);
        else if (*c == '"' && quotes)
            fputs("\\\"", out);
        else
            fputc(*c, out);
    }
}

static int s_value(FILE *out, const json_t *value)
{
    if (json_is_integer(value)) {
        fprintf(out, "%lld", (long long)json_integer_value(value));
        return 0;
    }
    if (!json_is_real(value))
        return -1;
    fprintf(out, "%.17g", json_real_value(value)); /* finite: jansson holds no NaN or Inf */
    return 0;
}

static int s_sample(FILE *out, const json_t *sample)
{
    const char *name = json_string_value(json_object_get(sample, "name"));
    const json_t *labels = json_object_get(sample, "labels");
    if (!name || (labels && !json_is_object(labels)))
        return -1;
    fputs(name, out);
    if (labels && json_object_size(labels)) {
        const char *key, *sep = "{";
        const json_t *v;
        json_object_foreach((json_t *)labels, key, v)
        {
            if (!json_is_string(v))
                return -1;
            fprintf(out, "%s%s=\"", sep, key);
            s_escaped(out, json_string_value(v), 1);
            fputc('"', out);
            sep = ",";
        }
        fputc('}', out);
    }
    fputc(' ', out);
    if (s_value(out, json_object_get(sample, "value")) != 0)
        return -1;
    fputc('\n', out);
    return 0;
}

static int s_family(FILE *out, const json_t *family)
{
    const char *name = json_string_value(json_object_get(family, "name"));
    const char *type = json_string_value(json_object_get(family, "type"));
    const char *help = json_string_value(json_object_get(family, "help"));
    const json_t *samples = json_object_get(family, "samples");
    if (!name || !type || !help || !json_is_array(samples))
        return -1;
    fprintf(out, "# HELP %s ", name);
    s_escaped(out, help, 0);
    fprintf(out, "\n# TYPE %s %s\n", name, type);
    size_t i;
    const json_t *sample;
    json_array_foreach(samples, i, sample)
    {
        if (s_sample(out, sample) != 0)
            return -1;
    }
    return 0;
}

char *node_http_exposition(const char *json, size_t *len_p)
{
    json_t *doc = json_loads(json, 0, NULL);
    const json_t *families = json_object_get(doc, "families");
    char *text = NULL;
    size_t len = 0;
    FILE *out = json_is_array(families) ? open_memstream(&text, &len) : NULL;
    int rc = out ? 0 : -1;
    size_t i;
    const json_t *family;
    if (out) {
        json_array_foreach(families, i, family)
        {
            if ((rc = s_family(out, family)) != 0)
                break;
        }
        if (fclose(out) != 0)
            rc = -1;
    }
    json_decref(doc);
    if (rc != 0) {
        free(text);
        return NULL;
    }
    *len_p = len;
    return text;
}
