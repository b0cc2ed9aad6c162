/*  Tests of the loop's busy-poll window (busy_poll.c): closed at first and for good when the
 *  setting is 0; opened by work that woke the sleep within the setting (a wider window would
 *  have caught it), to the start and then doubling up to the setting; kept while its look
 *  catches the work; halved by work that came later and by idle times a deadline ended with
 *  no work however short, and closed below the start; a setting under the start opens to
 *  itself; the counters add up what the loop reported.
 */
#include "prop.h"

#include "node/api/busy_poll.h"

/*  Work that woke the sleep idle_us after the turn, the look having lasted the whole window. */
static void s_missed(busy_poll_t *w, uint64_t idle_us)
{
    busy_poll_idled(w, w->window_us, idle_us, BUSY_POLL_WOKEN);
}

static void test_off_never_opens(void **state)
{
    (void)state;
    busy_poll_t w;
    busy_poll_init(&w, 0);
    assert_int_equal(w.window_us, 0);
    for (int i = 0; i < 10; i++)
        s_missed(&w, 1);
    assert_int_equal(w.window_us, 0);
}

static void test_close_requests_open_it_up_to_the_setting(void **state)
{
    (void)state;
    busy_poll_t w;
    busy_poll_init(&w, 200);
    assert_int_equal(w.window_us, 0);
    s_missed(&w, 60); /* a request 60 us after the turn: within 200 */
    assert_int_equal(w.window_us, BUSY_POLL_GROW_START_US);
    s_missed(&w, 60);
    assert_int_equal(w.window_us, 2 * BUSY_POLL_GROW_START_US);
    s_missed(&w, 60);
    assert_int_equal(w.window_us, 4 * BUSY_POLL_GROW_START_US);
    busy_poll_idled(&w, 40, 40, BUSY_POLL_CAUGHT); /* the window is wide enough */
    assert_int_equal(w.window_us, 4 * BUSY_POLL_GROW_START_US);
    for (int i = 0; i < 10; i++)
        s_missed(&w, 200); /* at the setting: still a wider window's */
    assert_int_equal(w.window_us, 200);
}

static void test_sparse_requests_close_it(void **state)
{
    (void)state;
    busy_poll_t w;
    busy_poll_init(&w, 1000);
    for (int i = 0; i < 10; i++)
        s_missed(&w, 500);
    assert_int_equal(w.window_us, 1000);
    s_missed(&w, 1001); /* longer than the setting */
    assert_int_equal(w.window_us, 500);
    s_missed(&w, 5000000);
    assert_int_equal(w.window_us, 250);
    for (int i = 0; i < 3; i++)
        s_missed(&w, 5000000);
    assert_int_equal(w.window_us, BUSY_POLL_GROW_START_US + 6); /* 31: still at least the start */
    s_missed(&w, 5000000);
    assert_int_equal(w.window_us, 0); /* 15 is under the start: closed */
    s_missed(&w, 5000000);
    assert_int_equal(w.window_us, 0);
}

/*  A timer that fires more often than the setting is no client: it never opens the window. */
static void test_deadlines_without_work_close_it(void **state)
{
    (void)state;
    busy_poll_t w;
    busy_poll_init(&w, 10000);
    for (int i = 0; i < 10; i++)
        busy_poll_idled(&w, w.window_us, 2000, BUSY_POLL_TIMED_OUT);
    assert_int_equal(w.window_us, 0);
    for (int i = 0; i < 3; i++)
        s_missed(&w, 100);
    assert_int_equal(w.window_us, 4 * BUSY_POLL_GROW_START_US);
    busy_poll_idled(&w, w.window_us, 100, BUSY_POLL_TIMED_OUT);
    assert_int_equal(w.window_us, 2 * BUSY_POLL_GROW_START_US);
    assert_int_equal(w.caught, 0);
}

static void test_a_setting_under_the_start(void **state)
{
    (void)state;
    busy_poll_t w;
    busy_poll_init(&w, 10);
    s_missed(&w, 8);
    assert_int_equal(w.window_us, 10);
    s_missed(&w, 8);
    assert_int_equal(w.window_us, 10);
    s_missed(&w, 11);
    assert_int_equal(w.window_us, 0);
}

static void test_counters(void **state)
{
    (void)state;
    busy_poll_t w;
    busy_poll_init(&w, 100);
    busy_poll_idled(&w, 0, 50, BUSY_POLL_WOKEN);
    busy_poll_idled(&w, 25, 25, BUSY_POLL_CAUGHT);
    busy_poll_idled(&w, 25, 90, BUSY_POLL_WOKEN);
    busy_poll_idled(&w, 50, 1000, BUSY_POLL_TIMED_OUT);
    busy_poll_idled(&w, 7, 7, BUSY_POLL_CAUGHT);
    assert_int_equal(w.caught, 2);
    assert_int_equal(w.looked_us, 107);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_never_opens),
        cmocka_unit_test(test_close_requests_open_it_up_to_the_setting),
        cmocka_unit_test(test_sparse_requests_close_it),
        cmocka_unit_test(test_deadlines_without_work_close_it),
        cmocka_unit_test(test_a_setting_under_the_start),
        cmocka_unit_test(test_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
