/*  node/api observe: what engramd's HTTP listener (node/http) shows, gathered on the loop thread.
 *
 *  The loop counts every reply as it leaves (api__observe_reply: its operation and code, and
 *  its latency from when the node began handling the request to when the reply is handed to
 *  the socket, the group commit's fsync included; a read parked for its causal token, or a
 *  write held for the dot check, counts from when it was first handled; what waits in
 *  libzmq's queues before the loop reads it is not counted), the size of every group commit
 *  (acknowledgements released by one fsync), and every API_SAMPLE_MS a sample of its totals,
 *  from which the status page draws its rates.
 *
 *  The listener's thread asks over an inproc PAIR (node_server_observe), with a message
 *  [sequence][kind], and the loop answers between two turns with [sequence][JSON]:
 *    metrics  the metric families, each {name, type, help, samples: [{name, labels, value}]},
 *             which node/http writes out in Prometheus's text format
 *    status   the node, its members with their state and lag, its scopes' version vectors,
 *             and the samples kept, the totals now last
 *    access   the access statements valid now (as ACL_SHOW answers)
 *    ready    {ready, checks: {store_writable, dots_checked, cluster_joined}}
 *  An unknown kind is answered with {"error": ...}. Everything here runs on the loop thread, so
 *  it reads the server's state as it is between turns. The metrics and status documents cost
 *  what the cluster's status costs, so each is made at most once per API_OBSERVE_REFRESH_MS
 *  (whoever asks in between gets the last one), and a member's lag in bytes is measured only
 *  within API_OBSERVE_LAG_BYTES_OPS operations encoded (node_cluster_status's budget).
 */
#include <inttypes.h>
#include <string.h>

#include "engram/error.h"
#include "engram/limits.h"
#include "node/api/internal.h"

/*  Upper bounds of the latency buckets, in seconds (the last bucket, +Inf, follows). */
static const double s_latency_bounds[API_LATENCY_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

/*  The row of an operation: its own if the protocol names it, else 0 ("other"). */
static size_t s_op_index(Engram__Op op)
{
    bool named = (size_t)op < API_OBSERVE_OPS &&
                 protobuf_c_enum_descriptor_get_value(&engram__op__descriptor, (int)op);
    return named ? (size_t)op : 0;
}

static const char *const s_code_names[] = {
#define S_CODE_NAME(name, value, message) [-(value)] = &#name[sizeof "ENGRAM_" - 1],
    ENGRAM_ERRORS(S_CODE_NAME)
#undef S_CODE_NAME
};
#define S_NCODES (sizeof s_code_names / sizeof *s_code_names)
_Static_assert(S_NCODES < API_OBSERVE_CODES, "a column for every code and one for the others");

/*  The column of a code: its own if error.h names it, else the last ("other"). */
static size_t s_code_index(int code)
{
    return code <= 0 && (size_t)-code < S_NCODES ? (size_t)-code : API_OBSERVE_CODES - 1;
}

void api__observe_reply(node_server_t *self, const api_out_t *out, int code)
{
    api_observed_t *o = &self->observed;
    size_t op = s_op_index(out->op);
    o->replies[op][s_code_index(code)]++;
    if (!out->started_us)
        return;
    double seconds = (double)(zclock_usecs() - out->started_us) / 1e6;
    size_t b = 0;
    while (b < API_LATENCY_BUCKETS && seconds > s_latency_bounds[b])
        b++;
    o->latency[op][b]++;
    o->latency_sum[op] += seconds;
}

void api__observe_count(api_counts_t *counts, size_t n)
{
    size_t b = 0;
    while (b < API_COUNT_BUCKETS && n > ((size_t)1 << b))
        b++;
    counts->buckets[b]++;
    counts->sum += n;
}

/*  The totals now. */
static api_sample_t s_totals(node_server_t *self, int64_t now_ms)
{
    api_sample_t s = {.at_ms = now_ms,
                      .requests = self->stats.requests,
                      .errors = self->stats.errors,
                      .writes = self->stats.writes};
    if (self->cluster) {
        node_cluster_traffic_t traffic;
        node_cluster_traffic(self->cluster, &traffic);
        s.bytes_sent = traffic.bytes_sent;
        s.bytes_received = traffic.bytes_received;
        s.deltas_applied = traffic.deltas_applied;
    }
    return s;
}

int64_t api__observe_tick(node_server_t *self, int64_t now_ms)
{
    api_observed_t *o = &self->observed;
    if (now_ms < o->next_sample_ms)
        return o->next_sample_ms;
    o->samples[o->next_sample] = s_totals(self, now_ms);
    o->next_sample = (o->next_sample + 1) % API_SAMPLES;
    if (o->n_samples < API_SAMPLES)
        o->n_samples++;
    o->next_sample_ms = now_ms + API_SAMPLE_MS;
    return o->next_sample_ms;
}

/*  --- the documents ----------------------------------------------------------------- */

static const char *s_op_name(size_t op)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&engram__op__descriptor, (int)op);
    return op && v ? v->name : "other";
}

static const char *s_code_name(size_t index)
{
    return index < S_NCODES ? s_code_names[index] : "other";
}

/*  Appends a family to families and returns its samples (borrowed). */
static json_t *s_family(json_t *families, const char *name, const char *type, const char *help)
{
    json_t *samples = json_array();
    json_array_append_new(families, json_pack("{s:s, s:s, s:s, s:o}", "name", name, "type", type,
                                              "help", help, "samples", samples));
    return samples;
}

/*  Appends a sample; labels (taken) may be NULL. */
static void s_sample(json_t *samples, const char *name, json_t *labels, json_t *value)
{
    json_array_append_new(samples, json_pack("{s:s, s:o, s:o}", "name", name, "labels",
                                             labels ? labels : json_object(), "value", value));
}

/*  A family of one unlabelled sample. */
static void s_single(json_t *families, const char *name, const char *type, const char *help,
                     uint64_t value)
{
    s_sample(s_family(families, name, type, help), name, NULL, json_integer((json_int_t)value));
}

/*  A histogram family of counts: name_bucket (cumulative, le 1, 2, 4 ... +Inf), name_sum and
 *  name_count. */
static void s_counts(json_t *families, const char *name, const char *help,
                     const api_counts_t *counts)
{
    json_t *samples = s_family(families, name, "histogram", help);
    char sample[96];
    snprintf(sample, sizeof sample, "%s_bucket", name);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= API_COUNT_BUCKETS; b++) {
        cumulative += counts->buckets[b];
        char le[32];
        if (b < API_COUNT_BUCKETS)
            snprintf(le, sizeof le, "%zu", (size_t)1 << b);
        else
            snprintf(le, sizeof le, "+Inf");
        s_sample(samples, sample, json_pack("{s:s}", "le", le),
                 json_integer((json_int_t)cumulative));
    }
    snprintf(sample, sizeof sample, "%s_sum", name);
    s_sample(samples, sample, NULL, json_integer((json_int_t)counts->sum));
    snprintf(sample, sizeof sample, "%s_count", name);
    s_sample(samples, sample, NULL, json_integer((json_int_t)cumulative));
}

static void s_request_families(node_server_t *self, json_t *families)
{
    api_observed_t *o = &self->observed;
    json_t *replies = s_family(families, "engram_requests_total", "counter",
                               "Requests answered, by operation and result code.");
    json_t *latency =
        s_family(families, "engram_request_duration_seconds", "histogram",
                 "From handling a request to handing its reply to the socket, the group commit "
                 "included (a read parked for its token, or a write held for the dot "
                 "check, from when it was first handled).");
    for (size_t op = 0; op < API_OBSERVE_OPS; op++) {
        uint64_t count = 0;
        for (size_t c = 0; c < API_OBSERVE_CODES; c++) {
            if (!o->replies[op][c])
                continue;
            s_sample(replies, "engram_requests_total",
                     json_pack("{s:s, s:s}", "op", s_op_name(op), "code", s_code_name(c)),
                     json_integer((json_int_t)o->replies[op][c]));
        }
        for (size_t b = 0; b <= API_LATENCY_BUCKETS; b++)
            count += o->latency[op][b];
        if (!count)
            continue;
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= API_LATENCY_BUCKETS; b++) {
            cumulative += o->latency[op][b];
            char le[32];
            if (b < API_LATENCY_BUCKETS)
                snprintf(le, sizeof le, "%g", s_latency_bounds[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            s_sample(latency, "engram_request_duration_seconds_bucket",
                     json_pack("{s:s, s:s}", "op", s_op_name(op), "le", le),
                     json_integer((json_int_t)cumulative));
        }
        s_sample(latency, "engram_request_duration_seconds_sum",
                 json_pack("{s:s}", "op", s_op_name(op)), json_real(o->latency_sum[op]));
        s_sample(latency, "engram_request_duration_seconds_count",
                 json_pack("{s:s}", "op", s_op_name(op)), json_integer((json_int_t)count));
    }
    s_counts(families, "engram_group_commit_writes",
             "Write acknowledgements released by one WAL fsync (durability=sync only).",
             &o->commits);
    s_counts(families, "engram_gossip_messages_per_turn",
             "Gossip messages one loop turn read, of the turns that read any: at most "
             "max_batch, the rest waiting for the next turns.",
             &o->gossip_reads);
}

static void s_node_families(node_server_t *self, json_t *families)
{
    const Engram__Stats *st = &self->stats;
    json_t *info = s_family(families, "engram_build_info", "gauge",
                            "The build: its version and the schema it reads and writes.");
    char schema[32];
    snprintf(schema, sizeof schema, "%d.%d", ENGRAM_SCHEMA_MAJOR, ENGRAM_SCHEMA_MINOR);
    s_sample(info, "engram_build_info",
             json_pack("{s:s, s:s}", "version", ENGRAM_VERSION, "schema", schema), json_integer(1));
    json_t *uptime = s_family(families, "engram_uptime_seconds", "gauge",
                              "Seconds since the node started serving.");
    s_sample(uptime, "engram_uptime_seconds", NULL,
             json_real((double)(api__now_ms() - self->started_ms) / 1000.0));
    s_single(families, "engram_malformed_requests_total", "counter",
             "Frames that were not a request.", st->malformed);
    s_single(families, "engram_writes_total", "counter", "Writes applied by this node's API.",
             st->writes);
    s_single(families, "engram_group_commits_total", "counter",
             "Group commits that acknowledged at least one write (durability=sync only).",
             st->commits);
    s_single(families, "engram_writes_held", "gauge",
             "Shared writes held until the dot check at start is done.", zlist_size(self->held));
    s_single(families, "engram_reads_parked", "gauge", "Reads waiting for their causal token.",
             zlist_size(self->parked));
    s_single(families, "engram_writes_awaiting_replicas", "gauge",
             "Durable writes whose reply waits for more nodes to hold them.",
             zlist_size(self->replicating));
    s_single(families, "engram_connections", "gauge", "API connections open.",
             zhash_size(self->conns));
    uint64_t queued = 0;
    for (api_peer_t *peer = zhash_first(self->peers); peer; peer = zhash_next(self->peers))
        queued += peer->bytes;
    s_single(families, "engram_connection_queue_bytes", "gauge",
             "Reply and event bytes queued for connections whose pipe is full.", queued);
    s_single(families, "engram_connections_cut_total", "counter",
             "Connections cut for leaving more than their byte budget unread.",
             st->connections_cut);
    s_single(families, "engram_busy_refusals_total", "counter",
             "Requests refused because too many were waiting (ENGRAM_EBUSY).", st->busy_refusals);
    s_single(families, "engram_subscribers", "gauge", "Subscriptions open.", st->subscribers);
    s_single(families, "engram_access_denials_total", "counter",
             "Requests refused by access control.", self->denials);
    s_single(families, "engram_redactions_total", "counter",
             "Matches of a write policy replaced in a write.", self->redactions);
    s_single(families, "engram_clock_refusals_total", "counter",
             "Stamps from other nodes refused for running too far ahead of this clock.",
             node_store_clock_refusals(self->store));
    s_single(families, "engram_expired_purged_total", "counter", "Expired entries purged.",
             st->purged);
    s_single(families, "engram_busy_poll_caught_total", "counter",
             "Idle times of the loop that its look for work before sleeping ended by finding "
             "some (--busy-poll-us).",
             self->busy_poll.caught);
    json_t *window = s_family(families, "engram_busy_poll_window_seconds", "gauge",
                              "How long the loop looks for work before it sleeps now "
                              "(--busy-poll-us; 0: it sleeps at once).");
    s_sample(window, "engram_busy_poll_window_seconds", NULL,
             json_real((double)self->busy_poll.window_us / 1e6));
    json_t *looked = s_family(families, "engram_busy_poll_seconds_total", "counter",
                              "Time the loop spent looking for work before sleeping "
                              "(--busy-poll-us): at most the CPU it spent to answer sooner "
                              "(what it yielded to other threads meanwhile is counted too).");
    s_sample(looked, "engram_busy_poll_seconds_total", NULL,
             json_real((double)self->busy_poll.looked_us / 1e6));
    node_store_figures_t rocks;
    node_store_figures(self->store, &rocks);
    s_single(families, "engram_store_writable", "gauge",
             "1 while the store takes writes (no storage failure, volume above its reserve).",
             node_store_writable(self->store));
    s_single(families, "engram_wal_syncs_total", "counter", "WAL fsyncs (durability=sync only).",
             rocks.wal_syncs);
    s_single(families, "engram_rocksdb_memtable_bytes", "gauge",
             "Bytes in RocksDB's memtables, every column family.", rocks.memtable_bytes);
    s_single(families, "engram_rocksdb_sst_bytes", "gauge",
             "Bytes of RocksDB's table files, every column family.", rocks.sst_bytes);
    s_single(families, "engram_rocksdb_pending_compaction_bytes", "gauge",
             "RocksDB's estimate of the bytes compaction has still to rewrite.",
             rocks.pending_compaction_bytes);
}

static void s_cluster_families(const node_cluster_status_t *status, json_t *families)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
#define S_COUNTER(field, text)                                                                     \
    {"engram_gossip_" #field "_total", text, offsetof(node_cluster_status_t, field)}
        S_COUNTER(pushes_sent, "Deltas pushed to members."),
        S_COUNTER(pushes_applied, "Pushed deltas applied."),
        S_COUNTER(pushes_held_back, "Pushed deltas held until what they depend on arrives."),
        S_COUNTER(digests_sent, "Digests (version vectors) sent."),
        S_COUNTER(pulls_answered, "Pulls answered with a delta."),
        S_COUNTER(pull_deltas_applied, "Deltas received as pull answers and applied."),
        S_COUNTER(bytes_sent, "Gossip bytes sent."),
        S_COUNTER(bytes_received, "Gossip bytes received."),
        S_COUNTER(bad_messages, "Gossip messages refused as malformed or unauthorised."),
        S_COUNTER(lean_deltas, "Deltas sent with a step's value left to its entry."),
        S_COUNTER(compressed_sent, "Gossip messages sent compressed."),
        S_COUNTER(compression_saved, "Gossip bytes compression kept off the wire."),
        S_COUNTER(acks_sent, "Acks of pushes sent."),
        S_COUNTER(acks_deferred, "Acks of pushes sent at the tick after them (nothing waited)."),
        S_COUNTER(sends_held, "Turns whose gossip waited for a later turn's, this node busy "
                              "with writes (--gossip-hold-ms)."),
        S_COUNTER(gc_rounds, "Rounds of collection below the stable cut finished (each over "
                             "the shared scopes there were when it began, in passes of about "
                             "a millisecond)."),
        S_COUNTER(gc_dropped, "Op records dropped below the stable cut."),
#undef S_COUNTER
    };
    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++)
        s_single(families, counters[i].name, "counter", counters[i].help,
                 *(const uint64_t *)((const char *)status + counters[i].offset));
    s_single(families, "engram_gossip_local_health", "gauge",
             "Lifeguard's score of how much this node doubts itself, 0 to 8.",
             status->local_health);
    static const char *const states[] = {"alive", "suspect", "dead", "left"};
    json_t *state = s_family(families, "engram_member_state", "gauge",
                             "1 for each member's state as this node sees it.");
    json_t *lag_ops = s_family(families, "engram_member_lag_ops", "gauge",
                               "Operations this node holds that the member is not known to.");
    json_t *lag_bytes =
        s_family(families, "engram_member_lag_bytes", "gauge",
                 "Encoded size of the delta that would bring the member up to date (left out "
                 "while measuring it would encode more than 10000 operations).");
    for (size_t i = 0; i < status->n_members; i++) {
        const node_cluster_member_status_t *m = &status->members[i];
        if (strcmp(m->state, "self") == 0)
            continue;
        char id[17];
        snprintf(id, sizeof id, "%016" PRIx64, m->id);
        for (size_t s = 0; s < sizeof states / sizeof *states; s++)
            s_sample(state, "engram_member_state",
                     json_pack("{s:s, s:s}", "member", id, "state", states[s]),
                     json_integer(strcmp(m->state, states[s]) == 0));
        if (!m->lag_known)
            continue;
        s_sample(lag_ops, "engram_member_lag_ops", json_pack("{s:s}", "member", id),
                 json_integer((json_int_t)m->lag_ops));
        if (m->lag_bytes_known)
            s_sample(lag_bytes, "engram_member_lag_bytes", json_pack("{s:s}", "member", id),
                     json_integer((json_int_t)m->lag_bytes));
    }
    uint64_t garbage = 0;
    for (size_t i = 0; i < status->n_scopes; i++)
        garbage += status->scopes[i].garbage;
    s_single(families, "engram_shared_scopes", "gauge", "Shared scopes this node holds.",
             status->n_scopes);
    s_single(families, "engram_garbage_records", "gauge",
             "Op records waiting for the stable cut, every shared scope.", garbage);
}

static json_t *s_ready(node_server_t *self)
{
    bool writable = node_store_writable(self->store);
    bool dots = !self->cluster || node_cluster_dots_checked(self->cluster);
    bool joined = !self->cluster || node_cluster_joined(self->cluster);
    return json_pack("{s:b, s:{s:b, s:b, s:b}}", "ready", writable && dots && joined, "checks",
                     "store_writable", writable, "dots_checked", dots, "cluster_joined", joined);
}

static json_t *s_metrics(node_server_t *self)
{
    json_t *families = json_array();
    s_node_families(self, families);
    s_request_families(self, families);
    json_t *ready = s_ready(self);
    s_single(families, "engram_ready", "gauge",
             "1 when /readyz would answer 200: store writable, dot check done, cluster joined.",
             json_is_true(json_object_get(ready, "ready")));
    json_decref(ready);
    node_cluster_status_t *status = NULL;
    if (self->cluster &&
        node_cluster_status(self->cluster, API_OBSERVE_LAG_BYTES_OPS, &status) == 0)
        s_cluster_families(status, families);
    node_cluster_status_free(&status);
    return json_pack("{s:o}", "families", families);
}

static json_t *s_hex64(uint64_t v)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, v);
    return json_string(hex);
}

static json_t *s_cluster_status(node_cluster_status_t *status)
{
    json_t *members = json_array(), *scopes = json_array();
    for (size_t i = 0; i < status->n_members; i++) {
        const node_cluster_member_status_t *m = &status->members[i];
        json_t *member = json_pack("{s:o, s:s, s:I, s:s, s:b}", "id", s_hex64(m->id), "state",
                                   m->state, "incarnation", (json_int_t)m->incarnation, "endpoint",
                                   m->endpoint, "lag_known", m->lag_known);
        if (m->lag_known)
            json_object_set_new(member, "lag_ops", json_integer((json_int_t)m->lag_ops));
        if (m->lag_known && m->lag_bytes_known)
            json_object_set_new(member, "lag_bytes", json_integer((json_int_t)m->lag_bytes));
        json_array_append_new(members, member);
    }
    for (size_t i = 0; i < status->n_scopes; i++) {
        const node_cluster_scope_status_t *s = &status->scopes[i];
        json_array_append_new(scopes, json_pack("{s:s, s:s, s:I, s:I}", "scope", s->scope, "vector",
                                                s->vector, "ops", (json_int_t)s->ops, "garbage",
                                                (json_int_t)s->garbage));
    }
    return json_pack(
        "{s:s, s:s, s:i, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "id", status->cluster_id,
        "endpoint", status->endpoint, "local_health", (int)status->local_health, "members", members,
        "scopes", scopes, "gossip", "pushes_sent", (json_int_t)status->pushes_sent,
        "pushes_applied", (json_int_t)status->pushes_applied, "pull_deltas_applied",
        (json_int_t)status->pull_deltas_applied, "bytes_sent", (json_int_t)status->bytes_sent,
        "bytes_received", (json_int_t)status->bytes_received);
}

static json_t *s_status(node_server_t *self)
{
    api_observed_t *o = &self->observed;
    json_t *samples = json_array();
    size_t first = o->n_samples < API_SAMPLES ? 0 : o->next_sample;
    api_sample_t now = s_totals(self, api__now_ms());
    for (size_t i = 0; i <= o->n_samples; i++) { /* the samples kept, then the totals now */
        const api_sample_t *s = i < o->n_samples ? &o->samples[(first + i) % API_SAMPLES] : &now;
        json_array_append_new(
            samples,
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "at_ms", (json_int_t)s->at_ms,
                      "requests", (json_int_t)s->requests, "errors", (json_int_t)s->errors,
                      "writes", (json_int_t)s->writes, "bytes_sent", (json_int_t)s->bytes_sent,
                      "bytes_received", (json_int_t)s->bytes_received, "deltas_applied",
                      (json_int_t)s->deltas_applied));
    }
    char storage[96];
    node_store_state_text(self->store, storage, sizeof storage);
    json_t *node = json_pack("{s:o, s:o, s:s, s:I, s:s, s:s, s:o}", "id",
                             s_hex64(node_store_node_id(self->store)), "replica",
                             s_hex64(node_store_replica(self->store)), "version", ENGRAM_VERSION,
                             "uptime_ms", (json_int_t)(api__now_ms() - self->started_ms),
                             "durability", self->config.durability_sync ? "sync" : "async",
                             "storage", storage, "ready", s_ready(self));
    json_t *cluster = json_null();
    node_cluster_status_t *status = NULL;
    if (self->cluster &&
        node_cluster_status(self->cluster, API_OBSERVE_LAG_BYTES_OPS, &status) == 0) {
        json_decref(cluster);
        cluster = s_cluster_status(status);
    }
    node_cluster_status_free(&status);
    return json_pack("{s:o, s:o, s:{s:i, s:o}}", "node", node, "cluster", cluster, "rates",
                     "interval_ms", API_SAMPLE_MS, "samples", samples);
}

/*  The metrics (0) or status (1) document as JSON text, made anew only when the last one is
 *  older than API_OBSERVE_REFRESH_MS; borrowed (NULL: memory ran out). */
static const char *s_cached(node_server_t *self, int which)
{
    api_observed_t *o = &self->observed;
    int64_t now = api__mono_ms();
    if (o->cached[which] && now - o->cached_at[which] < API_OBSERVE_REFRESH_MS)
        return o->cached[which];
    json_t *doc = which == 0 ? s_metrics(self) : s_status(self);
    free(o->cached[which]);
    o->cached[which] = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    o->cached_at[which] = now;
    json_decref(doc);
    return o->cached[which];
}

void api__observe_fini(node_server_t *self)
{
    for (int i = 0; i < 2; i++) {
        free(self->observed.cached[i]);
        self->observed.cached[i] = NULL;
    }
    free(self->observed.page_url);
    self->observed.page_url = NULL;
}

void api__observe_answer(node_server_t *self)
{
    while (zsock_events(self->observed.socket) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(self->observed.socket);
        if (!msg)
            return;
        zframe_t *sequence = zmsg_pop(msg);
        char *kind = zmsg_popstr(msg);
        json_t *doc = NULL;
        const char *cached = NULL;
        if (!sequence || !kind)
            doc = json_pack("{s:s}", "error", "a request is [sequence][kind]");
        else if (strcmp(kind, "metrics") == 0 || strcmp(kind, "status") == 0)
            cached = s_cached(self, kind[0] == 's');
        else if (strcmp(kind, "access") == 0)
            doc = api__acl_document(self, api__acl_now());
        else if (strcmp(kind, "ready") == 0)
            doc = s_ready(self);
        else
            doc = json_pack("{s:s}", "error", "unknown kind");
        /* NULL: memory ran out somewhere in the document; the listener answers 503 */
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        zmsg_t *answer = zmsg_new();
        if (sequence)
            zmsg_append(answer, &sequence);
        zmsg_addstr(answer, cached ? cached : text ? text : "");
        if (zmsg_send(&answer, self->observed.socket) != 0)
            zmsg_destroy(&answer); /* the listener has no room: dropped */
        free(text);
        free(kind);
        zframe_destroy(&sequence);
        zmsg_destroy(&msg);
    }
}
