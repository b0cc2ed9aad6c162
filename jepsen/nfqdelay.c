/*  nfqdelay: the packet delayer of jepsen/'s `delay` nemesis (this kernel has no netem).
 *
 *  Run inside a node's network namespace, it binds netfilter queue N; an iptables rule
 *  (`-j NFQUEUE --queue-num N --queue-bypass`, added and removed by jepsen/) sends it that
 *  namespace's packets. Each packet is held a random delay in [--min-ms, --max-ms] drawn
 *  from a generator seeded with --seed, then accepted: packets leave in the order of their
 *  release times, not of their arrival, so the link delays and reorders them.
 *
 *  Invariants: every packet it took is accepted exactly once, none is dropped: when it holds
 *  HELD_MAX packets, the next is accepted at once; on SIGTERM or SIGINT it accepts whatever
 *  it holds and exits 0. The queue is opened fail-open and the rule carries --queue-bypass,
 *  so the kernel lets packets through, not drops them, when the queue is full or the
 *  daemon is gone. It prints "ready" on stdout once bound, so the caller adds its rule only
 *  then, and a count of packets delayed at exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HELD_MAX 8192

typedef struct {
    uint32_t id;
    uint64_t release_ms;
} held_t;

typedef struct {
    struct nfq_q_handle *queue;
    held_t heap[HELD_MAX]; /* a min-heap on release_ms */
    size_t held;
    uint64_t rng;
    unsigned min_ms, span_ms;
    unsigned long delayed, passed;
} delayer_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t s_next_random(delayer_t *self)
{
    /* xorshift64*: small, seeded, good enough to spread delays */
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * 2685821657736338717ULL;
}

static void s_accept(delayer_t *self, uint32_t id)
{
    nfq_set_verdict(self->queue, id, NF_ACCEPT, 0, NULL);
}

static void s_heap_push(delayer_t *self, held_t item)
{
    size_t i = self->held++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent].release_ms <= item.release_ms)
            break;
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = item;
}

static held_t s_heap_pop(delayer_t *self)
{
    held_t top = self->heap[0];
    held_t last = self->heap[--self->held];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->held)
            break;
        if (child + 1 < self->held &&
            self->heap[child + 1].release_ms < self->heap[child].release_ms)
            child++;
        if (last.release_ms <= self->heap[child].release_ms)
            break;
        self->heap[i] = self->heap[child];
        i = child;
    }
    if (self->held > 0)
        self->heap[i] = last;
    return top;
}

static int s_on_packet(struct nfq_q_handle *queue, struct nfgenmsg *msg, struct nfq_data *nfa,
                       void *arg)
{
    (void)queue;
    (void)msg;
    delayer_t *self = arg;
    struct nfqnl_msg_packet_hdr *hdr = nfq_get_msg_packet_hdr(nfa);
    if (!hdr)
        return 0;
    uint32_t id = ntohl(hdr->packet_id);
    if (self->held == HELD_MAX) {
        self->passed++;
        s_accept(self, id);
        return 0;
    }
    uint64_t delay = self->min_ms + (self->span_ms ? s_next_random(self) % (self->span_ms + 1) : 0);
    s_heap_push(self, (held_t){id, s_now_ms() + delay});
    self->delayed++;
    return 0;
}

static void s_release_due(delayer_t *self, uint64_t now)
{
    while (self->held > 0 && self->heap[0].release_ms <= now)
        s_accept(self, s_heap_pop(self).id);
}

static int s_usage(void)
{
    fprintf(stderr, "usage: nfqdelay --queue N [--min-ms MS] [--max-ms MS] [--seed S]\n"
                    "Holds each packet of netfilter queue N a random delay, then accepts it.\n");
    return 2;
}

int main(int argc, char **argv)
{
    long queue_num = -1, min_ms = 0, max_ms = 80;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i += 2) { /* --flag VALUE pairs */
        if (i + 1 >= argc)
            return s_usage();
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[i + 1], &end, 10);
        if (errno || *end || end == argv[i + 1])
            return s_usage();
        if (strcmp(argv[i], "--queue") == 0 && v <= 65535)
            queue_num = (long)v;
        else if (strcmp(argv[i], "--min-ms") == 0 && v <= 10000)
            min_ms = (long)v;
        else if (strcmp(argv[i], "--max-ms") == 0 && v <= 10000)
            max_ms = (long)v;
        else if (strcmp(argv[i], "--seed") == 0)
            seed = v;
        else
            return s_usage();
    }
    if (queue_num < 0 || max_ms < min_ms)
        return s_usage();

    static delayer_t self;
    self.rng = seed * 0x9E3779B97F4A7C15ULL + 1; /* never zero for xorshift */
    self.min_ms = (unsigned)min_ms;
    self.span_ms = (unsigned)(max_ms - min_ms);

    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct nfq_handle *handle = nfq_open();
    if (!handle) {
        perror("nfqdelay: nfq_open");
        return 1;
    }
    self.queue = nfq_create_queue(handle, (uint16_t)queue_num, s_on_packet, &self);
    if (!self.queue) {
        perror("nfqdelay: nfq_create_queue");
        nfq_close(handle);
        return 1;
    }
    if (nfq_set_mode(self.queue, NFQNL_COPY_META, 0) < 0 ||
        nfq_set_queue_maxlen(self.queue, HELD_MAX) < 0 ||
        nfq_set_queue_flags(self.queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN) < 0) {
        perror("nfqdelay: configuring the queue");
        nfq_destroy_queue(self.queue);
        nfq_close(handle);
        return 1;
    }
    int fd = nfq_fd(handle);
    printf("ready\n");
    fflush(stdout);

    static char buf[65536];
    while (!s_stop) {
        uint64_t now = s_now_ms();
        s_release_due(&self, now);
        int wait_ms = 200;
        if (self.held > 0) {
            uint64_t due = self.heap[0].release_ms;
            wait_ms = due > now ? (int)(due - now) : 0;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, wait_ms);
        if (n > 0 && (pfd.revents & POLLIN)) {
            ssize_t len = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (len > 0)
                nfq_handle_packet(handle, buf, (int)len);
            /* ENOBUFS: the kernel dropped messages for us; fail-open passes the packets */
        }
    }
    while (self.held > 0)
        s_accept(&self, s_heap_pop(&self).id);
    nfq_destroy_queue(self.queue);
    nfq_close(handle);
    printf("delayed %lu packets, passed %lu undelayed\n", self.delayed, self.passed);
    return 0;
}
