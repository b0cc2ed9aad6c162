/*  engram_strerror: the messages of ENGRAM_ERRORS (include/engram/error.h).
 *
 *  libengram exports it, and every part of engram that prints an error code (engramd's
 *  libraries, the CLI, tests, benchmarks) links it from here, through the engram_common library
 *  (node/common/CMakeLists.txt). The CRDT kernel returns codes and never needs their text.
 */
#include "engram/error.h"

const char *engram_strerror(int code)
{
    switch (code) {
#define ENGRAM__ERROR_CASE(name, value, message)                                                   \
    case value:                                                                                    \
        return message;
        ENGRAM_ERRORS(ENGRAM__ERROR_CASE)
#undef ENGRAM__ERROR_CASE
    }
    return "unknown error";
}
