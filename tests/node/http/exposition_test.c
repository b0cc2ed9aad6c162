/*  Tests of node_http_exposition, the families document in Prometheus's text format: the lines
 *  of each family in order (HELP, TYPE, samples), label values and HELP text escaped as the
 *  format asks, integers and reals written as it reads them; a document that
 *  is not a families document (or has a sample without a name or value) gives NULL.
 */
#include "prop.h"

#include <stdlib.h>
#include <string.h>

#include "node/http/exposition.h"

static void s_expect(const char *json, const char *want)
{
    size_t len = 0;
    char *text = node_http_exposition(json, &len);
    if (!text)
        fail_msg("no exposition for %s", json);
    assert_int_equal(len, strlen(text));
    assert_string_equal(text, want);
    free(text);
}

static void test_families_in_order(void **state)
{
    (void)state;
    s_expect("{\"families\": ["
             "{\"name\": \"a_total\", \"type\": \"counter\", \"help\": \"As.\", \"samples\": ["
             "  {\"name\": \"a_total\", \"labels\": {}, \"value\": 3}]},"
             "{\"name\": \"h\", \"type\": \"histogram\", \"help\": \"H.\", \"samples\": ["
             "  {\"name\": \"h_bucket\", \"labels\": {\"op\": \"PUT\", \"le\": \"0.5\"}, "
             "   \"value\": 1},"
             "  {\"name\": \"h_bucket\", \"labels\": {\"op\": \"PUT\", \"le\": \"+Inf\"}, "
             "   \"value\": 2},"
             "  {\"name\": \"h_sum\", \"labels\": {\"op\": \"PUT\"}, \"value\": 0.75},"
             "  {\"name\": \"h_count\", \"labels\": {\"op\": \"PUT\"}, \"value\": 2}]},"
             "{\"name\": \"empty\", \"type\": \"gauge\", \"help\": \"None yet.\", "
             " \"samples\": []}]}",
             "# HELP a_total As.\n"
             "# TYPE a_total counter\n"
             "a_total 3\n"
             "# HELP h H.\n"
             "# TYPE h histogram\n"
             "h_bucket{op=\"PUT\",le=\"0.5\"} 1\n"
             "h_bucket{op=\"PUT\",le=\"+Inf\"} 2\n"
             "h_sum{op=\"PUT\"} 0.75\n"
             "h_count{op=\"PUT\"} 2\n"
             "# HELP empty None yet.\n"
             "# TYPE empty gauge\n");
}

/*  A scope or member name can hold anything a label value must escape. */
static void test_escaping(void **state)
{
    (void)state;
    s_expect("{\"families\": [{\"name\": \"g\", \"type\": \"gauge\", "
             "\"help\": \"back\\\\slash \\\"quoted\\\"\\nnext line\", \"samples\": ["
             "{\"name\": \"g\", \"labels\": {\"scope\": \"a\\\"b\\\\c\\nd\"}, \"value\": 1}]}]}",
             "# HELP g back\\\\slash \"quoted\"\\nnext line\n"
             "# TYPE g gauge\n"
             "g{scope=\"a\\\"b\\\\c\\nd\"} 1\n");
}

static void test_values(void **state)
{
    (void)state;
    s_expect("{\"families\": [{\"name\": \"v\", \"type\": \"gauge\", \"help\": \"V.\", "
             "\"samples\": ["
             "{\"name\": \"v\", \"labels\": {\"k\": \"big\"}, \"value\": 9223372036854775807},"
             "{\"name\": \"v\", \"labels\": {\"k\": \"neg\"}, \"value\": -5},"
             "{\"name\": \"v\", \"labels\": {\"k\": \"real\"}, \"value\": 0.1},"
             "{\"name\": \"v\", \"labels\": {\"k\": \"tiny\"}, \"value\": 1e-300}]}]}",
             "# HELP v V.\n"
             "# TYPE v gauge\n"
             "v{k=\"big\"} 9223372036854775807\n"
             "v{k=\"neg\"} -5\n"
             "v{k=\"real\"} 0.10000000000000001\n"
             "v{k=\"tiny\"} 1e-300\n");
}

static void test_not_a_families_document(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"families\": {}}",
        "{\"families\": [{\"name\": \"x\", \"type\": \"gauge\", \"samples\": []}]}", /* no help */
        "{\"families\": [{\"name\": \"x\", \"type\": \"gauge\", \"help\": \"X.\", "
        "\"samples\": [{\"labels\": {}, \"value\": 1}]}]}", /* a sample without its name */
        "{\"families\": [{\"name\": \"x\", \"type\": \"gauge\", \"help\": \"X.\", "
        "\"samples\": [{\"name\": \"x\", \"value\": \"1\"}]}]}", /* a value that is text */
        "{\"families\": [{\"name\": \"x\", \"type\": \"gauge\", \"help\": \"X.\", "
        "\"samples\": [{\"name\": \"x\", \"labels\": {\"a\": 1}, \"value\": 1}]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len = 0;
        char *text = node_http_exposition(bad[i], &len);
        if (text)
            fail_msg("an exposition for %s: %s", bad[i], text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_in_order),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_not_a_families_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
