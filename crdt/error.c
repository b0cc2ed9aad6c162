/*  engram_strerror: the messages of ENGRAM_ERRORS (include/engram/error.h). */
#include "engram/error.h"

const char *engram_strerror(int code)
{
    switch (code) {
#define ENGRAM__ERROR_CASE(name, value, message)                                               \
    case value:                                                                                \
        return message;
        ENGRAM_ERRORS(ENGRAM__ERROR_CASE)
#undef ENGRAM__ERROR_CASE
    }
    return "unknown error";
}
