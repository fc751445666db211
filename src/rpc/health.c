/*
 * health.c - grpc.health.v1.Health; see health.h.
 */
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "health.h"

static int status_of(const struct rpc_health *h, const char *service)
{
    int i;

    if (service[0] == '\0')
        goto known;
    for (i = 0; i < h->nservices; i++)
        if (strcmp(h->services[i], service) == 0)
            goto known;
    return -1;
known:
    return h->serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static int send_status(struct rpc_call *c, int status)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    uint8_t buf[16];

    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    return rpc_call_send(c, buf, grpc__health__v1__health_check_response__pack(&r, buf));
}

/* The request's service name into name; -1 if it does not parse. */
static int request_service(const uint8_t *msg, size_t len, char *name, size_t cap)
{
    Grpc__Health__V1__HealthCheckRequest *q =
        grpc__health__v1__health_check_request__unpack(NULL, len, msg);

    if (q == NULL)
        return -1;
    snprintf(name, cap, "%s", q->service ? q->service : "");
    grpc__health__v1__health_check_request__free_unpacked(q, NULL);
    return 0;
}

static int check_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct rpc_health *h = arg;
    char name[256];
    int st;

    if (request_service(msg, len, name, sizeof(name)) < 0)
        return RPC_INVALID_ARGUMENT;
    st = status_of(h, name);
    if (st < 0) {
        rpc_call_finish(c, RPC_NOT_FOUND, "unknown service");
        return 0;
    }
    send_status(c, st);
    rpc_call_finish(c, RPC_OK, NULL);
    return 0;
}

static int watch_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct rpc_health *h = arg;
    char name[256];
    int i, st;

    if (rpc_call_data(c))
        return RPC_INVALID_ARGUMENT; /* one request per Watch */
    if (request_service(msg, len, name, sizeof(name)) < 0)
        return RPC_INVALID_ARGUMENT;
    rpc_call_set_data(c, h); /* a request came (watch_half_close) */
    st = status_of(h, name);
    send_status(c, st < 0 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
                          : st);
    if (st < 0)
        return 0; /* stays open, as the protocol asks, with nothing more to say */
    for (i = 0; i < RPC_HEALTH_WATCHERS; i++) {
        if (h->watchers[i] == NULL) {
            h->watchers[i] = c;
            return 0;
        }
    }
    return RPC_RESOURCE_EXHAUSTED; /* too many watchers */
}

static void watch_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    struct rpc_health *h = arg;
    int i;

    (void)code;
    (void)message;
    for (i = 0; i < RPC_HEALTH_WATCHERS; i++)
        if (h->watchers[i] == c)
            h->watchers[i] = NULL;
}

/* Unary: the client must send exactly one request. */
static void no_request(struct rpc_call *c, void *arg)
{
    (void)arg;
    rpc_call_finish(c, RPC_INTERNAL, "expected one HealthCheckRequest");
}

/* Watch stays open after its request (the client ends it); without one it ends now. */
static void watch_half_close(struct rpc_call *c, void *arg)
{
    (void)arg;
    if (rpc_call_data(c) == NULL)
        rpc_call_finish(c, RPC_INTERNAL, "expected one HealthCheckRequest");
}

void rpc_health_methods(struct rpc_health *h, struct rpc_method out[RPC_HEALTH_METHODS])
{
    memset(out, 0, sizeof(struct rpc_method) * RPC_HEALTH_METHODS);
    out[0].path = "/grpc.health.v1.Health/Check";
    out[0].cbs.on_message = check_message;
    out[0].cbs.on_half_close = no_request;
    out[0].arg = h;
    out[1].path = "/grpc.health.v1.Health/Watch";
    out[1].cbs.on_message = watch_message;
    out[1].cbs.on_half_close = watch_half_close;
    out[1].cbs.on_close = watch_close;
    out[1].arg = h;
}

void rpc_health_set(struct rpc_health *h, int serving)
{
    int i;

    if (h->serving == serving)
        return;
    h->serving = serving;
    for (i = 0; i < RPC_HEALTH_WATCHERS; i++)
        if (h->watchers[i])
            send_status(h->watchers[i],
                        serving
                            ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
}
