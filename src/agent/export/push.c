/*
 * push.c - one collector: a connection, one Publish<Type>Stream per event
 * type in use, and every event kept until the collector acknowledges it.
 *
 * Events wait in memory, one FIFO per type, up to queue_bytes; past that,
 * and for as long as anything is on disk, they go to the spool, so that
 * the order per type (the collector's deduplication relies on it) holds.
 * An acknowledgement (PublishResponse.acked_seq) frees the head of its
 * type's FIFO; the spool refills memory as it empties. After a reconnect
 * each stream starts again from its oldest unacknowledged event.
 *
 * Reconnects back off exponentially with jitter (rpc_backoff).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "event.h"
#include "rpcout_int.h"
#include "sonde/v1/d3events.pb-c.h"

#define RESTREAM_MS   200 /* reopen a stream that ended while connected */
#define PUSH_PATH_MAX 128

struct push_stream {
    struct push_target *t;
    int tag;
    struct rpc_call *call;
    struct pq q;
    int paused;
    int unsubscribed;
    int finishing; /* half-closed for exit */
    char path[PUSH_PATH_MAX];
};

struct push_target {
    struct rpcout *o;
    char url[RPCOUT_URL_MAX];
    char host[256], port[16];
    int tls;
    struct rpc_client *cl;
    struct rpc_client *old_cl; /* down; freed before the next dial, not in its own callback */
    int ready;
    struct push_stream s[RPCOUT_TAGS];
    size_t mem_bytes;
    uint64_t mem_events;
    struct spool spool;
    int spooling; /* a spool directory is configured */
    struct sbuf rd;
    unsigned backoff_ms;
    struct event *retry_ev, *restream_ev;
    uint64_t acked, dropped, rejected, connects, attempts, unsubscribed;
    int warned_drop;
};

static void connect_now(struct push_target *t);

/* ------------------------------------------------------------- sending */

static void on_response(struct push_stream *s, const Sonde__V1__PublishResponse *r);

static int call_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct push_stream *s = arg;
    Sonde__V1__PublishResponse *r = sonde__v1__publish_response__unpack(NULL, len, msg);

    (void)c;
    if (r == NULL)
        return RPC_INTERNAL; /* cancels: the collector speaks something else */
    on_response(s, r);
    sonde__v1__publish_response__free_unpacked(r, NULL);
    return 0;
}

static void pump(struct push_stream *s);

static void call_writable(struct rpc_call *c, void *arg)
{
    (void)c;
    pump(arg);
}

static void schedule_restream(struct push_target *t)
{
    struct timeval tv = {0, RESTREAM_MS * 1000};

    if (t->restream_ev && !evtimer_pending(t->restream_ev, NULL))
        evtimer_add(t->restream_ev, &tv);
}

static void call_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    struct push_stream *s = arg;
    struct push_target *t = s->t;

    int head_sent = s->q.sent > s->q.head;

    (void)c;
    s->call = NULL;
    s->paused = 0;         /* a new call starts unpaused */
    s->q.sent = s->q.head; /* resend whatever was not acknowledged */
    if (code == RPC_INVALID_ARGUMENT && head_sent) {
        /* the collector refused an event for what it is, after acknowledging
         * everything before it (PUBLISH_STATUS_ERROR): that is the oldest
         * one left; drop it, or the stream would send it again forever */
        struct gmsg *m = s->q.v[s->q.head++];

        s->q.sent = s->q.head;
        t->mem_bytes -= m->len;
        t->mem_events--;
        t->rejected++;
        log_warn("push %s: event seq %llu refused: %s", t->url, (unsigned long long)m->seq,
                 message);
        gmsg_unref(m);
    } else if (code != RPC_OK && code != RPC_UNAVAILABLE) {
        log_warn("push %s: %s stream ended: %s %s", t->url, s->path, rpc_code_name(code), message);
    }
    if (t->ready && !s->finishing)
        schedule_restream(t);
}

static const struct rpc_call_cbs stream_cbs = {
    .on_message = call_message,
    .on_writable = call_writable,
    .on_close = call_close,
};

/* Send what is queued on s, as far as the call's buffer allows. */
static void pump(struct push_stream *s)
{
    struct push_target *t = s->t;

    if (!t->ready || s->paused || s->unsubscribed || s->finishing)
        return;
    if (s->call == NULL) {
        if (s->q.head == s->q.tail)
            return;
        s->call = rpc_client_call(t->cl, s->path, 0, &stream_cbs, s);
        if (s->call == NULL)
            return;
    }
    while (s->q.sent < s->q.tail && rpc_call_queued(s->call) < RPC_SEND_HIGH_MARK) {
        struct gmsg *m = s->q.v[s->q.sent];

        if (rpc_call_send(s->call, m->data, m->len) < 0)
            break;
        s->q.sent++;
    }
}

/* ------------------------------------------------------ memory, spool */

static void count_drop(struct push_target *t, const char *why)
{
    t->dropped++;
    if (!t->warned_drop) {
        log_error("push %s: dropping events: %s (counted in agent_status)", t->url, why);
        t->warned_drop = 1;
    }
}

static void to_memory(struct push_target *t, struct gmsg *m)
{
    struct push_stream *s = &t->s[m->tag];

    if (s->unsubscribed) {
        t->unsubscribed++;
        return;
    }
    if (pq_push(&s->q, m) < 0) {
        count_drop(t, "out of memory");
        return;
    }
    t->mem_bytes += m->len;
    t->mem_events++;
    pump(s);
}

/* Move spooled events back to memory while there is room. */
static void refill(struct push_target *t)
{
    while (t->spooling && !spool_empty(&t->spool) && t->mem_bytes < t->o->cfg.queue_bytes / 2) {
        int tag, rc;
        uint64_t seq;
        struct gmsg *m;

        rc = spool_read(&t->spool, &tag, &seq, &t->rd);
        if (rc == 0)
            break;
        if (rc < 0) { /* the rest of that segment is gone (counted in the spool) */
            count_drop(t, "a damaged spool segment");
            break; /* try again at the next acknowledgement */
        }
        if (tag <= 0 || tag >= RPCOUT_TAGS) {
            count_drop(t, "a damaged spool record");
            continue;
        }
        m = gmsg_new(tag, seq, (const uint8_t *)t->rd.data, t->rd.len);
        if (m == NULL) {
            count_drop(t, "out of memory");
            continue;
        }
        to_memory(t, m);
        gmsg_unref(m);
    }
}

void push_event(struct push_target *t, struct gmsg *m)
{
    if (m->tag <= 0 || m->tag >= RPCOUT_TAGS)
        return;
    if (t->s[m->tag].unsubscribed) {
        t->unsubscribed++;
        return;
    }
    if ((t->spooling && !spool_empty(&t->spool)) || t->mem_bytes + m->len > t->o->cfg.queue_bytes) {
        if (!t->spooling)
            count_drop(t, "the memory queue is full and there is no --spool-dir");
        else if (spool_append(&t->spool, m->tag, m->seq, m->data, m->len) < 0)
            count_drop(t, "the spool is full");
        return;
    }
    to_memory(t, m);
}

/* ------------------------------------------------------- acknowledgement */

static void release(struct push_stream *s, uint64_t acked)
{
    struct push_target *t = s->t;

    while (s->q.head < s->q.tail && s->q.v[s->q.head]->seq <= acked) {
        struct gmsg *m = s->q.v[s->q.head++];

        t->mem_bytes -= m->len;
        t->mem_events--;
        t->acked++;
        gmsg_unref(m);
    }
    if (s->q.sent < s->q.head)
        s->q.sent = s->q.head;
    refill(t);
    rpcout_room(t->o);
}

static void on_response(struct push_stream *s, const Sonde__V1__PublishResponse *r)
{
    struct push_target *t = s->t;

    release(s, r->acked_seq);
    switch (r->status) {
    case SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_PAUSE:
        s->paused = 1;
        break;
    case SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_RESUME:
        s->paused = 0;
        pump(s);
        break;
    case SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_STOP:
        log_info("push %s: %s: collector says stop (%s)", t->url, s->path, r->reason);
        break; /* the call ends; it is reopened after RESTREAM_MS */
    case SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_UNSUBSCRIBE:
        log_info("push %s: collector does not take %s (%s)", t->url, s->path, r->reason);
        s->unsubscribed = 1;
        while (s->q.head < s->q.tail) {
            struct gmsg *m = s->q.v[s->q.head++];

            t->mem_bytes -= m->len;
            t->mem_events--;
            t->unsubscribed++;
            gmsg_unref(m);
        }
        s->q.sent = s->q.head;
        break;
    case SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_ERROR:
        log_warn("push %s: %s: %s", t->url, s->path, r->reason);
        break;
    default:
        pump(s);
        break;
    }
}

/* ----------------------------------------------------------- connection */

static void on_ready(struct rpc_client *cl, void *arg)
{
    struct push_target *t = arg;
    int i;

    (void)cl;
    t->ready = 1;
    t->connects++;
    for (i = 0; i < RPCOUT_TAGS; i++)
        t->s[i].unsubscribed = 0; /* this collector may take what the last one did not */
    t->backoff_ms = 0;
    log_info("push %s: connected", t->url);
    refill(t);
    for (i = 0; i < RPCOUT_TAGS; i++)
        pump(&t->s[i]);
}

static void retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_now(arg);
}

static void restream(evutil_socket_t fd, short what, void *arg)
{
    struct push_target *t = arg;
    int i;

    (void)fd;
    (void)what;
    for (i = 0; i < RPCOUT_TAGS; i++)
        pump(&t->s[i]);
}

static void on_down(struct rpc_client *cl, const char *why, void *arg)
{
    struct push_target *t = arg;
    struct timeval tv;
    int i;

    (void)cl;
    if (t->ready || t->attempts == 1)
        log_warn("push %s: %s", t->url, why);
    t->ready = 0;
    t->old_cl = t->cl;
    t->cl = NULL;
    for (i = 0; i < RPCOUT_TAGS; i++) {
        t->s[i].call = NULL;
        t->s[i].q.sent = t->s[i].q.head;
        t->s[i].paused = 0;
    }
    tv = rpc_backoff(&t->backoff_ms);
    evtimer_add(t->retry_ev, &tv);
}

static void on_goaway(struct rpc_client *cl, void *arg)
{
    struct push_target *t = arg;

    (void)cl;
    log_info("push %s: collector going away", t->url);
}

static void connect_now(struct push_target *t)
{
    struct rpcout_cfg *c = &t->o->cfg;
    struct rpc_client_cfg cc = {
        .tls = {c->tls.cert, c->tls.key, c->tls.ca, !t->tls},
        .host = t->host,
        .port = t->port,
        .max_message = c->max_message,
    };
    struct rpc_client_events ev = {on_ready, on_down, on_goaway, t};
    char err[RPC_ERR_MAX];

    rpc_client_free(t->old_cl);
    t->old_cl = NULL;
    t->attempts++;
    t->cl = rpc_client_new(t->o->base, &cc, &ev, err);
    if (t->cl == NULL) {
        log_warn("push %s: %s", t->url, err);
        on_down(NULL, err, t);
    }
}

struct push_target *push_new(struct rpcout *o, const char *url, char err[RPC_ERR_MAX])
{
    struct push_target *t = calloc(1, sizeof(*t));
    int i;

    if (t == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    t->o = o;
    sbuf_init(&t->rd);
    snprintf(t->url, sizeof(t->url), "%s", url);
    if (rpc_parse_url(url, t->host, sizeof(t->host), t->port, sizeof(t->port), &t->tls) < 0) {
        snprintf(err, RPC_ERR_MAX, "--push %s: expected grpcs://HOST:PORT or grpc://HOST:PORT",
                 url);
        goto fail;
    }
    for (i = 0; i < RPCOUT_TAGS; i++) {
        const ProtobufCMessageDescriptor *d = schema_event_descriptor(i);

        t->s[i].t = t;
        t->s[i].tag = i;
        if (d)
            snprintf(t->s[i].path, sizeof(t->s[i].path), "/sonde.v1.D3Events/Publish%sStream",
                     d->short_name);
    }
    if (o->cfg.spool_dir) {
        char dir[SPOOL_PATH_MAX], serr[SPOOL_ERR_MAX];
        char *p;

        /* one directory per collector: spool_dir/host_port */
        if (strlen(o->cfg.spool_dir) > SPOOL_DIR_MAX - 64) {
            snprintf(err, RPC_ERR_MAX, "--spool-dir: over %d bytes", SPOOL_DIR_MAX - 64);
            goto fail;
        }
        if (mkdir(o->cfg.spool_dir, 0700) < 0 && errno != EEXIST) {
            snprintf(err, RPC_ERR_MAX, "--spool-dir %s: %s", o->cfg.spool_dir, strerror(errno));
            goto fail;
        }
        snprintf(dir, sizeof(dir), "%s/%s_%s", o->cfg.spool_dir, t->host, t->port);
        for (p = dir + strlen(o->cfg.spool_dir) + 1; *p; p++)
            if (*p == '/' || *p == ':')
                *p = '_';
        if (spool_open(&t->spool, dir, o->cfg.spool_bytes, serr) < 0) {
            snprintf(err, RPC_ERR_MAX, "%s", serr);
            goto fail;
        }
        t->spooling = 1;
    }
    t->retry_ev = evtimer_new(o->base, retry, t);
    t->restream_ev = evtimer_new(o->base, restream, t);
    if (t->retry_ev == NULL || t->restream_ev == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        goto fail;
    }
    refill(t);
    connect_now(t);
    return t;
fail:
    push_close(t);
    return NULL;
}

int push_has_room(const struct push_target *t, size_t len)
{
    return !t->ready || t->spooling || t->mem_bytes + len <= t->o->cfg.queue_bytes;
}

void push_offline(struct push_target *t)
{
    int i;

    t->ready = 0;
    for (i = 0; i < RPCOUT_TAGS; i++)
        t->s[i].finishing = 1;
}

uint64_t push_pending(const struct push_target *t)
{
    return t->mem_events + (t->spooling && !spool_empty(&t->spool) ? 1 : 0);
}

void push_finish(struct push_target *t)
{
    int i;

    if (!t->spooling || spool_empty(&t->spool)) {
        for (i = 0; i < RPCOUT_TAGS; i++) {
            struct push_stream *s = &t->s[i];

            if (s->call && !s->finishing && s->q.sent == s->q.tail) {
                s->finishing = 1;
                rpc_call_close_send(s->call);
            }
        }
    }
}

void push_stats(const struct push_target *t, struct rpcout_push_stats *st)
{
    snprintf(st->url, sizeof(st->url), "%s", t->url);
    st->connected = t->ready;
    st->queued = t->mem_events;
    st->spooled_bytes = t->spooling ? t->spool.bytes : 0;
    st->acked = t->acked;
    st->dropped = t->dropped;
    st->rejected = t->rejected;
    st->reconnects = t->connects > 0 ? t->connects - 1 : 0;
}

/* Oldest first across all types: the spool's order. */
static int by_seq(const void *a, const void *b)
{
    uint64_t x = (*(struct gmsg *const *)a)->seq, y = (*(struct gmsg *const *)b)->seq;

    return x < y ? -1 : x > y;
}

/* What is still in memory goes to a spool segment that sorts first. */
static uint64_t spool_memory(struct push_target *t)
{
    struct gmsg **all;
    uint64_t n = 0, lost = 0, i;
    int k;

    if (t->mem_events == 0)
        return 0;
    all = malloc(t->mem_events * sizeof(*all));
    if (all == NULL || !t->spooling) {
        free(all);
        return t->mem_events;
    }
    for (k = 0; k < RPCOUT_TAGS; k++)
        for (size_t j = t->s[k].q.head; j < t->s[k].q.tail; j++)
            all[n++] = t->s[k].q.v[j];
    qsort(all, n, sizeof(*all), by_seq);
    if (spool_prepend_begin(&t->spool, all[0]->seq) < 0) {
        lost = n;
    } else {
        for (i = 0; i < n; i++)
            if (spool_prepend(&t->spool, all[i]->tag, all[i]->seq, all[i]->data, all[i]->len) < 0)
                lost++;
        spool_prepend_end(&t->spool);
    }
    free(all);
    if (n > lost)
        log_info("push %s: %llu unacknowledged events spooled for the next run", t->url,
                 (unsigned long long)(n - lost));
    return lost;
}

uint64_t push_close(struct push_target *t)
{
    uint64_t lost;
    int i;

    if (t == NULL)
        return 0;
    lost = spool_memory(t) + t->dropped;
    if (lost)
        log_error("push %s: %llu events lost", t->url, (unsigned long long)lost);
    push_offline(t); /* the calls' on_close must not reopen anything */
    rpc_client_free(t->cl);
    rpc_client_free(t->old_cl);
    for (i = 0; i < RPCOUT_TAGS; i++)
        pq_free(&t->s[i].q);
    if (t->spooling)
        spool_close(&t->spool);
    if (t->retry_ev)
        event_free(t->retry_ev);
    if (t->restream_ev)
        event_free(t->restream_ev);
    sbuf_free(&t->rd);
    free(t);
    return lost;
}
