/*  search_text: terms and BM25 (text.h). */
#include "node/search/text.h"
#include "crdt/array.h"

#include <libstemmer.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "engram/error.h"

struct search_tokenizer {
    struct sb_stemmer *stemmer;
    char *language;
    bool stop_words; /* English: drop s_english_stop */
};

int search_tokenizer_new(const char *language, search_tokenizer_t **self_p)
{
    *self_p = NULL;
    search_tokenizer_t *self = calloc(1, sizeof *self);
    if (!self)
        return ENGRAM_ENOMEM;
    self->language = strdup(language);
    self->stemmer = self->language ? sb_stemmer_new(language, "UTF_8") : NULL;
    self->stop_words = strcmp(language, "english") == 0;
    if (!self->stemmer) {
        int rc = self->language ? ENGRAM_EINVAL : ENGRAM_ENOMEM;
        search_tokenizer_destroy(&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

void search_tokenizer_destroy(search_tokenizer_t **self_p)
{
    search_tokenizer_t *self = *self_p;
    if (!self)
        return;
    if (self->stemmer)
        sb_stemmer_delete(self->stemmer);
    free(self->language);
    free(self);
    *self_p = NULL;
}

const char *search_tokenizer_language(const search_tokenizer_t *self)
{
    return self->language;
}

void search_terms_free(search_terms_t *terms)
{
    for (size_t i = 0; i < terms->n; i++)
        free(terms->terms[i]);
    free(terms->terms);
    terms->terms = NULL;
    terms->n = 0;
}

/*  English stop words (Lucene's EnglishAnalyzer set), in byte order for bsearch: dropped before
 *  stemming, from texts and queries alike. On a small scope BM25 alone would weigh them up
 *  (a rare "and" gets a high idf and ranks the one memory holding it first). */
static const char *const s_english_stop[] = {
    "a",   "an",    "and",  "are",   "as",    "at",   "be",   "but", "by",  "for",  "if",
    "in",  "into",  "is",   "it",    "no",    "not",  "of",   "on",  "or",  "such", "that",
    "the", "their", "then", "there", "these", "they", "this", "to",  "was", "will", "with"};

static int s_cmp_word(const void *key, const void *item)
{
    return strcmp(key, *(const char *const *)item);
}

/*  Whether word[0..len) (case-folded) is one of the tokenizer's stop words. */
static bool s_stop_word(const search_tokenizer_t *self, const uint8_t *word, size_t len)
{
    char text[8];
    if (!self->stop_words || len >= sizeof text)
        return false;
    memcpy(text, word, len);
    text[len] = '\0';
    return bsearch(text, s_english_stop, sizeof s_english_stop / sizeof *s_english_stop,
                   sizeof *s_english_stop, s_cmp_word) != NULL;
}

/*  Letters, marks and numbers make words; every other category separates them. In ASCII
 *  those are the letters and digits alone, decided here without utf8proc's table lookup (a
 *  third of the tokenizer's CPU on English text). */
static bool s_word_char(utf8proc_int32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;
}

/*  Stems word[0..len) and appends the term, unless it is too long or the text has enough. */
static int s_add_term(search_tokenizer_t *self, const uint8_t *word, size_t len,
                      search_terms_t *terms, size_t *cap)
{
    /* Snowball strips a few bytes of suffix at most: a word this long stays too long. */
    if (len > 2 * SEARCH_MAX_TERM_BYTES || terms->n >= SEARCH_MAX_TERMS ||
        s_stop_word(self, word, len))
        return 0;
    const sb_symbol *stem = sb_stemmer_stem(self->stemmer, word, (int)len);
    if (!stem)
        return ENGRAM_ENOMEM;
    size_t stem_len = (size_t)sb_stemmer_length(self->stemmer);
    if (stem_len == 0 || stem_len > SEARCH_MAX_TERM_BYTES)
        return 0;
    if (crdt_array_grow((void **)&terms->terms, cap, terms->n + 1, sizeof *terms->terms))
        return ENGRAM_ENOMEM;
    char *term = malloc(stem_len + 1);
    if (!term)
        return ENGRAM_ENOMEM;
    memcpy(term, stem, stem_len);
    term[stem_len] = '\0';
    terms->terms[terms->n++] = term;
    return 0;
}

/*  text[0..len) in NFKC with full case folding and default-ignorable code points removed, into
 *  *folded (malloc'd): its length, or a negative utf8proc error. ASCII, the common case, is
 *  its own NFKC form with nothing to ignore, and folds by lowering its capitals: that skips
 *  utf8proc's decomposition, which cost a tenth of a put's CPU on English text. */
static utf8proc_ssize_t s_fold(const char *text, size_t len, utf8proc_uint8_t **folded)
{
    size_t ascii = 0;
    while (ascii < len && (unsigned char)text[ascii] < 0x80)
        ascii++;
    if (ascii < len)
        return utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, folded,
                            UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    *folded = malloc(len + 1);
    if (!*folded)
        return UTF8PROC_ERROR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        (*folded)[i] = c >= 'A' && c <= 'Z' ? (utf8proc_uint8_t)(c - 'A' + 'a') : c;
    }
    (*folded)[len] = '\0';
    return (utf8proc_ssize_t)len;
}

int search_tokenize(search_tokenizer_t *self, const char *text, size_t len, search_terms_t *terms)
{
    terms->terms = NULL;
    terms->n = 0;
    if (len == 0)
        return 0;
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t folded_len = s_fold(text, len, &folded);
    if (folded_len < 0)
        return folded_len == UTF8PROC_ERROR_NOMEM ? ENGRAM_ENOMEM : ENGRAM_EINVAL;
    int rc = 0;
    size_t cap = 0, word = 0, at = 0;
    bool in_word = false;
    while (rc == 0 && at < (size_t)folded_len) {
        utf8proc_int32_t cp = folded[at];
        utf8proc_ssize_t step =
            cp < 0x80 ? 1 : utf8proc_iterate(folded + at, folded_len - (utf8proc_ssize_t)at, &cp);
        if (step <= 0) { /* utf8proc's own output is valid UTF-8 */
            rc = ENGRAM_EINVAL;
            break;
        }
        bool inside = s_word_char(cp);
        if (inside && !in_word)
            word = at;
        else if (!inside && in_word)
            rc = s_add_term(self, folded + word, at - word, terms, &cap);
        in_word = inside;
        at += (size_t)step;
    }
    if (rc == 0 && in_word)
        rc = s_add_term(self, folded + word, at - word, terms, &cap);
    free(folded);
    if (rc)
        search_terms_free(terms);
    return rc;
}

double search_bm25_idf(uint64_t docs, uint64_t df)
{
    double n = (double)docs, d = (double)df;
    return log(1.0 + (n - d + 0.5) / (d + 0.5));
}

double search_bm25_term(double idf, uint32_t tf, uint32_t dl, double avgdl)
{
    double f = (double)tf;
    double norm = avgdl > 0 ? (double)dl / avgdl : 1.0;
    return idf * f * (SEARCH_BM25_K1 + 1.0) /
           (f + SEARCH_BM25_K1 * (1.0 - SEARCH_BM25_B + SEARCH_BM25_B * norm));
}
