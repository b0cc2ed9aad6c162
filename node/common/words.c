/*  node_words: see words.h. */
#include "node/common/words.h"

#include <stdint.h>
#include <string.h>

static size_t s_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

size_t node_words_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > NODE_WORDS_MAX || m > NODE_WORDS_MAX)
        return SIZE_MAX;
    unsigned char d[NODE_WORDS_MAX + 1][NODE_WORDS_MAX + 1]; /* distances stay <= 64 */
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t best = s_min(s_min(d[i - 1][j], d[i][j - 1]) + 1,
                                d[i - 1][j - 1] + (size_t)(a[i - 1] != b[j - 1]));
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                best = s_min(best, d[i - 2][j - 2] + 1u);
            d[i][j] = (unsigned char)best;
        }
    return d[n][m];
}
