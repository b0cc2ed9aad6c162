/*  engram error codes.
 *
 *  Every action in engram returns 0 or one of these negative codes. The codes and their
 *  messages are written once, in ENGRAM_ERRORS, so the enum and engram_strerror() can never
 *  disagree. Codes are part of the wire protocol and the CLI's exit status: append new ones,
 *  never renumber.
 */
#ifndef ENGRAM_ERROR_H
#define ENGRAM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/*  X(NAME, value, message) */
#define ENGRAM_ERRORS(X)                                                                       \
    X(ENGRAM_OK, 0, "success")                                                                 \
    X(ENGRAM_EINVAL, -1, "invalid argument")                                                   \
    X(ENGRAM_ENOMEM, -2, "out of memory")                                                      \
    X(ENGRAM_EDECODE, -3, "malformed encoding")                                                \
    X(ENGRAM_EVERSION, -4, "encoded by a newer major schema version than this build reads")    \
    X(ENGRAM_ETYPE, -5, "object exists with another type")                                     \
    X(ENGRAM_ENOTFOUND, -6, "not found")                                                       \
    X(ENGRAM_ETOOBIG, -7, "value or message too large")                                        \
    X(ENGRAM_EDOTREUSE, -8, "a dot was issued twice for different content")                    \
    X(ENGRAM_ERANGE, -9, "out of range")                                                       \
    X(ENGRAM_EUNAVAILABLE, -10, "node unavailable")                                            \
    X(ENGRAM_ETIMEDOUT, -11, "timed out waiting for the causal token")                         \
    X(ENGRAM_EIO, -12, "storage failure")                                                      \
    X(ENGRAM_ENOSPC, -13, "no space left on the data volume")                                  \
    X(ENGRAM_EREADONLY, -14, "the data directory is read-only")                                \
    X(ENGRAM_ESCOPE, -15, "invalid scope name")                                               \
    X(ENGRAM_ELAGGED, -16, "subscriber fell too far behind")                                   \
    X(ENGRAM_EREPLICAS, -17, "durable here, but fewer nodes than asked hold the write yet")    \
    X(ENGRAM_EDENIED, -18, "access denied")                                                    \
    X(ENGRAM_EBUSY, -19, "too many requests waiting; retry later")                            \
    X(ENGRAM_ECONFLICT, -20, "the object changed since the version the write expected")

typedef enum {
#define ENGRAM__ERROR_ENUM(name, value, message) name = value,
    ENGRAM_ERRORS(ENGRAM__ERROR_ENUM)
#undef ENGRAM__ERROR_ENUM
} engram_error_t;

/*  Returns the message for an error code; never NULL, "unknown error" for a code not listed. */
const char *engram_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
