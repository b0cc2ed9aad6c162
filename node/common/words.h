/*  node_words: how near one word is to another, for the suggestions of engramd's flags and
 *  config keys and of the engram command's words ("did you mean 'durability'?").
 */
#ifndef NODE_WORDS_H
#define NODE_WORDS_H

#include <stddef.h>

/*  Longest word compared; longer words are never near anything. */
#define NODE_WORDS_MAX 64

/*  The optimal string alignment distance of a and b: how many insertions, deletions,
 *  substitutions and swaps of neighbours make one the other. SIZE_MAX when either is longer
 *  than NODE_WORDS_MAX bytes. */
size_t node_words_distance(const char *a, const char *b);

#endif
