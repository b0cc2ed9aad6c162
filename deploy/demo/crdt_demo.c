/*  engram-crdt-demo: three hosts' replicas of one shared scope, driven through the CRDT
 *  kernel in one process, to show what the kernel guarantees before a node exists.
 *
 *  A researcher agent on host A and a writer agent on host B share the task blackboard
 *  `run:q3-proposal`; host C is cut off by a partition while both write, then catches up by
 *  one anti-entropy delta. Every step prints what each replica sees, the bytes shipped, and
 *  the replicas' digests, which are equal exactly when the states are.
 *
 *  This is a stand-in for the README's main command until engramd runs (issue 3); it is not
 *  part of any library.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/awset.h"
#include "crdt/codec.h"
#include "crdt/counter.h"
#include "crdt/hlc.h"
#include "crdt/log.h"
#include "crdt/mvreg.h"
#include "crdt/scope.h"
#include "engram/error.h"

#define HOSTS 3

typedef struct {
    const char *name;
    crdt_scope_t *scope;
    crdt_hlc_t clock;
} host_t;

static uint64_t s_now_ms = 1795000000000ULL;

static void s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "engram-crdt-demo: %s: %s\n", what, engram_strerror(rc));
        exit(1);
    }
}

static size_t s_encoded_bytes(const crdt_scope_t *scope)
{
    uint8_t *buf;
    size_t len;
    s_check(crdt_scope_encode(scope, &buf, &len), "encode");
    free(buf);
    return len;
}

/*  Ships a delta from one host to the others that are reachable (joins it there). */
static void s_push(host_t *hosts, int from, crdt_scope_t **delta_p, const bool *reachable)
{
    printf("    %s pushes a %zu-byte delta to", hosts[from].name, s_encoded_bytes(*delta_p));
    for (int h = 0; h < HOSTS; h++) {
        if (h == from || !reachable[h])
            continue;
        s_check(crdt_scope_join(hosts[h].scope, *delta_p), "join");
        printf(" %s", hosts[h].name);
    }
    printf("\n");
    crdt_scope_destroy(delta_p);
}

static void s_show(const host_t *host)
{
    const crdt_scope_t *s = host->scope;
    printf("  %s: digest %016" PRIx64 ", %zu entries", host->name, crdt_scope_digest(s),
           crdt_scope_entries(s));
    crdt_entry_view_t *v;
    size_t n;
    if (crdt_mvreg_read(s, "draft", &v, &n) == 0) {
        printf(", draft = \"%.*s\"", (int)v[0].len, (const char *)v[0].data);
        if (n > 1)
            printf(" (+%zu concurrent sibling%s)", n - 1, n > 2 ? "s" : "");
        free(v);
    }
    const char **members;
    if (crdt_awset_members(s, "sources", &members, &n) == 0) {
        printf(", %zu sources", n);
        free(members);
    }
    int64_t tokens;
    if (crdt_counter_value(s, "tokens", &tokens) == 0)
        printf(", tokens = %" PRId64, tokens);
    if (crdt_log_range(s, "findings", &v, &n) == 0) {
        printf(", %zu findings", n);
        free(v);
    }
    printf("\n");
}

int main(void)
{
    host_t hosts[HOSTS] = {{"host-a", NULL, {0}}, {"host-b", NULL, {0}}, {"host-c", NULL, {0}}};
    for (int h = 0; h < HOSTS; h++) {
        hosts[h].scope = crdt_scope_new(0xa11ce000u + (uint64_t)h);
        if (!hosts[h].scope)
            return 1;
    }
    bool all[HOSTS] = {true, true, true}, partitioned[HOSTS] = {true, true, false};
    crdt_scope_t *d = NULL;

    printf("1. researcher-1 on host-a records findings in run:q3-proposal; all hosts connected\n");
    const char *findings[] = {"Q3 churn fell 4%", "EU revenue up 11%", "two pilots signed"};
    for (int i = 0; i < 3; i++) {
        uint64_t t = crdt_hlc_now(&hosts[0].clock, s_now_ms += 5);
        s_check(crdt_log_append(hosts[0].scope, "findings", t, findings[i], strlen(findings[i]),
                                &d),
                "log append");
        s_push(hosts, 0, &d, all);
    }
    s_check(crdt_awset_add(hosts[0].scope, "sources", "crm:q3-export", NULL, 0, &d), "set add");
    s_push(hosts, 0, &d, all);
    s_check(crdt_counter_add(hosts[0].scope, "tokens", "", 1800, &d), "counter add");
    s_push(hosts, 0, &d, all);

    printf("\n2. host-c is partitioned away; writer-1 on host-b and researcher-1 on host-a both "
           "edit the draft\n");
    uint64_t ta = crdt_hlc_now(&hosts[0].clock, s_now_ms += 5);
    crdt_scope_t *from_a = NULL;
    s_check(crdt_mvreg_write(hosts[0].scope, "draft", ta, "Q3: churn down, EU up", 21, &from_a),
            "write");
    /* B writes before A's delta reaches it: the two writes are concurrent. */
    uint64_t tb = crdt_hlc_now(&hosts[1].clock, s_now_ms += 1);
    s_check(crdt_mvreg_write(hosts[1].scope, "draft", tb, "Q3 in one line: growth", 22, &d),
            "write");
    s_push(hosts, 0, &from_a, partitioned);
    s_push(hosts, 1, &d, partitioned);
    s_check(crdt_awset_add(hosts[1].scope, "sources", "analyst-call-notes", NULL, 0, &d),
            "set add");
    s_push(hosts, 1, &d, partitioned);
    s_check(crdt_counter_add(hosts[1].scope, "tokens", "", 950, &d), "counter add");
    s_push(hosts, 1, &d, partitioned);
    for (int h = 0; h < HOSTS; h++)
        s_show(&hosts[h]);

    printf("\n3. the partition heals: host-c pulls with its version vector (anti-entropy)\n");
    crdt_scope_t *catch_up = crdt_scope_delta_since(hosts[0].scope, crdt_scope_ctx(hosts[2].scope));
    printf("    host-a answers with a %zu-byte catch-up delta (full state: %zu bytes)\n",
           s_encoded_bytes(catch_up), s_encoded_bytes(hosts[0].scope));
    s_check(crdt_scope_join(hosts[2].scope, catch_up), "join");
    crdt_scope_destroy(&catch_up);
    for (int h = 0; h < HOSTS; h++)
        s_show(&hosts[h]);

    printf("\n4. writer-1 resolves the siblings with a write that saw both\n");
    uint64_t tr = crdt_hlc_now(&hosts[1].clock, s_now_ms += 5);
    s_check(crdt_mvreg_write(hosts[1].scope, "draft", tr, "Q3: churn -4%, EU +11%, 2 pilots", 32,
                             &d),
            "write");
    s_push(hosts, 1, &d, all);
    bool converged = true;
    for (int h = 0; h < HOSTS; h++) {
        s_show(&hosts[h]);
        converged &= crdt_scope_equal(hosts[h].scope, hosts[0].scope);
    }
    printf("\n%s\n", converged ? "all three replicas converged: equal digests, equal states"
                               : "REPLICAS DIVERGED");
    for (int h = 0; h < HOSTS; h++)
        crdt_scope_destroy(&hosts[h].scope);
    return converged ? 0 : 1;
}
