/*  libengram's first connections, made by several threads at once (include/engram/engram.h,
 *  "Thread safety": one engram_t per thread). The first socket of a process starts czmq, which
 *  is not safe from two threads at once: libengram starts it once for all (pthread_once).
 *
 *  Each of CHILDREN child processes, in which nothing started czmq yet, has THREADS threads
 *  pass a barrier and call engram_connect_keys at the same moment (to a socket where no node
 *  is: none is needed to make one), then engram_destroy once all did. Every child
 *  must exit 0: one that czmq's start raced in aborts (an assertion in zsys_init). Before the
 *  fix a few processes in a hundred did, and every run of 256 had some. */
#include <pthread.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/engram.h"

#define CHILDREN 256
#define THREADS  8

static pthread_barrier_t s_start, s_connected;
static uint8_t s_public[32], s_secret[32], s_server[32];

/*  A connection made with the keys given (libzmq connects to an ipc:// path lazily), kept open
 *  until every thread made its own: a socket open while czmq still starts is what its start
 *  asserts against. */
static void *s_connect_once(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&s_start);
    engram_t *engram = engram_connect_keys("ipc:///nonexistent/engram-connect-threads.sock", "a1",
                                           "alice", s_public, s_secret, s_server);
    pthread_barrier_wait(&s_connected);
    engram_destroy(&engram);
    return NULL;
}

/*  A child: THREADS first connections at once; exits 0 once all returned. */
static void s_child(void)
{
    pthread_t threads[THREADS];
    pthread_barrier_init(&s_start, NULL, THREADS);
    pthread_barrier_init(&s_connected, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, s_connect_once, NULL) != 0)
            _exit(2);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    _exit(0);
}

static void test_first_connections_from_threads_at_once(void **state)
{
    (void)state;
    int failed = 0;
    for (int c = 0; c < CHILDREN; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            s_child();
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    assert_int_equal(failed, 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    crypto_box_keypair(s_public, s_secret);
    randombytes_buf(s_server, sizeof s_server);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_connections_from_threads_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
