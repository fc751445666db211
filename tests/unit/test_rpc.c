/*
 * test_rpc.c - the C gRPC client against the C gRPC server, both on one
 * event loop in this process, over loopback TCP: unary, server, client and
 * bidirectional streaming; statuses and their messages; unknown methods;
 * deadlines; cancellation; GOAWAY while a call is open; messages at and
 * over the size limit; many concurrent calls; mutual TLS with certificates
 * made by scripts/sonde-certs, and a client from another CA refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "rpc.h"

#define MAX_MSG  4096
#define MANY     300
#define WAIT_MS  10000
#define STREAM_N 1000

/* ------------------------------------------------------------- the server */

struct srv_state {
    int closes, last_code;
    int half_closes;
};

static struct srv_state S;

static int echo_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    rpc_call_send(c, msg, len);
    rpc_call_finish(c, RPC_OK, NULL);
    return 0;
}

/* Request: a decimal count; answer that many 4-byte messages. */
static int stream_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    char num[16] = "";
    int i, n;

    (void)arg;
    memcpy(num, msg, len < 15 ? len : 15);
    n = atoi(num);
    for (i = 0; i < n; i++) {
        uint8_t b[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};

        rpc_call_send(c, b, sizeof(b));
    }
    rpc_call_finish(c, RPC_OK, NULL);
    return 0;
}

/* Client streaming: count what comes, answer the count at half-close. */
static int collect_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    (void)arg;
    rpc_call_set_data(c, (void *)((uintptr_t)rpc_call_data(c) + 1));
    return 0;
}

static void collect_half_close(struct rpc_call *c, void *arg)
{
    char num[24];

    (void)arg;
    S.half_closes++;
    snprintf(num, sizeof(num), "%lu", (unsigned long)(uintptr_t)rpc_call_data(c));
    rpc_call_send(c, (const uint8_t *)num, strlen(num));
    rpc_call_finish(c, RPC_OK, NULL);
}

/* Bidirectional: echo every message, end at half-close. */
static int bidi_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    rpc_call_send(c, msg, len);
    return 0;
}

static void bidi_half_close(struct rpc_call *c, void *arg)
{
    (void)arg;
    rpc_call_finish(c, RPC_OK, NULL);
}

static int refuse_open(struct rpc_call *c, void *arg)
{
    (void)arg;
    rpc_call_finish(c, RPC_NOT_FOUND, "no such thing: caf\xc3\xa9 100%");
    return RPC_NOT_FOUND;
}

static int peer_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    const char *p = rpc_call_peer(c);

    (void)msg;
    (void)len;
    (void)arg;
    rpc_call_send(c, (const uint8_t *)p, strlen(p));
    rpc_call_finish(c, rpc_call_authenticated(c) ? RPC_OK : RPC_UNAUTHENTICATED, NULL);
    return 0;
}

static void srv_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    (void)c;
    (void)message;
    (void)arg;
    S.closes++;
    S.last_code = code;
}

static const struct rpc_method methods[] = {
    {"/t.T/Echo", {.on_message = echo_message, .on_close = srv_close}, NULL},
    {"/t.T/Stream", {.on_message = stream_message, .on_close = srv_close}, NULL},
    {"/t.T/Collect",
     {.on_message = collect_message, .on_half_close = collect_half_close, .on_close = srv_close},
     NULL},
    {"/t.T/Bidi",
     {.on_message = bidi_message, .on_half_close = bidi_half_close, .on_close = srv_close},
     NULL},
    {"/t.T/Slow", {.on_close = srv_close}, NULL}, /* never answers */
    {"/t.T/Refuse", {.on_open = refuse_open, .on_close = srv_close}, NULL},
    {"/t.T/Peer", {.on_message = peer_message, .on_close = srv_close}, NULL},
};

/* ------------------------------------------------------------- the client */

struct result {
    int closed, code;
    char message[RPC_STATUS_MAX];
    int nmsg;
    size_t bytes;
    uint8_t first[MAX_MSG + 16];
    size_t first_len;
    int in_order; /* Stream: the counters came 0, 1, 2, ... */
};

static int cli_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct result *r = arg;

    (void)c;
    if (r->nmsg == 0) {
        r->in_order = 1;
        r->first_len = len < sizeof(r->first) ? len : sizeof(r->first);
        memcpy(r->first, msg, r->first_len);
    }
    if (len == 4 && ((uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 | (uint32_t)msg[2] << 8 |
                     msg[3]) != (uint32_t)r->nmsg)
        r->in_order = 0;
    r->nmsg++;
    r->bytes += len;
    return 0;
}

static void cli_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    struct result *r = arg;

    (void)c;
    r->closed++;
    r->code = code;
    snprintf(r->message, sizeof(r->message), "%s", message);
}

static const struct rpc_call_cbs cli_cbs = {.on_message = cli_message, .on_close = cli_close};

struct conn_state {
    int ready, down, goaway;
    char why[RPC_ERR_MAX];
};

static void on_ready(struct rpc_client *cl, void *arg)
{
    (void)cl;
    ((struct conn_state *)arg)->ready = 1;
}

static void on_down(struct rpc_client *cl, const char *why, void *arg)
{
    struct conn_state *st = arg;

    (void)cl;
    st->down = 1;
    snprintf(st->why, sizeof(st->why), "%s", why);
}

static void on_goaway(struct rpc_client *cl, void *arg)
{
    (void)cl;
    ((struct conn_state *)arg)->goaway = 1;
}

/* ---------------------------------------------------------------- harness */

struct env {
    struct event_base *base;
    struct rpc_server *srv;
    struct rpc_client *cl;
    struct conn_state st;
    char port[16];
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until *flag >= want (or the time is up); returns *flag. */
static int run_until(struct env *e, const int *flag, int want)
{
    uint64_t end = now_ms() + WAIT_MS;

    while (*flag < want && now_ms() < end)
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(200);
    return *flag;
}

static char certdir[256];

static void start(struct env *e, const struct rpc_server_cfg *scfg, const struct rpc_tls *ctls)
{
    char err[RPC_ERR_MAX];
    struct rpc_client_cfg cc = {.host = "127.0.0.1"};
    struct rpc_client_events ev = {on_ready, on_down, on_goaway, &e->st};

    memset(e, 0, sizeof(*e));
    memset(&S, 0, sizeof(S));
    e->base = event_base_new();
    assert_non_null(e->base);
    e->srv = rpc_server_new(e->base, "127.0.0.1:0", scfg, methods,
                            (int)(sizeof(methods) / sizeof(methods[0])), err);
    if (e->srv == NULL)
        fail_msg("server: %s", err);
    snprintf(e->port, sizeof(e->port), "%d", rpc_server_port(e->srv));
    cc.port = e->port;
    cc.tls = *ctls;
    e->cl = rpc_client_new(e->base, &cc, &ev, err);
    if (e->cl == NULL)
        fail_msg("client: %s", err);
}

static void stop(struct env *e)
{
    rpc_client_free(e->cl);
    rpc_server_free(e->srv);
    event_base_free(e->base);
}

static const struct rpc_server_cfg plain_srv = {.tls = {.cleartext = 1}};
static const struct rpc_tls plain_cli = {.cleartext = 1};

static struct rpc_call *call(struct env *e, const char *path, uint32_t timeout_ms, struct result *r)
{
    struct rpc_call *c;

    memset(r, 0, sizeof(*r));
    c = rpc_client_call(e->cl, path, timeout_ms, &cli_cbs, r);
    assert_non_null(c);
    return c;
}

/* ------------------------------------------------------------------ tests */

static void test_unary_and_status(void **state)
{
    struct env e;
    struct result r;
    struct rpc_call *c;

    (void)state;
    start(&e, &plain_srv, &plain_cli);
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    c = call(&e, "/t.T/Echo", 5000, &r);
    rpc_call_send(c, (const uint8_t *)"hello", 5);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.nmsg, 1);
    assert_memory_equal(r.first, "hello", 5);

    /* an empty message is a message */
    c = call(&e, "/t.T/Echo", 0, &r);
    rpc_call_send(c, (const uint8_t *)"", 0);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.nmsg, 1);
    assert_int_equal(r.first_len, 0);

    /* unknown method; refused at open, with a message that needs escaping */
    c = call(&e, "/t.T/Nope", 0, &r);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_UNIMPLEMENTED);
    assert_non_null(strstr(r.message, "/t.T/Nope"));
    c = call(&e, "/t.T/Refuse", 0, &r);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_NOT_FOUND);
    assert_string_equal(r.message, "no such thing: caf\xc3\xa9 100%");
    assert_int_equal(r.nmsg, 0);

    /* cleartext: the peer is an address, not authenticated */
    c = call(&e, "/t.T/Peer", 0, &r);
    rpc_call_send(c, (const uint8_t *)"x", 1);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_UNAUTHENTICATED);
    assert_memory_equal(r.first, "127.0.0.1:", 10);
    stop(&e);
}

static void test_streaming(void **state)
{
    struct env e;
    struct result r;
    struct rpc_call *c;
    int i;

    (void)state;
    start(&e, &plain_srv, &plain_cli);
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    /* server streaming: STREAM_N messages, in order */
    c = call(&e, "/t.T/Stream", 0, &r);
    rpc_call_send(c, (const uint8_t *)"1000", 4);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.nmsg, STREAM_N);
    assert_true(r.in_order);

    /* client streaming */
    c = call(&e, "/t.T/Collect", 0, &r);
    for (i = 0; i < STREAM_N; i++)
        assert_int_equal(rpc_call_send(c, (const uint8_t *)"abc", 3), 0);
    rpc_call_close_send(c);
    assert_int_equal(rpc_call_send(c, (const uint8_t *)"late", 4), -1);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.first_len, 4);
    assert_memory_equal(r.first, "1000", 4);

    /* bidirectional: 3 MiB each way in 1 KiB messages, past the flow-control windows */
    c = call(&e, "/t.T/Bidi", 0, &r);
    {
        static uint8_t kib[1024];

        for (i = 0; i < 3 * 1024; i++)
            rpc_call_send(c, kib, sizeof(kib));
    }
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.nmsg, 3 * 1024);
    assert_int_equal(r.bytes, 3u << 20);
    stop(&e);
}

static void test_deadline_and_cancel(void **state)
{
    struct env e;
    struct result r;
    struct rpc_call *c;
    uint64_t t0;

    (void)state;
    start(&e, &plain_srv, &plain_cli);
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    t0 = now_ms();
    c = call(&e, "/t.T/Slow", 150, &r);
    rpc_call_send(c, (const uint8_t *)"x", 1);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_DEADLINE_EXCEEDED);
    assert_true(now_ms() - t0 >= 140);
    /* the server's side of it ends too (its own grpc-timeout, or our reset) */
    assert_int_equal(run_until(&e, &S.closes, 1), 1);
    assert_true(S.last_code == RPC_DEADLINE_EXCEEDED || S.last_code == RPC_CANCELLED);

    /* the client cancels: the server hears CANCELLED */
    c = call(&e, "/t.T/Slow", 0, &r);
    rpc_call_send(c, (const uint8_t *)"x", 1);
    event_base_loop(e.base, EVLOOP_NONBLOCK);
    rpc_call_cancel(c, RPC_CANCELLED, "changed my mind");
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_CANCELLED);
    assert_string_equal(r.message, "changed my mind");
    assert_int_equal(run_until(&e, &S.closes, 2), 2);
    assert_int_equal(S.last_code, RPC_CANCELLED);
    stop(&e);
}

static void test_message_limit(void **state)
{
    struct rpc_server_cfg scfg = plain_srv;
    static uint8_t big[MAX_MSG + 1];
    struct env e;
    struct result r;
    struct rpc_call *c;

    (void)state;
    scfg.max_message = MAX_MSG;
    start(&e, &scfg, &plain_cli);
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    c = call(&e, "/t.T/Echo", 0, &r);
    rpc_call_send(c, big, MAX_MSG); /* exactly the limit */
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_int_equal(r.first_len, MAX_MSG);
    c = call(&e, "/t.T/Echo", 0, &r);
    rpc_call_send(c, big, MAX_MSG + 1);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r.message, "4097 bytes"));
    /* the connection survives it */
    c = call(&e, "/t.T/Echo", 0, &r);
    rpc_call_send(c, (const uint8_t *)"ok", 2);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK);
    assert_false(e.st.down);
    stop(&e);
}

static void test_many_calls(void **state)
{
    static struct result rs[MANY];
    struct env e;
    int i, done = 0;

    (void)state;
    start(&e, &plain_srv, &plain_cli); /* the server allows 100 at once: nghttp2 queues the rest */
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    for (i = 0; i < MANY; i++) {
        char num[8];
        struct rpc_call *c = call(&e, "/t.T/Stream", 0, &rs[i]);

        snprintf(num, sizeof(num), "%d", i % 7);
        rpc_call_send(c, (const uint8_t *)num, strlen(num));
        rpc_call_close_send(c);
    }
    for (uint64_t end = now_ms() + WAIT_MS; done < MANY && now_ms() < end;) {
        event_base_loop(e.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        for (i = 0, done = 0; i < MANY; i++)
            done += rs[i].closed;
    }
    assert_int_equal(done, MANY);
    for (i = 0; i < MANY; i++) {
        assert_int_equal(rs[i].code, RPC_OK);
        assert_int_equal(rs[i].nmsg, i % 7);
    }
    stop(&e);
}

static void test_goaway(void **state)
{
    struct env e;
    struct result r;
    struct rpc_call *c;

    (void)state;
    start(&e, &plain_srv, &plain_cli);
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    c = call(&e, "/t.T/Slow", 0, &r);
    rpc_call_send(c, (const uint8_t *)"x", 1);
    event_base_loop(e.base, EVLOOP_NONBLOCK);
    rpc_server_shutdown(e.srv, 400);
    assert_int_equal(run_until(&e, &e.st.goaway, 1), 1);
    assert_false(rpc_client_usable(e.cl)); /* no new calls on a connection going away */
    assert_null(rpc_client_call(e.cl, "/t.T/Echo", 0, &cli_cbs, &r));
    /* the open call runs on until the grace period ends, then the connection goes */
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_UNAVAILABLE);
    assert_int_equal(run_until(&e, &e.st.down, 1), 1);
    stop(&e);
}

/* --------------------------------------------------------------- TLS */

static void certs(const char *sub, const char *cmd)
{
    char line[1024];

    snprintf(line, sizeof(line), "sh %s/scripts/sonde-certs %s %s/%s >/dev/null 2>&1",
             getenv("SONDE_SOURCE_ROOT") ? getenv("SONDE_SOURCE_ROOT") : ".", cmd, certdir, sub);
    if (system(line) != 0)
        fail_msg("%s failed", line);
}

static int tls_setup(void **state)
{
    (void)state;
    snprintf(certdir, sizeof(certdir), "/tmp/sonde-test-rpc.XXXXXX");
    if (mkdtemp(certdir) == NULL)
        return -1;
    certs("a", "ca");
    certs("a collector server --san IP:127.0.0.1", "issue");
    certs("a agent agent-1", "issue");
    certs("b", "ca");
    certs("b agent stranger", "issue");
    return 0;
}

static int tls_teardown(void **state)
{
    char line[512];

    (void)state;
    snprintf(line, sizeof(line), "rm -rf %s", certdir);
    return system(line) == 0 ? 0 : -1;
}

static void tls_paths(const char *ca_dir, const char *name, const char *ca_of_peer, char *cert,
                      char *key, char *ca)
{
    snprintf(cert, 300, "%s/%s/%s.crt", certdir, ca_dir, name);
    snprintf(key, 300, "%s/%s/%s.key", certdir, ca_dir, name);
    snprintf(ca, 300, "%s/%s/ca.crt", certdir, ca_of_peer);
}

static void test_mutual_tls(void **state)
{
    char scert[300], skey[300], sca[300], ccert[300], ckey[300], cca[300];
    struct rpc_server_cfg scfg = {0};
    struct rpc_tls ctls;
    struct env e;
    struct result r;
    struct rpc_call *c;

    (void)state;
    tls_paths("a", "server", "a", scert, skey, sca);
    tls_paths("a", "agent-1", "a", ccert, ckey, cca);
    scfg.tls = (struct rpc_tls){scert, skey, sca, 0};
    ctls = (struct rpc_tls){ccert, ckey, cca, 0};
    start(&e, &scfg, &ctls);
    assert_int_equal(run_until(&e, &e.st.ready, 1), 1);
    c = call(&e, "/t.T/Peer", 0, &r);
    rpc_call_send(c, (const uint8_t *)"x", 1);
    rpc_call_close_send(c);
    assert_int_equal(run_until(&e, &r.closed, 1), 1);
    assert_int_equal(r.code, RPC_OK); /* authenticated */
    assert_int_equal(r.first_len, 7);
    assert_memory_equal(r.first, "agent-1", 7); /* the identity is the certificate's CN */
    stop(&e);

    /* a client whose certificate comes from another CA gets nothing done
     * (with TLS 1.3 its handshake ends before the server's verdict, so it
     * may see "ready" for a moment; its call must still fail) */
    tls_paths("b", "stranger", "a", ccert, ckey, cca);
    ctls = (struct rpc_tls){ccert, ckey, cca, 0};
    start(&e, &scfg, &ctls);
    run_until(&e, &e.st.ready, 1);
    if (e.st.ready && !e.st.down && (c = rpc_client_call(e.cl, "/t.T/Peer", 0, &cli_cbs, &r))) {
        memset(&r, 0, sizeof(r));
        rpc_call_send(c, (const uint8_t *)"x", 1);
        rpc_call_close_send(c);
        assert_int_equal(run_until(&e, &r.closed, 1), 1);
        assert_int_equal(r.code, RPC_UNAVAILABLE);
        assert_int_equal(r.nmsg, 0);
    }
    assert_int_equal(run_until(&e, &e.st.down, 1), 1);
    assert_int_equal(S.closes, 0); /* no call ever reached the server */
    stop(&e);

    /* a server the client cannot verify (client trusts only CA b) */
    tls_paths("b", "stranger", "b", ccert, ckey, cca);
    ctls = (struct rpc_tls){ccert, ckey, cca, 0};
    start(&e, &scfg, &ctls);
    assert_int_equal(run_until(&e, &e.st.down, 1), 1);
    assert_non_null(strstr(e.st.why, "TLS"));
    stop(&e);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_unary_and_status),    cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_deadline_and_cancel), cmocka_unit_test(test_message_limit),
        cmocka_unit_test(test_many_calls),          cmocka_unit_test(test_goaway),
    };
    const struct CMUnitTest tls[] = {cmocka_unit_test(test_mutual_tls)};

    return cmocka_run_group_tests(plain, NULL, NULL) |
           cmocka_run_group_tests(tls, tls_setup, tls_teardown);
}
