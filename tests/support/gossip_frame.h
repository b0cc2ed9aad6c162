/*  Test support: a gossip frame as the tests read it. Engines compress what they send to peers
 *  that read compressed messages (gossip/engine.h, "Compression"); a test that looks inside the
 *  frames an engine or engramd sent reads them through test_gossip_unpack, which inflates an
 *  envelope into the message it carries. Tests that check the receiver's own handling of
 *  compressed frames build them themselves.
 */
#ifndef ENGRAM_TEST_GOSSIP_FRAME_H
#define ENGRAM_TEST_GOSSIP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/gossip.pb-c.h"

/*  The message of frame buf (len bytes), inflated if it came compressed, with the envelope's
 *  schema fields; NULL if it does not decode. Free with engram__gossip__free_unpacked. */
Engram__Gossip *test_gossip_unpack(const uint8_t *buf, size_t len);

#endif
