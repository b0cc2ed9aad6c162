/*  node_grow: room for one more item in an array its caller owns, by doubling: the one
 *  growth rule of node/'s lists (search scopes and candidates, import plans, remote events,
 *  index postings, ACL lists).
 */
#ifndef NODE_GROW_H
#define NODE_GROW_H

#include <stddef.h>

/*  When n == *cap, reallocates the array *items_p points at (a T **, passed as void *) to
 *  twice *cap items of item_size bytes, or to first items when *cap is 0, and sets *cap;
 *  otherwise does nothing. 0, or ENGRAM_ENOMEM with the array and *cap as they were (also
 *  when the new size would overflow). */
int node_grow(void *items_p, size_t *cap, size_t n, size_t item_size, size_t first);

/*  node_grow for an array `items` (a T *) of `n` items in `cap`. */
#define NODE_GROW(items, cap, n, first) node_grow(&(items), &(cap), (n), sizeof *(items), (first))

#endif
