/*  search_text: the words of a text as the full-text index sees them, and BM25.
 *
 *  A text is split into terms the same way whether it is stored or asked for:
 *    1. it must be valid UTF-8 (anything else is not indexed: ENGRAM_EINVAL);
 *    2. it is normalised to NFKC with case folding and default-ignorable code points removed
 *       (utf8proc: "ﬁle" and "FILE" and "ｆｉｌｅ" are one word);
 *    3. a word is a maximal run of letters, marks and numbers (Unicode categories L*, M*, N*);
 *       everything else separates words;
 *    4. each word is stemmed by the Snowball stemmer of the tokenizer's language (libstemmer;
 *       English by default: "requirements" and "required" are both "requir");
 *    5. a term longer than SEARCH_MAX_TERM_BYTES after stemming is dropped (hashes, base64),
 *       and at most SEARCH_MAX_TERMS terms of a text are kept.
 *  In English, the 33 stop words of Lucene's EnglishAnalyzer ("a", "and", "the", ...) are
 *  dropped before stemming: BM25's idf weighs them down on a large scope, but on a small one
 *  a rare "and" would outweigh the words that matter.
 *
 *  BM25 (Robertson and Zaragoza; k1 = 1.2, b = 0.75, Lucene's non-negative idf):
 *    idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
 *    score(d, q) = sum over query terms t in d of
 *                  idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
 *  with N documents, df of them holding t, tf the times d holds t, dl d's length in terms and
 *  avgdl the mean length. A query term given twice counts twice.
 *
 *  Thread: a tokenizer holds a stemmer, which is not thread-safe; one thread owns it.
 */
#ifndef NODE_SEARCH_TEXT_H
#define NODE_SEARCH_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define SEARCH_MAX_TERM_BYTES   64
#define SEARCH_MAX_TERMS        65536
#define SEARCH_BM25_K1          1.2
#define SEARCH_BM25_B           0.75
#define SEARCH_DEFAULT_LANGUAGE "english"

typedef struct search_tokenizer search_tokenizer_t;

/*  The terms of one text, in text order (repeats kept). Owned by whoever filled it. */
typedef struct {
    char **terms; /* each NUL-terminated, at most SEARCH_MAX_TERM_BYTES bytes */
    size_t n;
} search_terms_t;

/*  A tokenizer for a Snowball language ("english", "french", ...: sb_stemmer_list()).
 *  ENGRAM_EINVAL for a language libstemmer lacks, ENGRAM_ENOMEM. */
int search_tokenizer_new(const char *language, search_tokenizer_t **self_p);
void search_tokenizer_destroy(search_tokenizer_t **self_p);
/*  The tokenizer's language. */
const char *search_tokenizer_language(const search_tokenizer_t *self);

/*  Fills *terms (zeroed first) with the terms of text[0..len). 0, ENGRAM_EINVAL (not UTF-8:
 *  *terms stays empty) or ENGRAM_ENOMEM. An empty text has no terms. */
int search_tokenize(search_tokenizer_t *self, const char *text, size_t len, search_terms_t *terms);
void search_terms_free(search_terms_t *terms);

/*  BM25's inverse document frequency of a term df of docs documents hold. */
double search_bm25_idf(uint64_t docs, uint64_t df);
/*  One term's part of a document's score. */
double search_bm25_term(double idf, uint32_t tf, uint32_t dl, double avgdl);

#endif
