/*  crdt_array: growth of the small hand-managed arrays of the kernel, gossip/ and node/ (a
 *  pointer, a count and a capacity kept side by side by their owner).
 *
 *  Invariant: capacity only grows, by doubling, so appending n items costs O(n) copies. The
 *  owner keeps the array and frees it with free(); nothing here knows what the items are.
 */
#ifndef CRDT_ARRAY_H
#define CRDT_ARRAY_H

#include <stddef.h>

/*  Makes room for at least `need` items of item_size bytes in *items (capacity *cap, both
 *  updated). 0, or ENGRAM_ENOMEM with *items and *cap unchanged (also when the size in bytes
 *  would not fit a size_t). */
int crdt_array_grow(void **items, size_t *cap, size_t need, size_t item_size);

#endif
