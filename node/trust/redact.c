/*  node_redact: see redact.h for what is matched and the bounds.
 *
 *  A redactor holds matchers: a user pattern is one compiled regular expression, a built-in is
 *  one or more scanners (@secret has one per kind of secret). A scanner returns the earliest
 *  match starting at or after a position, the longest there, reading the data before the
 *  position as context; node_redact keeps each matcher's next match and searches again only
 *  for the matchers whose next match started inside the match just replaced, so every search
 *  moves forward.
 */
#include "node/trust/redact.h"

#include <assert.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/error.h"
#include "node/common/words.h"

#ifndef REG_STARTEND
#error "node/trust/redact.c needs regexec's REG_STARTEND (glibc)"
#endif
/*  Offsets into the data are kept in regoff_t (an int in glibc). */
_Static_assert(NODE_REDACT_MAX_BYTES <= INT_MAX, "regoff_t holds every offset");
_Static_assert(NODE_REDACT_MAX_MATCH > 2 * NODE_REDACT_SPAN, "an extension reaches past a window");

typedef enum { S_EMAIL, S_PHONE, S_CARD, S_SECRET, S_PATTERN } s_kind_t;

static const char *const s_replacement[] = {
    [S_EMAIL] = "[redacted:email]",     [S_PHONE] = "[redacted:phone]",
    [S_CARD] = "[redacted:card]",       [S_SECRET] = "[redacted:secret]",
    [S_PATTERN] = "[redacted:pattern]",
};

/*  A scanner: the earliest match in d[0..len) starting at or after from, the longest there, as
 *  [*so, *eo); false when there is none. */
typedef bool (*s_scan_fn)(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo);

typedef struct {
    s_kind_t kind;  /* what the replacement names */
    s_scan_fn scan; /* a built-in's scanner, or NULL for a user pattern */
    regex_t re;     /* the compiled user pattern when scan is NULL; regfree'd by destroy */
} s_matcher_t;

struct node_redactor {
    s_matcher_t *matchers; /* owned */
    size_t n;              /* matchers in use */
};

/*  --- bytes, ASCII only (the C library's classes follow the locale) ------------------------ */

static bool s_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool s_is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static bool s_is_lower(uint8_t c)
{
    return c >= 'a' && c <= 'z';
}

static bool s_is_alnum(uint8_t c)
{
    return s_is_digit(c) || s_is_upper(c) || s_is_lower(c);
}

static bool s_is_word(uint8_t c)
{
    return s_is_alnum(c) || c == '_';
}

static uint8_t s_to_lower(uint8_t c)
{
    return s_is_upper(c) ? (uint8_t)(c - 'A' + 'a') : c;
}

/*  Whether c is one of the bytes of set (never NUL). */
static bool s_in(uint8_t c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

static bool s_is_blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/*  Whether lower-case word starts at d[p], case ignored. */
static bool s_word_at(const uint8_t *d, size_t p, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len - p < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s_to_lower(d[p + i]) != (uint8_t)word[i])
            return false;
    return true;
}

/*  Whether a number may start at p: not after a word byte, nor after one of joiners that
 *  follows a digit (the number would continue another: "3.14", "1,000", "12-555"). */
static bool s_number_starts(const uint8_t *d, size_t p, const char *joiners)
{
    return p == 0 ||
           (!s_is_word(d[p - 1]) && !(p >= 2 && s_in(d[p - 1], joiners) && s_is_digit(d[p - 2])));
}

/*  Whether a number may end at e, as s_number_starts. */
static bool s_number_ends(const uint8_t *d, size_t e, size_t len, const char *joiners)
{
    return e == len ||
           (!s_is_word(d[e]) && !(e + 1 < len && s_in(d[e], joiners) && s_is_digit(d[e + 1])));
}

/*  Digits at d[p], counting at most max + 1 of them. */
static size_t s_digits(const uint8_t *d, size_t p, size_t len, size_t max)
{
    size_t n = 0;
    while (p + n < len && n <= max && s_is_digit(d[p + n]))
        n++;
    return n;
}

/*  --- @email --------------------------------------------------------------------------------- */

static bool s_is_local(uint8_t c)
{
    return s_is_alnum(c) || s_in(c, "._%+-");
}

static bool s_is_domain(uint8_t c)
{
    return s_is_alnum(c) || c == '-' || c == '.';
}

/*  The end of the domain that starts at p (just after an '@'), or 0 when there is none: dot-
 *  joined non-empty labels, the last of two letters or more. Trailing dots and dashes are
 *  punctuation. */
static size_t s_domain_end(const uint8_t *d, size_t p, size_t len)
{
    size_t e = p;
    while (e < len && s_is_domain(d[e]))
        e++;
    while (e > p && (d[e - 1] == '.' || d[e - 1] == '-'))
        e--;
    size_t label = 0, dots = 0, letters = 0;
    for (size_t i = p; i < e; i++) {
        if (d[i] == '.') {
            if (label == 0)
                return 0;
            dots++;
            label = letters = 0;
            continue;
        }
        label++;
        letters += s_is_upper(d[i]) || s_is_lower(d[i]);
    }
    return dots > 0 && label >= 2 && letters == label ? e : 0;
}

static bool s_scan_email(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    /* Addresses in the order of their '@': a local part never holds an '@', so the starts
       come in that order too. */
    for (size_t at = from + 1; at < len; at++) {
        if (d[at] != '@' || !s_is_local(d[at - 1]))
            continue;
        size_t e = s_domain_end(d, at + 1, len);
        if (e == 0)
            continue;
        size_t s = at - 1;
        while (s > from && s_is_local(d[s - 1]))
            s--;
        *so = s;
        *eo = e;
        return true;
    }
    return false;
}

/*  --- @phone --------------------------------------------------------------------------------- */

static bool s_is_phone_sep(uint8_t c)
{
    return c == ' ' || c == '-' || c == '.';
}

/*  The end of an international number at p (a '+'), or 0. */
static size_t s_international_at(const uint8_t *d, size_t p, size_t len)
{
    size_t q = p + 1, digits = 0, end = 0;
    bool parenthesized = false;
    for (;;) {
        size_t n;
        if (q < len && d[q] == '(' && !parenthesized && digits > 0) {
            n = s_digits(d, q + 1, len, 15);
            if (n == 0 || q + 1 + n >= len || d[q + 1 + n] != ')')
                break;
            parenthesized = true;
            q += n + 2;
        } else {
            n = s_digits(d, q, len, 15);
            if (n == 0)
                break;
            q += n;
        }
        digits += n;
        if (digits > 15)
            return 0;
        end = q;
        if (q + 1 < len && s_is_phone_sep(d[q]) && (s_is_digit(d[q + 1]) || d[q + 1] == '('))
            q++;
    }
    return digits >= 8 && s_number_ends(d, end, len, "-.,") ? end : 0;
}

/*  Whether exactly 3 digits and a separator are at d[q]. */
static bool s_group3_at(const uint8_t *d, size_t q, size_t len)
{
    return s_digits(d, q, len, 3) == 3 && q + 3 < len && s_is_phone_sep(d[q + 3]);
}

/*  The end of a North American number at q without its "1 ", or 0. */
static size_t s_nanp_at(const uint8_t *d, size_t q, size_t len)
{
    if (q < len && d[q] == '(') {
        if (s_digits(d, q + 1, len, 3) != 3 || q + 4 >= len || d[q + 4] != ')')
            return 0;
        q += 5;
        if (q < len && d[q] == ' ')
            q++;
    } else {
        if (!s_group3_at(d, q, len))
            return 0;
        q += 4;
    }
    if (!s_group3_at(d, q, len) || s_digits(d, q + 4, len, 4) != 4)
        return 0;
    q += 8;
    return s_number_ends(d, q, len, "-.,") ? q : 0;
}

static bool s_scan_phone(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    for (size_t p = from; p < len; p++) {
        size_t e = 0;
        if (d[p] == '+') {
            if (p == 0 || !s_is_word(d[p - 1]))
                e = s_international_at(d, p, len);
        } else if ((d[p] == '(' || s_is_digit(d[p])) && s_number_starts(d, p, "-.,")) {
            if (d[p] == '1' && p + 1 < len && s_is_phone_sep(d[p + 1]))
                e = s_nanp_at(d, p + 2, len);
            if (e == 0)
                e = s_nanp_at(d, p, len);
        }
        if (e) {
            *so = p;
            *eo = e;
            return true;
        }
    }
    return false;
}

/*  --- @card ---------------------------------------------------------------------------------- */

enum { S_CARD_MIN = 13, S_CARD_MAX = 19 };

static bool s_luhn(const uint8_t *digits, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = digits[n - 1 - i];
        if (i % 2) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/*  The end of the longest card number starting at p (the first digit of a group), or 0. */
static size_t s_card_at(const uint8_t *d, size_t p, size_t len)
{
    uint8_t digits[S_CARD_MAX];
    size_t n = 0, groups = 0, q = p, best = 0;
    for (;;) {
        size_t run = s_digits(d, q, len, S_CARD_MAX);
        if (groups == 0 && run != 4) {
            if (run < S_CARD_MIN || run > S_CARD_MAX || !s_number_ends(d, q + run, len, ".,"))
                return 0;
            for (size_t i = 0; i < run; i++)
                digits[i] = (uint8_t)(d[q + i] - '0');
            return s_luhn(digits, run) ? q + run : 0;
        }
        if ((groups > 0 && (run < 3 || run > 6)) || n + run > S_CARD_MAX)
            break;
        for (size_t i = 0; i < run; i++)
            digits[n + i] = (uint8_t)(d[q + i] - '0');
        n += run;
        q += run;
        groups++;
        if (groups >= 2 && n >= S_CARD_MIN && s_number_ends(d, q, len, ".,") && s_luhn(digits, n))
            best = q;
        if (!(q + 1 < len && (d[q] == ' ' || d[q] == '-') && s_is_digit(d[q + 1])))
            break;
        q++;
    }
    return best;
}

static bool s_scan_card(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    for (size_t p = from; p < len; p++) {
        if (!s_is_digit(d[p]) || (p > 0 && s_is_digit(d[p - 1])) || !s_number_starts(d, p, ".,"))
            continue;
        size_t e = s_card_at(d, p, len);
        if (e) {
            *so = p;
            *eo = e;
            return true;
        }
    }
    return false;
}

/*  --- @secret -------------------------------------------------------------------------------- */

enum {
    /* How far before the search position the bearer and assignment scanners look for the
       keyword or key of a value that starts at or after it. */
    S_LOOKBACK = 64,
    /* Shortest bearer token, and shortest assignment value. */
    S_BEARER_MIN = 16,
    S_VALUE_MIN = 8,
    /* Shortest JWT header and payload segments. */
    S_JWT_SEGMENT_MIN = 10,
};

typedef enum { S_ALNUM, S_URLSAFE, S_UPPER_DIGIT, S_TOKEN68 } s_alphabet_t;

static bool s_in_alphabet(uint8_t c, s_alphabet_t a)
{
    switch (a) {
    case S_ALNUM:
        return s_is_alnum(c);
    case S_URLSAFE:
        return s_is_alnum(c) || c == '-' || c == '_';
    case S_UPPER_DIGIT:
        return s_is_upper(c) || s_is_digit(c);
    case S_TOKEN68:
        return s_is_alnum(c) || s_in(c, "-._~+/");
    }
    return false;
}

/*  The end of the run of a's bytes at d[p]. */
static size_t s_run(const uint8_t *d, size_t p, size_t len, s_alphabet_t a)
{
    size_t e = p;
    while (e < len && s_in_alphabet(d[e], a))
        e++;
    return e;
}

/*  The token after "Bearer". */
static bool s_scan_bearer(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    for (size_t p = from > S_LOOKBACK ? from - S_LOOKBACK : 0; p < len; p++) {
        if ((p > 0 && s_is_word(d[p - 1])) || !s_word_at(d, p, len, "bearer"))
            continue;
        size_t t = p + strlen("bearer");
        if (t == len || !s_is_blank(d[t]))
            continue;
        while (t < len && s_is_blank(d[t]))
            t++;
        size_t e = s_run(d, t, len, S_TOKEN68);
        if (e - t < S_BEARER_MIN || t < from)
            continue;
        while (e < len && d[e] == '=')
            e++;
        *so = t;
        *eo = e;
        return true;
    }
    return false;
}

/*  Key suffixes that make an assignment's value a secret, '-' and '.' read as '_'. */
static const char *const s_secret_keys[] = {
    "api_key", "apikey",   "access_key", "secret_key", "private_key",   "token",
    "secret",  "password", "passwd",     "passphrase", "authorization",
};

/*  Whether the key before the operator at q ends in one of s_secret_keys: spaces and one
 *  closing quote may stand between them. */
static bool s_secret_key_before(const uint8_t *d, size_t q)
{
    size_t k = q;
    while (k > 0 && s_is_blank(d[k - 1]))
        k--;
    if (k > 0 && (d[k - 1] == '"' || d[k - 1] == '\''))
        k--;
    for (size_t i = 0; i < sizeof s_secret_keys / sizeof s_secret_keys[0]; i++) {
        const char *key = s_secret_keys[i];
        size_t n = strlen(key), j = 0;
        if (k < n)
            continue;
        for (; j < n; j++) {
            uint8_t c = s_to_lower(d[k - n + j]);
            if ((c == '-' || c == '.' ? '_' : c) != (uint8_t)key[j])
                break;
        }
        if (j == n)
            return true;
    }
    return false;
}

/*  The end of an unquoted value starting at p. */
static size_t s_value_end(const uint8_t *d, size_t p, size_t len)
{
    while (p < len && d[p] > ' ' && d[p] != 0x7f && !s_in(d[p], "\"'`,;&()[]{}<>"))
        p++;
    return p;
}

/*  Whether d[s..e) is an HTTP authentication scheme that comes before a credential. */
static bool s_is_scheme(const uint8_t *d, size_t s, size_t e)
{
    static const char *const schemes[] = {"bearer", "basic", "token"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (e - s == strlen(schemes[i]) && s_word_at(d, s, e, schemes[i]))
            return true;
    return false;
}

/*  The value after an assignment operator, whose first byte after the blanks is at v:
 *  *vs..*ve; false when there is none long enough. */
static bool s_assignment_value(const uint8_t *d, size_t v, size_t len, size_t *vs, size_t *ve)
{
    if (v == len)
        return false;
    size_t s = v, e;
    if (s_in(d[v], "\"'`")) {
        e = ++s;
        while (e < len && d[e] != d[v] && d[e] != '\n')
            e++;
    } else {
        e = s_value_end(d, s, len);
        if (s_is_scheme(d, s, e) && e < len && s_is_blank(d[e])) {
            s = e;
            while (s < len && s_is_blank(d[s]))
                s++;
            e = s_value_end(d, s, len);
        }
    }
    *vs = s;
    *ve = e;
    return e - s >= S_VALUE_MIN;
}

/*  The value of key: value, key=value, "key": "value" and the like. */
static bool s_scan_assignment(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    for (size_t q = from > S_LOOKBACK ? from - S_LOOKBACK : 0; q < len; q++) {
        if ((d[q] != ':' && d[q] != '=') || !s_secret_key_before(d, q))
            continue;
        size_t v = q + 1;
        if (v < len && (d[v] == '=' || d[v] == '>')) /* :=, ==, => */
            v++;
        while (v < len && s_is_blank(d[v]))
            v++;
        size_t vs, ve;
        if (s_assignment_value(d, v, len, &vs, &ve) && vs >= from) {
            *so = vs;
            *eo = ve;
            return true;
        }
    }
    return false;
}

/*  Keys known by their prefix: a body of min bytes or more (exactly min when exact) of the
 *  alphabet, with an upper-case and a lower-case letter and a digit in it when mixed. */
static const struct {
    const char *prefix;
    s_alphabet_t alphabet;
    size_t min;
    bool exact;
    bool mixed;
} s_prefixed[] = {
    {"sk-", S_URLSAFE, 20, false, true},          /* OpenAI, Anthropic (sk-ant-) */
    {"sk_live_", S_ALNUM, 16, false, false},      /* Stripe secret keys */
    {"sk_test_", S_ALNUM, 16, false, false},      /* */
    {"rk_live_", S_ALNUM, 16, false, false},      /* Stripe restricted keys */
    {"rk_test_", S_ALNUM, 16, false, false},      /* */
    {"ghp_", S_ALNUM, 30, false, false},          /* GitHub personal access token */
    {"gho_", S_ALNUM, 30, false, false},          /* GitHub OAuth token */
    {"ghu_", S_ALNUM, 30, false, false},          /* GitHub user-to-server token */
    {"ghs_", S_ALNUM, 30, false, false},          /* GitHub server-to-server token */
    {"ghr_", S_ALNUM, 30, false, false},          /* GitHub refresh token */
    {"github_pat_", S_URLSAFE, 40, false, false}, /* GitHub fine-grained token */
    {"glpat-", S_URLSAFE, 20, false, false},      /* GitLab personal access token */
    {"xoxb-", S_URLSAFE, 10, false, false},       /* Slack bot token */
    {"xoxp-", S_URLSAFE, 10, false, false},       /* Slack user token */
    {"xoxa-", S_URLSAFE, 10, false, false},       /* Slack app token */
    {"xoxr-", S_URLSAFE, 10, false, false},       /* Slack refresh token */
    {"AKIA", S_UPPER_DIGIT, 16, true, false},     /* AWS access key id */
    {"ASIA", S_UPPER_DIGIT, 16, true, false},     /* AWS temporary access key id */
    {"AIza", S_URLSAFE, 35, true, false},         /* Google API key */
    {"hf_", S_ALNUM, 30, false, true},            /* Hugging Face token */
    {"npm_", S_ALNUM, 36, true, false},           /* npm token */
};

/*  A maximal run of one alphabet's bytes and where its last upper-case letter, lower-case
 *  letter and digit are (one past them; 0: none). A key's body ends where its run ends, so
 *  every body inside a run is known from this once the run is read: each byte is read once
 *  however many prefixes the run holds ("-sk--sk--sk-..."). */
typedef struct {
    size_t start, end;
    size_t upper, lower, digit;
} s_run_t;

/*  The run of alphabet a that holds d[q], from runs[a] when it does already. */
static const s_run_t *s_run_of(s_run_t *runs, const uint8_t *d, size_t q, size_t len,
                               s_alphabet_t a)
{
    s_run_t *run = &runs[a];
    if (q >= run->start && q < run->end)
        return run;
    *run = (s_run_t){.start = q, .end = q};
    for (; run->end < len && s_in_alphabet(d[run->end], a); run->end++) {
        uint8_t c = d[run->end];
        if (s_is_upper(c))
            run->upper = run->end + 1;
        else if (s_is_lower(c))
            run->lower = run->end + 1;
        else if (s_is_digit(c))
            run->digit = run->end + 1;
    }
    return run;
}

/*  The end of the longest prefixed key at p, or 0. */
static size_t s_prefixed_at(s_run_t *runs, const uint8_t *d, size_t p, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < sizeof s_prefixed / sizeof s_prefixed[0]; i++) {
        if (d[p] != (uint8_t)s_prefixed[i].prefix[0])
            continue;
        size_t k = strlen(s_prefixed[i].prefix);
        if (len - p < k || memcmp(d + p, s_prefixed[i].prefix, k) != 0)
            continue;
        size_t b = p + k;
        const s_run_t *run = s_run_of(runs, d, b, len, s_prefixed[i].alphabet);
        size_t e = run->end, body = e - b; /* the run holds b, or is empty at b */
        if (body < s_prefixed[i].min || (s_prefixed[i].exact && body != s_prefixed[i].min) ||
            (e < len && s_is_word(d[e])))
            continue;
        if (s_prefixed[i].mixed && !(run->upper > b && run->lower > b && run->digit > b))
            continue;
        if (e > best)
            best = e;
    }
    return best;
}

static bool s_scan_prefixed(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    s_run_t runs[S_TOKEN68 + 1] = {0};
    for (size_t p = from; p < len; p++) {
        if (p > 0 && s_is_word(d[p - 1]))
            continue;
        size_t e = s_prefixed_at(runs, d, p, len);
        if (e) {
            *so = p;
            *eo = e;
            return true;
        }
    }
    return false;
}

/*  A JSON Web Token: header.payload.signature in base64url, the header's JSON starting eyJ. */
static bool s_scan_jwt(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    for (size_t p = from; p + 3 <= len; p++) {
        if (memcmp(d + p, "eyJ", 3) != 0 || (p > 0 && s_is_word(d[p - 1])))
            continue;
        size_t a = s_run(d, p, len, S_URLSAFE);
        if (a - p >= S_JWT_SEGMENT_MIN && a < len && d[a] == '.') {
            size_t b = s_run(d, a + 1, len, S_URLSAFE);
            if (b - a - 1 >= S_JWT_SEGMENT_MIN && b < len && d[b] == '.') {
                *so = p;
                *eo = s_run(d, b + 1, len, S_URLSAFE);
                return true;
            }
        }
        /* A token starting inside this header would end where it ends, and fail the same. */
        p = a;
    }
    return false;
}

/*  Where needle (n bytes) first occurs in d[from..len), or len. */
static size_t s_find(const uint8_t *d, size_t from, size_t len, const char *needle, size_t n)
{
    for (size_t p = from; len - p >= n; p++) {
        const uint8_t *hit = memchr(d + p, needle[0], len - p - n + 1);
        if (hit == NULL)
            break;
        p = (size_t)(hit - d);
        if (memcmp(hit, needle, n) == 0)
            return p;
    }
    return len;
}

/*  A PEM private key block: "-----BEGIN <label>-----" with a label ending in "PRIVATE KEY",
 *  through "-----END <label>-----", or to the end of the data. */
static bool s_scan_pem(const uint8_t *d, size_t from, size_t len, size_t *so, size_t *eo)
{
    static const char begin[] = "-----BEGIN ", dashes[] = "-----", kind[] = "PRIVATE KEY";
    const size_t nbegin = strlen(begin), ndashes = strlen(dashes), nkind = strlen(kind);
    for (size_t p = s_find(d, from, len, begin, nbegin); p < len;
         p = s_find(d, p + 1, len, begin, nbegin)) {
        size_t label = p + nbegin, l = label;
        while (l < len && (s_is_upper(d[l]) || s_is_digit(d[l]) || d[l] == ' '))
            l++;
        if (l - label < nkind || memcmp(d + l - nkind, kind, nkind) != 0 || len - l < ndashes ||
            memcmp(d + l, dashes, ndashes) != 0)
            continue;
        /* The END line: "-----END " and the same label and dashes. */
        size_t e = l + ndashes;
        for (;;) {
            e = s_find(d, e, len, "-----END ", strlen("-----END "));
            if (e == len)
                break;
            size_t el = e + strlen("-----END ");
            if (len - el >= l - label + ndashes && memcmp(d + el, d + label, l - label) == 0 &&
                memcmp(d + el + (l - label), dashes, ndashes) == 0) {
                e = el + (l - label) + ndashes;
                break;
            }
            e++;
        }
        *so = p;
        *eo = e;
        return true;
    }
    return false;
}

/*  --- user patterns -------------------------------------------------------------------------- */

/*  regexec over d[from..end) (at most NODE_REDACT_MAX_MATCH bytes), the byte before from as
 *  context (the only one glibc looks at, for ^, \b, \< and \>); end counts as the end of the
 *  data only when it is (REG_NOTEOL otherwise). regexec gets a NUL-terminated copy of that
 *  stretch: ASan's regexec interceptor ignores REG_STARTEND and reads the string up to its NUL
 *  (google/sanitizers#1390 is about the same interceptor). 1 and the match in m (offsets in
 *  d), 0 when none, ENGRAM_ENOMEM (REG_ESPACE: the only failure left once a pattern
 *  compiled). */
static int s_exec(const regex_t *re, const uint8_t *d, size_t from, size_t end, size_t len,
                  regmatch_t *m)
{
    char copy[NODE_REDACT_MAX_MATCH + 2];
    size_t base = from > 0 ? from - 1 : 0;
    assert(end - base < sizeof copy);
    memcpy(copy, d + base, end - base);
    copy[end - base] = '\0';
    m->rm_so = (regoff_t)(from - base);
    m->rm_eo = (regoff_t)(end - base);
    int rc = regexec(re, copy, 1, m, REG_STARTEND | (end < len ? REG_NOTEOL : 0));
    if (rc == REG_NOMATCH)
        return 0;
    if (rc != 0)
        return ENGRAM_ENOMEM;
    m->rm_so += (regoff_t)base;
    m->rm_eo += (regoff_t)base;
    return 1;
}

/*  The next non-empty match of re at or after from, searched in windows (redact.h, Bounds).
 *  1 with [*so, *eo), 0, or ENGRAM_ENOMEM. */
static int s_search(const regex_t *re, const uint8_t *d, size_t from, size_t len, size_t *so,
                    size_t *eo)
{
    size_t w = from;
    for (;;) {
        size_t e = len - w > 2 * NODE_REDACT_SPAN ? w + 2 * NODE_REDACT_SPAN : len;
        regmatch_t m;
        int rc = s_exec(re, d, w, e, len, &m);
        if (rc < 0)
            return rc;
        if (rc == 1 && ((size_t)m.rm_so < w + NODE_REDACT_SPAN || e == len)) {
            if (m.rm_eo == m.rm_so) { /* empty: look again one byte further */
                if ((size_t)m.rm_so == len)
                    return 0;
                w = (size_t)m.rm_so + 1;
                continue;
            }
            if ((size_t)m.rm_eo == e && e < len) { /* it may go on past the window */
                size_t s = (size_t)m.rm_so,
                       x = len - s > NODE_REDACT_MAX_MATCH ? s + NODE_REDACT_MAX_MATCH : len;
                regmatch_t longer;
                rc = s_exec(re, d, s, x, len, &longer);
                if (rc < 0)
                    return rc;
                if (rc == 1 && longer.rm_eo > longer.rm_so)
                    m = longer;
            }
            *so = (size_t)m.rm_so;
            *eo = (size_t)m.rm_eo;
            return 1;
        }
        if (e == len)
            return 0;
        w += NODE_REDACT_SPAN;
    }
}

/*  Whether pattern (an extended regular expression that compiled) has a back-reference: a
 *  backslash and a digit 1-9 outside brackets. */
static bool s_has_backreference(const char *pattern)
{
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\') {
            if (p[1] >= '1' && p[1] <= '9')
                return true;
            if (p[1])
                p++;
        } else if (*p == '[') {
            /* A bracket: "[^]...]" and "[]...]" hold a ']', "[:alpha:]", "[.x.]" and "[=x=]"
               hold brackets of their own. */
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']') {
                if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                    const char *close = strchr(p + 2, p[1]);
                    while (close && close[1] != ']')
                        close = strchr(close + 1, p[1]);
                    if (close == NULL)
                        return false;
                    p = close + 1;
                }
                p++;
            }
            if (*p == '\0')
                return false;
        }
    }
    return false;
}

/*  --- the redactor --------------------------------------------------------------------------- */

enum { S_MAX_SCANS = 5 };

static const struct {
    const char *name;
    s_kind_t kind;
    s_scan_fn scans[S_MAX_SCANS]; /* NULL-terminated when shorter */
} s_builtins[] = {
    {"@email", S_EMAIL, {s_scan_email}},
    {"@phone", S_PHONE, {s_scan_phone}},
    {"@card", S_CARD, {s_scan_card}},
    {"@secret",
     S_SECRET,
     {s_scan_bearer, s_scan_assignment, s_scan_prefixed, s_scan_jwt, s_scan_pem}},
};

static void s_why(char *why, size_t why_len, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void s_why(char *why, size_t why_len, const char *format, ...)
{
    if (why_len == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_len, format, args);
    va_end(args);
}

/*  Whether pattern is shaped as a built-in's name: '@' then letters, digits, '_' or '-'. */
static bool s_is_name(const char *pattern)
{
    if (pattern[0] != '@' || pattern[1] == '\0')
        return false;
    for (const char *p = pattern + 1; *p; p++)
        if (!s_is_word((uint8_t)*p) && *p != '-')
            return false;
    return true;
}

/*  Adds the matchers of pattern number i (from 0) to self. */
static int s_add(node_redactor_t *self, const char *pattern, size_t i, char *why, size_t why_len)
{
    size_t nbuiltins = sizeof s_builtins / sizeof s_builtins[0];
    if (pattern[0] == '\0') {
        s_why(why, why_len, "pattern %zu is empty", i + 1);
        return ENGRAM_EINVAL;
    }
    if (s_is_name(pattern)) {
        size_t nearest = 0, distance = SIZE_MAX;
        for (size_t b = 0; b < nbuiltins; b++) {
            if (strcmp(pattern, s_builtins[b].name) == 0) {
                for (size_t k = 0; k < S_MAX_SCANS && s_builtins[b].scans[k]; k++)
                    self->matchers[self->n++] =
                        (s_matcher_t){.kind = s_builtins[b].kind, .scan = s_builtins[b].scans[k]};
                return 0;
            }
            size_t dist = node_words_distance(pattern, s_builtins[b].name);
            if (dist < distance) {
                distance = dist;
                nearest = b;
            }
        }
        if (distance <= 2)
            s_why(why, why_len, "pattern %zu: unknown built-in \"%s\"; did you mean \"%s\"?", i + 1,
                  pattern, s_builtins[nearest].name);
        else
            s_why(why, why_len,
                  "pattern %zu: unknown built-in \"%s\" (the built-ins are @email, @phone, "
                  "@card and @secret; write [@] for a regular expression's leading '@')",
                  i + 1, pattern);
        return ENGRAM_EINVAL;
    }
    s_matcher_t *m = &self->matchers[self->n];
    int rc = regcomp(&m->re, pattern, REG_EXTENDED | REG_NEWLINE);
    if (rc == REG_ESPACE)
        return ENGRAM_ENOMEM;
    if (rc != 0) {
        if (why_len > 0) {
            regerror(rc, &m->re, why, why_len);
            size_t k = strlen(why);
            snprintf(why + k, why_len - k, " in pattern %zu (\"%s\")", i + 1, pattern);
        }
        return ENGRAM_EINVAL;
    }
    if (s_has_backreference(pattern)) {
        regfree(&m->re);
        s_why(why, why_len,
              "pattern %zu (\"%s\"): back-references are not allowed (their matching cost has "
              "no bound)",
              i + 1, pattern);
        return ENGRAM_EINVAL;
    }
    m->kind = S_PATTERN;
    m->scan = NULL;
    self->n++;
    return 0;
}

int node_redactor_new(const char *const *patterns, size_t n, node_redactor_t **self_p, char *why,
                      size_t why_len)
{
    assert(self_p);
    assert(patterns || n == 0);
    if (why_len > 0)
        why[0] = '\0';
    node_redactor_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return ENGRAM_ENOMEM;
    /* Room for the most matchers n patterns can make. */
    self->matchers = calloc(n ? n * S_MAX_SCANS : 1, sizeof *self->matchers);
    if (self->matchers == NULL) {
        free(self);
        return ENGRAM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        assert(patterns[i]);
        int rc = s_add(self, patterns[i], i, why, why_len);
        if (rc != 0) {
            node_redactor_destroy(&self);
            return rc;
        }
    }
    *self_p = self;
    return 0;
}

void node_redactor_destroy(node_redactor_t **self_p)
{
    assert(self_p);
    node_redactor_t *self = *self_p;
    if (self == NULL)
        return;
    for (size_t i = 0; i < self->n; i++)
        if (self->matchers[i].scan == NULL)
            regfree(&self->matchers[i].re);
    free(self->matchers);
    free(self);
    *self_p = NULL;
}

bool node_redact_pattern_ok(const char *pattern, char *why, size_t why_len)
{
    assert(pattern);
    node_redactor_t *r = NULL;
    int rc = node_redactor_new(&pattern, 1, &r, why, why_len);
    if (rc == ENGRAM_ENOMEM)
        s_why(why, why_len, "%s", engram_strerror(rc));
    node_redactor_destroy(&r);
    return rc == 0;
}

/*  --- redacting ------------------------------------------------------------------------------ */

/*  The output: never more than NODE_REDACT_MAX_BYTES. */
typedef struct {
    uint8_t *data; /* owned until handed to the caller */
    size_t len;
    size_t cap;
} s_out_t;

static int s_append(s_out_t *out, const void *bytes, size_t n)
{
    if (n == 0)
        return 0;
    if (n > NODE_REDACT_MAX_BYTES - out->len)
        return ENGRAM_ETOOBIG;
    if (n > out->cap - out->len) {
        size_t cap = out->cap;
        while (cap - out->len < n)
            cap = cap > NODE_REDACT_MAX_BYTES / 2 ? NODE_REDACT_MAX_BYTES : cap * 2;
        uint8_t *data = realloc(out->data, cap);
        if (data == NULL)
            return ENGRAM_ENOMEM;
        out->data = data;
        out->cap = cap;
    }
    memcpy(out->data + out->len, bytes, n);
    out->len += n;
    return 0;
}

/*  A matcher's next match. */
typedef struct {
    bool found;
    size_t so, eo;
} s_next_t;

static int s_next(const s_matcher_t *m, const uint8_t *d, size_t from, size_t len, s_next_t *next)
{
    if (m->scan) {
        next->found = m->scan(d, from, len, &next->so, &next->eo);
        return 0;
    }
    int rc = s_search(&m->re, d, from, len, &next->so, &next->eo);
    next->found = rc == 1;
    return rc < 0 ? rc : 0;
}

int node_redact(const node_redactor_t *self, const uint8_t *data, size_t len, uint8_t **out,
                size_t *out_len, size_t *matches)
{
    assert(self && out && out_len);
    assert(data || len == 0);
    *out = NULL;
    *out_len = 0;
    if (matches)
        *matches = 0;
    if (len > NODE_REDACT_MAX_BYTES)
        return ENGRAM_ETOOBIG;
    s_out_t o = {.data = malloc(len ? len : 1), .cap = len ? len : 1};
    s_next_t *next = calloc(self->n ? self->n : 1, sizeof *next);
    int rc = o.data && next ? 0 : ENGRAM_ENOMEM;
    size_t pos = 0, count = 0;
    for (size_t i = 0; i < self->n && rc == 0 && len > 0; i++)
        rc = s_next(&self->matchers[i], data, 0, len, &next[i]);
    while (rc == 0) {
        size_t best = self->n;
        for (size_t i = 0; i < self->n; i++)
            if (next[i].found && (best == self->n || next[i].so < next[best].so ||
                                  (next[i].so == next[best].so && next[i].eo > next[best].eo)))
                best = i;
        if (best == self->n)
            break;
        assert(next[best].so >= pos); /* every search starts at pos or later */
        const char *replacement = s_replacement[self->matchers[best].kind];
        rc = s_append(&o, data + pos, next[best].so - pos);
        if (rc == 0)
            rc = s_append(&o, replacement, strlen(replacement));
        count++;
        pos = next[best].eo;
        for (size_t i = 0; i < self->n && rc == 0; i++)
            if (next[i].found && next[i].so < pos)
                rc = s_next(&self->matchers[i], data, pos, len, &next[i]);
    }
    if (rc == 0)
        rc = s_append(&o, data + pos, len - pos);
    free(next);
    if (rc != 0) {
        free(o.data);
        return rc;
    }
    *out = o.data;
    *out_len = o.len;
    if (matches)
        *matches = count;
    return 0;
}
