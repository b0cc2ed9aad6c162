/*  Property-test support: a seeded, reproducible random source and checks that print the
 *  seed that replays a failure.
 *
 *  Each test run takes its seed from ENGRAM_SEED (a number), or a fixed default so CI is
 *  reproducible; ENGRAM_SEED=random draws one from the clock. ENGRAM_PROP_SCALE (default 1,
 *  may be fractional, e.g. 0.05 under valgrind) scales the number of random cases.
 *
 *  PROP_CHECK(cond) fails the current cmocka test with the seed and case in the message;
 *  rerun with ENGRAM_SEED=<seed> to replay exactly that run.
 */
#ifndef ENGRAM_TEST_PROP_H
#define ENGRAM_TEST_PROP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct {
    uint64_t state;
} prop_rng_t;

/*  The run's base seed (printed once per process). */
uint64_t prop_seed(void);
/*  cases scaled by ENGRAM_PROP_SCALE, at least 1. */
int prop_cases(int cases);
/*  Sets the case being run, for failure messages; returns an rng seeded for that case. */
prop_rng_t prop_case(const char *name, int index);
uint64_t prop_next(prop_rng_t *rng);
/*  Uniform in [0, bound). */
uint64_t prop_below(prop_rng_t *rng, uint64_t bound);
/*  True with probability percent/100. */
int prop_chance(prop_rng_t *rng, unsigned percent);
/*  Shuffles n items of size bytes in place. */
void prop_shuffle(prop_rng_t *rng, void *items, size_t n, size_t size);

void prop__fail(const char *file, int line, const char *expr);

#define PROP_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond))                                                                           \
            prop__fail(__FILE__, __LINE__, #cond);                                             \
    } while (0)

#endif
