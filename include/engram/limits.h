/*  engram defaults and limits, in one place.
 *
 *  Every tunable number lives here as an overridable #ifndef ENGRAM_DEFAULT_* so that no .c
 *  file holds a magic number. Runtime configuration (the node's config file) may lower the
 *  limits further; it may never raise a hard decode limit past what is written here.
 */
#ifndef ENGRAM_LIMITS_H
#define ENGRAM_LIMITS_H

/*  Schema version of every encoded state, delta and value. A reader refuses a newer major
 *  with ENGRAM_EVERSION; a newer minor only adds fields that older readers skip. */
#define ENGRAM_SCHEMA_MAJOR 1
#define ENGRAM_SCHEMA_MINOR 0

/*  Largest object key, set element and value a decoder accepts, in bytes. */
#ifndef ENGRAM_MAX_KEY_BYTES
#define ENGRAM_MAX_KEY_BYTES 1024
#endif
#ifndef ENGRAM_MAX_VALUE_BYTES
#define ENGRAM_MAX_VALUE_BYTES (1024 * 1024)
#endif

/*  Hybrid logical clock: physical milliseconds in the high bits, a logical counter in the
 *  low ENGRAM_HLC_LOGICAL_BITS bits. */
#define ENGRAM_HLC_LOGICAL_BITS 16

#endif
