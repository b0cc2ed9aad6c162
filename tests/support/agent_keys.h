/*  agent_keys: CURVE key pairs for the agents of the C tests and benchmarks, as `engram agent
 *  create` writes them: $ENGRAM_HOME/agents/AGENT.cert and AGENT.cert_secret (zcert_save), the
 *  files engram_connect reads.
 *
 *  The first call of either function makes a temporary home for this process (mkdtemp under
 *  /tmp), sets ENGRAM_HOME to it, so that libengram in this process and every child it starts
 *  (the engram CLI, scripts) find the keys there, and unsets ENGRAM_SERVER_KEY, so that clients
 *  pin the keys the tests' nodes publish rather than one from the caller's environment. The
 *  home is removed when the process that made it exits (atexit).
 *
 *  Thread safety: the calls are serialised by a mutex, but the first one changes the
 *  environment: make it (agent_keys_home) before any other thread runs.
 */
#ifndef ENGRAM_TEST_AGENT_KEYS_H
#define ENGRAM_TEST_AGENT_KEYS_H

#include <czmq.h>

/*  The process's ENGRAM_HOME, made on first use; NULL if it cannot be made (said on stderr).
 *  Valid until the process exits. */
const char *agent_keys_home(void);
/*  Makes sure agent has a key pair in the home, making one on the first use of the name.
 *  0, or -1 (said on stderr). */
int agent_keys_make(const char *agent);
/*  agent's key pair (made if needed). Caller owns return value and must destroy it with
 *  zcert_destroy; NULL on failure. */
zcert_t *agent_keys_cert(const char *agent);

#endif
