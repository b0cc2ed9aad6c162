/*  Property-test support (see prop.h). splitmix64 drives every random choice. */
#include "prop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SEED UINT64_C(20261121)

static uint64_t s_seed;
static int s_have_seed;
static const char *s_case_name = "";
static int s_case_index;

uint64_t prop_seed(void)
{
    if (s_have_seed)
        return s_seed;
    const char *env = getenv("ENGRAM_SEED");
    if (env && strcmp(env, "random") == 0)
        s_seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    else if (env && *env)
        s_seed = strtoull(env, NULL, 0);
    else
        s_seed = DEFAULT_SEED;
    s_have_seed = 1;
    fprintf(stderr, "property tests: ENGRAM_SEED=%" PRIu64 "\n", s_seed);
    return s_seed;
}

int prop_cases(int cases)
{
    const char *env = getenv("ENGRAM_PROP_SCALE");
    double scale = env ? strtod(env, NULL) : 1.0;
    int scaled = (int)(cases * scale);
    return scaled < 1 ? 1 : scaled;
}

static uint64_t s_splitmix(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

prop_rng_t prop_case(const char *name, int index)
{
    s_case_name = name;
    s_case_index = index;
    uint64_t state = prop_seed() ^ ((uint64_t)index * UINT64_C(0x2545f4914f6cdd1d));
    for (const char *c = name; *c; c++)
        state = state * 131 + (uint8_t)*c;
    return (prop_rng_t){s_splitmix(&state)};
}

uint64_t prop_next(prop_rng_t *rng)
{
    return s_splitmix(&rng->state);
}

uint64_t prop_below(prop_rng_t *rng, uint64_t bound)
{
    return bound ? prop_next(rng) % bound : 0;
}

int prop_chance(prop_rng_t *rng, unsigned percent)
{
    return prop_below(rng, 100) < percent;
}

void prop_shuffle(prop_rng_t *rng, void *items, size_t n, size_t size)
{
    unsigned char *base = items, tmp[256];
    if (size > sizeof tmp)
        abort();
    for (size_t i = n; i > 1; i--) {
        size_t j = prop_below(rng, i);
        memcpy(tmp, base + (i - 1) * size, size);
        memcpy(base + (i - 1) * size, base + j * size, size);
        memcpy(base + j * size, tmp, size);
    }
}

void prop__fail(const char *file, int line, const char *expr)
{
    print_error("%s:%d: property failed: %s\n  case %s #%d; replay with ENGRAM_SEED=%" PRIu64
                "\n",
                file, line, expr, s_case_name, s_case_index, prop_seed());
    fail();
}
