/*  bench_redis: the hiredis connection the Redis-comparing benchmarks share (see bench_util.h);
 *  apart from bench_util.c so that benchmarks without hiredis can use the rest. */
#include "bench_util.h"

#include <stdbool.h>
#include <sys/time.h>

#include <hiredis.h>

struct redisContext *bench_redis_connect(int port, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!r)
        return NULL;
    if (r->err) {
        redisFree(r);
        return NULL;
    }
    redisSetTimeout(r, (struct timeval){10, 0});
    redisReply *reply = redisCommand(r, "PING");
    bool ok = reply && reply->type == REDIS_REPLY_STATUS;
    if (reply)
        freeReplyObject(reply);
    if (!ok) {
        redisFree(r);
        return NULL;
    }
    return r;
}
