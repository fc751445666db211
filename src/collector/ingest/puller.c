/*
 * puller.c - the collector's pull mode: dial agents (--pull), Subscribe,
 * and put what arrives through the same checks, deduplication and outputs
 * as pushed events (receiver_ingest).
 *
 * Pull has no acknowledgements and no replay: a subscriber gets events
 * from the moment it subscribes, so what an agent produces while the
 * connection is down is not received this way (push is the lossless mode).
 * The puller reconnects by itself, with the same backoff as the agent's
 * push (rpc_backoff).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "event.h"
#include "puller.h"
#include "sonde/v1/d3events.pb-c.h"

#define PULL_REQ_MAX 4096

struct puller {
    struct receiver *r;
    struct event_base *base;
    struct puller_cfg cfg;
    char url[PULLER_URL_MAX], host[256], port[16];
    int tls;
    struct rpc_client *cl, *old_cl;
    struct rpc_call *call;
    struct event *retry_ev, *resub_ev;
    int closing; /* puller_free: no more callbacks wanted */
    unsigned backoff_ms;
    struct puller_stats st;
};

/* An Event is one field: the member's number, then the member's bytes. */
static int unwrap(const uint8_t *p, size_t n, int *tag, const uint8_t **inner, size_t *len)
{
    uint64_t key = 0, l = 0;
    size_t i = 0;
    int s;

    for (s = 0; i < n && s < 35; s += 7) {
        key |= (uint64_t)(p[i] & 0x7f) << s;
        if (!(p[i++] & 0x80))
            break;
    }
    if ((key & 7) != 2 || (key >> 3) == 0 || (key >> 3) >= 64)
        return -1;
    for (s = 0; i < n && s < 35; s += 7) {
        l |= (uint64_t)(p[i] & 0x7f) << s;
        if (!(p[i++] & 0x80))
            break;
    }
    if (l != n - i)
        return -1;
    *tag = (int)(key >> 3);
    *inner = p + i;
    *len = (size_t)l;
    return 0;
}

static int on_event(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct puller *pl = arg;
    const uint8_t *inner;
    struct ingest in;
    size_t ilen;
    int tag;

    if (unwrap(msg, len, &tag, &inner, &ilen) < 0) {
        pl->st.rejected++;
        return 0;
    }
    /* Over TLS the agent is the name in its server certificate, as a
     * pushing agent is the name in its client certificate. */
    if (receiver_ingest(pl->r, tag, inner, ilen,
                        rpc_call_authenticated(c) ? rpc_call_peer(c) : NULL, -1, &in) != RPC_OK) {
        if (pl->st.rejected++ == 0)
            log_warn("pull %s: event refused: %s", pl->url, in.why);
        return 0;
    }
    if (in.duplicate)
        pl->st.duplicates++;
    else
        pl->st.received++;
    return 0;
}

static void schedule_retry(struct puller *pl)
{
    struct timeval tv = rpc_backoff(&pl->backoff_ms);

    evtimer_add(pl->retry_ev, &tv);
}

static void on_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    struct puller *pl = arg;

    (void)c;
    pl->call = NULL;
    if (pl->closing)
        return;
    if (code != RPC_OK && code != RPC_UNAVAILABLE)
        log_warn("pull %s: Subscribe ended: %s %s", pl->url, rpc_code_name(code), message);
    /* an agent that ends the stream but keeps the connection: subscribe
     * again after the backoff; a lost connection is on_down's business */
    if (pl->cl && rpc_client_usable(pl->cl) && !evtimer_pending(pl->resub_ev, NULL)) {
        struct timeval tv = {0, RPC_BACKOFF_MIN_MS * 1000};

        evtimer_add(pl->resub_ev, &tv);
    }
}

static const struct rpc_call_cbs sub_cbs = {.on_message = on_event, .on_close = on_close};

static void subscribe(struct puller *pl, struct rpc_client *cl);

static void resubscribe(evutil_socket_t fd, short what, void *arg)
{
    struct puller *pl = arg;

    (void)fd;
    (void)what;
    if (pl->cl && rpc_client_usable(pl->cl) && pl->call == NULL)
        subscribe(pl, pl->cl);
}

static void on_ready(struct rpc_client *cl, void *arg)
{
    subscribe(arg, cl);
}

static void subscribe(struct puller *pl, struct rpc_client *cl)
{
    Sonde__V1__SubscribeRequest req = SONDE__V1__SUBSCRIBE_REQUEST__INIT;
    uint8_t buf[PULL_REQ_MAX];

    req.n_types = pl->cfg.ntypes;
    req.types = (char **)pl->cfg.types;
    if (sonde__v1__subscribe_request__get_packed_size(&req) > sizeof(buf))
        return;
    pl->call = rpc_client_call(cl, "/sonde.v1.D3Events/Subscribe", 0, &sub_cbs, pl);
    if (pl->call == NULL)
        return;
    rpc_call_send(pl->call, buf, sonde__v1__subscribe_request__pack(&req, buf));
    rpc_call_close_send(pl->call);
    pl->backoff_ms = 0;
    pl->st.connected = 1;
    log_info("pull %s: subscribed", pl->url);
}

static void on_down(struct rpc_client *cl, const char *why, void *arg)
{
    struct puller *pl = arg;

    (void)cl;
    if (pl->st.connected || pl->st.reconnects == 0)
        log_warn("pull %s: %s", pl->url, why);
    pl->st.connected = 0;
    pl->call = NULL;
    rpc_client_free(pl->old_cl); /* never overwrite one still held */
    pl->old_cl = pl->cl;         /* freed later: we are inside its callback */
    pl->cl = NULL;
    if (!evtimer_pending(pl->retry_ev, NULL))
        schedule_retry(pl);
}

static void dial(evutil_socket_t fd, short what, void *arg)
{
    struct puller *pl = arg;
    struct rpc_client_cfg cc = {
        .tls = pl->cfg.tls,
        .host = pl->host,
        .port = pl->port,
    };
    struct rpc_client_events ev = {on_ready, on_down, NULL, pl};
    char err[RPC_ERR_MAX];

    (void)fd;
    (void)what;
    rpc_client_free(pl->old_cl);
    pl->old_cl = NULL;
    cc.tls.cleartext = !pl->tls;
    pl->st.reconnects++;
    pl->cl = rpc_client_new(pl->base, &cc, &ev, err);
    if (pl->cl == NULL) {
        log_warn("pull %s: %s", pl->url, err);
        schedule_retry(pl);
    }
}

struct puller *puller_new(struct event_base *base, struct receiver *r, const char *url,
                          const struct puller_cfg *cfg, char err[RPC_ERR_MAX])
{
    struct puller *pl = calloc(1, sizeof(*pl));

    if (pl == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    pl->r = r;
    pl->base = base;
    pl->cfg = *cfg;
    snprintf(pl->url, sizeof(pl->url), "%s", url);
    if (rpc_parse_url(url, pl->host, sizeof(pl->host), pl->port, sizeof(pl->port), &pl->tls) < 0) {
        snprintf(err, RPC_ERR_MAX, "--pull %s: expected grpcs://HOST:PORT or grpc://HOST:PORT",
                 url);
        free(pl);
        return NULL;
    }
    pl->retry_ev = evtimer_new(base, dial, pl);
    pl->resub_ev = evtimer_new(base, resubscribe, pl);
    if (pl->retry_ev == NULL || pl->resub_ev == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        puller_free(pl);
        return NULL;
    }
    event_active(pl->retry_ev, EV_TIMEOUT, 0); /* dial from the loop */
    return pl;
}

const struct puller_stats *puller_stats(const struct puller *pl)
{
    return &pl->st;
}

void puller_free(struct puller *pl)
{
    struct rpc_client *cl;

    if (pl == NULL)
        return;
    pl->closing = 1;
    cl = pl->cl;
    pl->cl = NULL;
    rpc_client_free(cl);
    rpc_client_free(pl->old_cl);
    if (pl->retry_ev)
        event_free(pl->retry_ev);
    if (pl->resub_ev)
        event_free(pl->resub_ev);
    free(pl);
}
