/*  hello: the smallest program on libengram. It writes a value into a shared scope of the
 *  local node, reads it back with the write's causal token, and prints it.
 *
 *  Usage: hello ENDPOINT [VALUE]       e.g. hello ipc:///tmp/engram.sock
 *
 *  Against an installed engram (README.md, "Building and installing"):
 *      cc hello.c $(pkg-config --cflags --libs engram) -o hello
 *
 *  It acts as agent "hello" (with the key pair `engram agent create hello` makes, in
 *  $ENGRAM_HOME/agents) for user "alice" and writes VALUE (default "hello, engram") to
 *  key "greeting" of the task scope "run:hello"; it prints "run:hello/greeting: VALUE" and
 *  exits 0, or prints the error on stderr and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include <engram/engram.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s ENDPOINT [VALUE]\n", argv[0]);
        return 2;
    }
    const char *value = argc == 3 ? argv[2] : "hello, engram";
    engram_t *e = engram_connect(argv[1], "hello", "alice");
    if (!e) {
        fprintf(stderr, "hello: cannot connect to %s\n", argv[1]);
        return 1;
    }
    engram_result_t *put = NULL, *got = NULL;
    int rc = engram_put(e, "run:hello", "greeting", value, strlen(value), NULL, 0, &put);
    if (rc == 0) /* the token makes the read see the write, on this node or any other */
        rc = engram_get(e, "run:hello", "greeting", put->token, 0, &got);
    if (rc == 0 && got->nitems == 0)
        rc = ENGRAM_ENOTFOUND;
    if (rc == 0)
        printf("run:hello/greeting: %.*s\n", (int)got->items[0].len,
               (const char *)got->items[0].value);
    else
        fprintf(stderr, "hello: %s%s%s\n", engram_strerror(rc), *engram_last_error(e) ? ": " : "",
                engram_last_error(e));
    engram_result_destroy(&put);
    engram_result_destroy(&got);
    engram_destroy(&e);
    return rc == 0 ? 0 : 1;
}
