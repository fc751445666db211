/*
 * fuzz_rpc.c - libFuzzer target: one input is everything a client sends
 * on one connection to the gRPC server (cleartext), which serves unary,
 * streaming and health methods. It exercises the HTTP/2 session, request
 * header checks, message framing across DATA frames, the size limit,
 * trailers, resets and the connection's teardown.
 *
 * If the first byte is even, the client connection preface and an empty
 * SETTINGS frame go first, so that the fuzzer spends its time on frames;
 * odd, the input is sent raw (a bad preface, other protocols).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "health.h"
#include "rpc.h"

#define FUZZ_MAX_MESSAGE 4096
#define FUZZ_ROUNDS      64

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00";

static int echo(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    rpc_call_send(c, msg, len);
    return 0;
}

static void done(struct rpc_call *c, void *arg)
{
    (void)arg;
    rpc_call_finish(c, RPC_OK, NULL);
}

static int refuse(struct rpc_call *c, void *arg)
{
    (void)c;
    (void)arg;
    return RPC_PERMISSION_DENIED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rpc_health health = {.serving = 1};
    struct rpc_method methods[3 + RPC_HEALTH_METHODS] = {
        {"/f.F/Echo", {.on_message = echo, .on_half_close = done}, NULL},
        {"/f.F/Refuse", {.on_open = refuse}, NULL},
        {"/f.F/Sink", {.on_half_close = done}, NULL},
    };
    struct rpc_server_cfg cfg = {.tls = {.cleartext = 1}, .max_message = FUZZ_MAX_MESSAGE};
    struct event_base *base;
    struct rpc_server *srv;
    char err[RPC_ERR_MAX];
    uint8_t sink[65536];
    int fds[2], i;

    if (size == 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return 0;
    rpc_health_methods(&health, methods + 3);
    base = event_base_new();
    srv = base ? rpc_server_new(base, "127.0.0.1:0", &cfg, methods, 3 + RPC_HEALTH_METHODS, err)
               : NULL;
    if (srv == NULL) {
        close(fds[0]);
        close(fds[1]);
        if (base)
            event_base_free(base);
        return 0;
    }
    rpc_server_adopt(srv, fds[0]);
    if ((data[0] & 1) == 0 && write(fds[1], preface, sizeof(preface) - 1) < 0)
        goto out;
    if (size > 1 && write(fds[1], data + 1, size - 1) < 0)
        goto out;
    shutdown(fds[1], SHUT_WR);
    for (i = 0; i < FUZZ_ROUNDS && rpc_server_connections(srv) > 0; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        while (recv(fds[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
out:
    rpc_server_free(srv);
    event_base_free(base);
    close(fds[1]);
    return 0;
}
