/*  Tests of node_http_url, the status page's address engramd gives `engram cluster status`:
 *  HOST as the listen address gave it (the default when none), a V6 host in brackets, and the
 *  port actually listened on, which answers a connection (port 0 takes a free one). No node
 *  loop is asked anything here.
 */
#include "prop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node/http/http.h"

/*  Listens on address, checks the URL is "http://" host ":" PORT "/" with a port that takes a
 *  connection on `family`. */
static void s_expect_url(const char *address, const char *host, int family)
{
    node_http_t *http = NULL;
    char why[256] = "";
    int rc = node_http_new(address, &http, why, sizeof why);
    if (rc)
        fail_msg("%s: %s", address, why);
    const char *url = node_http_url(http);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "http://%s:", host);
    if (strncmp(url, prefix, strlen(prefix)) != 0)
        fail_msg("%s: the URL is %s, not %s...", address, url, prefix);
    char *end = NULL;
    long port = strtol(url + strlen(prefix), &end, 10);
    assert_true(port > 0 && port < 65536);
    assert_string_equal(end, "/");
    int fd = socket(family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage to = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *six = (struct sockaddr_in6 *)&to;
        six->sin6_family = AF_INET6;
        six->sin6_port = htons((uint16_t)port);
        six->sin6_addr = in6addr_loopback;
        len = sizeof *six;
    } else {
        struct sockaddr_in *four = (struct sockaddr_in *)&to;
        four->sin_family = AF_INET;
        four->sin_port = htons((uint16_t)port);
        four->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *four;
    }
    if (connect(fd, (struct sockaddr *)&to, len) != 0)
        fail_msg("%s: nothing listens on the URL's port %ld", address, port);
    close(fd);
    node_http_destroy(&http);
}

static void test_url_names_host_and_port(void **state)
{
    (void)state;
    s_expect_url("127.0.0.1:0", "127.0.0.1", AF_INET);
    s_expect_url(":0", NODE_HTTP_DEFAULT_HOST, AF_INET);
    s_expect_url("0", NODE_HTTP_DEFAULT_HOST, AF_INET);
    s_expect_url("localhost:0", "localhost", AF_INET);
    /* a host without IPv6 loopback (a container may have none) skips the V6 case */
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 loopback = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool v6 = probe >= 0 && bind(probe, (struct sockaddr *)&loopback, sizeof loopback) == 0;
    if (probe >= 0)
        close(probe);
    if (v6)
        s_expect_url("[::1]:0", "[::1]", AF_INET6);
    else
        printf("http_test: no IPv6 loopback here; the [::1] case skipped\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_url_names_host_and_port)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
