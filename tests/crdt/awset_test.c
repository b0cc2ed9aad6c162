/*  Tests of crdt_awset, the add-wins observed-remove set: the canonical use, add wins over a
 *  concurrent remove, a remove never cancels an add it did not observe, an add's data (the
 *  provenance node/ puts there) travels with it through deltas, joins and the codec, and
 *  concurrent adds of one element keep each its own data; over random histories, the
 *  converged members are exactly the adds that no later op on the element (or forget of the
 *  set) had in its causal past, and each member's entries are those adds, data included.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#include "crdt/codec.h"
#include "engram/error.h"
#include "engram/limits.h"

static void test_add_remove_members(void **state)
{
    (void)state;
    crdt_scope_t *s = crdt_scope_new(1);
    /* Each add carries data: node/ puts the add's provenance there. */
    assert_int_equal(crdt_awset_add(s, "tools", "search", "p1", 2, NULL), 0);
    assert_int_equal(crdt_awset_add(s, "tools", "browse", "p1", 2, NULL), 0);
    assert_int_equal(crdt_awset_add(s, "tools", "search", "p2", 2, NULL),
                     0); /* re-add: still one */
    assert_int_equal(crdt_awset_remove(s, "tools", "browse", NULL), 0);
    const char **members;
    size_t n;
    assert_int_equal(crdt_awset_members(s, "tools", &members, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(members[0], "search");
    free(members);
    assert_int_equal(crdt_scope_entries(s), 1); /* the re-add replaced the first dot */
    crdt_entry_view_t *entries;
    assert_int_equal(crdt_awset_entries(s, "tools", "search", &entries, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(entries[0].elem, "search");
    assert_int_equal(entries[0].len, 2);
    assert_memory_equal(entries[0].data, "p2", 2);
    free(entries);
    assert_int_equal(crdt_awset_entries(s, "tools", "browse", &entries, &n), ENGRAM_ENOTFOUND);
    assert_int_equal(crdt_awset_remove(s, "tools", "search", NULL), 0);
    assert_int_equal(crdt_awset_members(s, "tools", &members, &n), ENGRAM_ENOTFOUND);
    crdt_scope_destroy(&s);
}

/*  A and B both hold x. A removes it while B concurrently re-adds it: x survives. */
static void test_add_wins(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d = NULL, *rm = NULL, *add = NULL;
    assert_int_equal(crdt_awset_add(a, "s", "x", NULL, 0, &d), 0);
    assert_int_equal(crdt_scope_join(b, d), 0);
    assert_int_equal(crdt_awset_remove(a, "s", "x", &rm), 0);
    assert_int_equal(crdt_awset_add(b, "s", "x", NULL, 0, &add), 0);
    assert_int_equal(crdt_scope_join(a, add), 0);
    assert_int_equal(crdt_scope_join(b, rm), 0);
    assert_true(crdt_awset_contains(a, "s", "x"));
    assert_true(crdt_awset_contains(b, "s", "x"));
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&rm);
    crdt_scope_destroy(&add);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

/*  B adds x without A knowing; A's remove of its own x cannot cancel B's add. */
static void test_remove_keeps_unobserved_add(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *rm = NULL, *add = NULL;
    assert_int_equal(crdt_awset_add(a, "s", "x", NULL, 0, NULL), 0);
    assert_int_equal(crdt_awset_add(b, "s", "x", NULL, 0, &add), 0);
    assert_int_equal(crdt_awset_remove(a, "s", "x", &rm), 0);
    assert_false(crdt_awset_contains(a, "s", "x"));
    assert_int_equal(crdt_scope_join(a, add), 0);
    assert_int_equal(crdt_scope_join(b, rm), 0);
    assert_true(crdt_awset_contains(a, "s", "x"));
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&rm);
    crdt_scope_destroy(&add);
    crdt_scope_destroy(&a);
    crdt_scope_destroy(&b);
}

static void test_random_histories_match_specification(void **state)
{
    (void)state;
    unsigned kinds = (1u << OP_SET_ADD) | (1u << OP_SET_REMOVE) | (1u << OP_FORGET);
    unsigned set_ops = (1u << OP_SET_ADD) | (1u << OP_SET_REMOVE);
    int cases = prop_cases(2000);
    for (int c = 0; c < cases; c++) {
        prop_rng_t rng = prop_case("awset_spec", c);
        world_t w;
        world_converged(&w, &rng, kinds);
        const crdt_scope_t *x = w.replicas[0];
        /* Every (key, elem) any op touched: present iff some add survives. */
        for (size_t i = 0; i < w.nops; i++) {
            const world_op_t *op = &w.ops[i];
            if (op->kind != OP_SET_ADD && op->kind != OP_SET_REMOVE)
                continue;
            bool expected = false;
            for (size_t a = 0; a < w.nops && !expected; a++)
                expected = w.ops[a].kind == OP_SET_ADD && strcmp(w.ops[a].key, op->key) == 0 &&
                           strcmp(w.ops[a].elem, op->elem) == 0 &&
                           !world_superseded(&w, a, set_ops, op->key, op->elem);
            PROP_CHECK(crdt_awset_contains(x, op->key, op->elem) == expected);
            /* Its entries are exactly the surviving adds, each with its own data. */
            crdt_entry_view_t *entries = NULL;
            size_t n = 0;
            int rc = crdt_awset_entries(x, op->key, op->elem, &entries, &n);
            PROP_CHECK(rc == (expected ? 0 : ENGRAM_ENOTFOUND));
            size_t surviving = 0;
            for (size_t a = 0; a < w.nops; a++) {
                const world_op_t *add = &w.ops[a];
                if (add->kind != OP_SET_ADD || strcmp(add->key, op->key) != 0 ||
                    strcmp(add->elem, op->elem) != 0 ||
                    world_superseded(&w, a, set_ops, op->key, op->elem))
                    continue;
                surviving++;
                bool found = false;
                for (size_t k = 0; k < n && !found; k++)
                    found = entries[k].node == add->dot.node && entries[k].n == add->dot.n &&
                            entries[k].len == strlen(add->value) &&
                            memcmp(entries[k].data, add->value, entries[k].len) == 0;
                PROP_CHECK(found);
            }
            PROP_CHECK(n == surviving);
            if (rc == 0)
                free(entries);
        }
        world_fini(&w);
    }
}

/*  An add's data goes with it: into the delta, through the codec, into another replica; a
 *  re-add replaces it. */
static void test_data_travels(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *d = NULL, *wire = NULL;
    assert_int_equal(crdt_awset_add(a, "s", "x", "prov-1", 6, &d), 0);
    crdt_entry_view_t *entries;
    size_t n;
    assert_int_equal(crdt_awset_entries(d, "s", "x", &entries, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(entries[0].data, "prov-1", 6);
    free(entries);
    uint8_t *buf;
    size_t len;
    assert_int_equal(crdt_scope_encode(d, &buf, &len), 0);
    assert_int_equal(crdt_scope_decode(buf, len, 0, &wire), 0);
    free(buf);
    assert_true(crdt_scope_equal(wire, d));
    assert_int_equal(crdt_scope_join(b, wire), 0);
    assert_int_equal(crdt_awset_entries(b, "s", "x", &entries, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(entries[0].node, 1);
    assert_int_equal(entries[0].n, 1);
    assert_int_equal(entries[0].len, 6);
    assert_memory_equal(entries[0].data, "prov-1", 6);
    free(entries);
    crdt_scope_destroy(&wire);
    crdt_scope_destroy(&d);

    /* B re-adds x with its own data: the add it observed is replaced, here and at A. */
    assert_int_equal(crdt_awset_add(b, "s", "x", "prov-2", 6, &d), 0);
    assert_int_equal(crdt_scope_join(a, d), 0);
    assert_true(crdt_scope_equal(a, b));
    assert_int_equal(crdt_awset_entries(a, "s", "x", &entries, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(entries[0].node, 2);
    assert_memory_equal(entries[0].data, "prov-2", 6);
    free(entries);

    /* Data is optional (adds from before sets carried provenance) and bounded. */
    assert_int_equal(crdt_awset_add(a, "s", "old", NULL, 0, NULL), 0);
    assert_int_equal(crdt_awset_entries(a, "s", "old", &entries, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(entries[0].len, 0);
    assert_null(entries[0].data);
    free(entries);
    uint8_t *huge = calloc(1, ENGRAM_MAX_ENTRY_BYTES + 1);
    assert_non_null(huge);
    crdt_scope_t *before = crdt_scope_dup(a, 1);
    assert_int_equal(crdt_awset_add(a, "s", "y", huge, ENGRAM_MAX_ENTRY_BYTES + 1, NULL),
                     ENGRAM_ETOOBIG);
    assert_true(crdt_scope_equal(a, before));
    assert_int_equal(crdt_awset_add(a, "s", "y", huge, ENGRAM_MAX_ENTRY_BYTES, NULL), 0);
    free(huge);
    crdt_scope_destroy(&before);
    crdt_scope_destroy(&d);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

/*  A and B add x concurrently, each with its own data: after the exchange both adds survive,
 *  both replicas show both entries (a reader that may see either add sees x), and a remove
 *  that observed both removes x. */
static void test_concurrent_adds_keep_both_data(void **state)
{
    (void)state;
    crdt_scope_t *a = crdt_scope_new(1), *b = crdt_scope_new(2), *da = NULL, *db = NULL, *rm = NULL;
    assert_int_equal(crdt_awset_add(a, "s", "x", "from-a", 6, &da), 0);
    assert_int_equal(crdt_awset_add(b, "s", "x", "from-b!", 7, &db), 0);
    assert_int_equal(crdt_awset_add(b, "s", "w", "other", 5, NULL), 0);
    assert_int_equal(crdt_scope_join(a, db), 0);
    assert_int_equal(crdt_scope_join(b, da), 0);
    crdt_scope_t *replicas[] = {a, b};
    for (int r = 0; r < 2; r++) {
        crdt_entry_view_t *entries;
        size_t n;
        assert_int_equal(crdt_awset_entries(replicas[r], "s", "x", &entries, &n), 0);
        assert_int_equal(n, 2); /* dot order */
        assert_int_equal(entries[0].node, 1);
        assert_int_equal(entries[0].len, 6);
        assert_memory_equal(entries[0].data, "from-a", 6);
        assert_int_equal(entries[1].node, 2);
        assert_int_equal(entries[1].len, 7);
        assert_memory_equal(entries[1].data, "from-b!", 7);
        free(entries);
    }
    /* Every member's adds at once: by element, then dot. */
    crdt_entry_view_t *all;
    size_t n;
    assert_int_equal(crdt_scope_join(a, b), 0);
    assert_int_equal(crdt_awset_entries(a, "s", NULL, &all, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(all[0].elem, "w");
    assert_string_equal(all[1].elem, "x");
    assert_int_equal(all[1].node, 1);
    assert_string_equal(all[2].elem, "x");
    assert_int_equal(all[2].node, 2);
    free(all);
    assert_int_equal(crdt_awset_entries(a, "absent", NULL, &all, &n), ENGRAM_ENOTFOUND);

    assert_int_equal(crdt_awset_remove(a, "s", "x", &rm), 0);
    assert_int_equal(crdt_scope_join(b, rm), 0);
    assert_false(crdt_awset_contains(b, "s", "x"));
    assert_true(crdt_scope_equal(a, b));
    crdt_scope_destroy(&rm);
    crdt_scope_destroy(&db);
    crdt_scope_destroy(&da);
    crdt_scope_destroy(&b);
    crdt_scope_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_remove_members),
        cmocka_unit_test(test_add_wins),
        cmocka_unit_test(test_remove_keeps_unobserved_add),
        cmocka_unit_test(test_data_travels),
        cmocka_unit_test(test_concurrent_adds_keep_both_data),
        cmocka_unit_test(test_random_histories_match_specification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
