/*
 * rpcout.c - the agent's gRPC thread: inbox, loop, start and stop; see
 * rpcout.h. Collectors are in push.c, subscribers in serve.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/thread.h>

#include "common/log.h"
#include "events/emit.h"
#include "rpcout_int.h"

#define STATS_MS      250 /* how often the counters are published to other threads */
#define WAIT_SLICE_MS 100 /* a waiting rpcout_event looks at the stop flag this often */

/* A gmsg and its data, rounded up so the next one in a block is aligned. */
static size_t gmsg_size(size_t len)
{
    return (sizeof(struct gmsg) + len + 7) & ~(size_t)7;
}

struct gmsg *gmsg_new(int tag, uint64_t seq, const uint8_t *data, size_t len)
{
    struct gmsg *m = malloc(sizeof(*m) + len);

    if (m == NULL)
        return NULL;
    m->blk = NULL;
    m->refs = 1;
    m->tag = tag;
    m->seq = seq;
    m->len = len;
    memcpy(m->data, data, len);
    return m;
}

void gmsg_unref(struct gmsg *m)
{
    if (m == NULL || --m->refs > 0)
        return;
    if (m->blk == NULL)
        free(m);
    else if (--m->blk->live == 0)
        free(m->blk);
}

int pq_push(struct pq *q, struct gmsg *m)
{
    if (q->tail == q->cap) {
        if (q->head > q->cap / 2) { /* slide down instead of growing */
            memmove(q->v, q->v + q->head, (q->tail - q->head) * sizeof(*q->v));
            q->tail -= q->head;
            q->sent -= q->head;
            q->head = 0;
        } else {
            size_t cap = q->cap ? 2 * q->cap : 256;
            struct gmsg **v = realloc(q->v, cap * sizeof(*v));

            if (v == NULL)
                return -1;
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->tail++] = m;
    m->refs++;
    return 0;
}

void pq_free(struct pq *q)
{
    size_t i;

    for (i = q->head; i < q->tail; i++)
        gmsg_unref(q->v[i]);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* ------------------------------------------------------------ the inbox */

/* The next event of b the loop has not taken, or NULL. */
static struct gmsg *block_peek(const struct gblock *b)
{
    return b->taken < b->used ? (struct gmsg *)(b->data + b->taken) : NULL;
}

/* Mark m (block_peek's) taken; returns 1 if it was b's last: once m is
 * released, b may be gone. */
static int block_take(struct gblock *b, const struct gmsg *m)
{
    b->taken += gmsg_size(m->len);
    b->bytes -= m->len;
    b->count--;
    return b->taken == b->used;
}

/* Release what the loop never took (b is freed with its last event). */
static void block_drop(struct gblock *b)
{
    struct gmsg *m;

    while ((m = block_peek(b)) != NULL) {
        int last = block_take(b, m);

        gmsg_unref(m);
        if (last)
            return;
    }
}

void rpcout_event(struct rpcout *o, int tag, uint64_t seq, const uint8_t *data, size_t len)
{
    size_t need = gmsg_size(len);
    struct gblock *b = o->fill;
    struct gmsg *m;

    if (b && b->used + need > b->cap) {
        rpcout_flush(o);
        b = NULL;
    }
    if (b == NULL) {
        size_t cap = need > RPCOUT_BLOCK_BYTES ? need : RPCOUT_BLOCK_BYTES;

        b = malloc(sizeof(*b) + cap);
        if (b == NULL) {
            pthread_mutex_lock(&o->lock);
            o->inbox_dropped++;
            pthread_mutex_unlock(&o->lock);
            return;
        }
        memset(b, 0, sizeof(*b));
        b->cap = cap;
        o->fill = b;
    }
    m = (struct gmsg *)(b->data + b->used);
    m->blk = b;
    m->refs = 1; /* the inbox's */
    m->tag = tag;
    m->seq = seq;
    m->len = len;
    memcpy(m->data, data, len);
    b->used += need;
    b->bytes += len;
    b->count++;
    b->live++;
}

void rpcout_flush(struct rpcout *o)
{
    struct gblock *b = o->fill;
    int was_empty;

    if (b == NULL)
        return;
    o->fill = NULL;
    pthread_mutex_lock(&o->lock);
    while (o->cfg.wait && o->in_bytes > 0 && o->in_bytes + b->bytes > RPCOUT_INBOX_BYTES &&
           !(o->cfg.stop && *o->cfg.stop)) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->room, &o->lock, &ts);
    }
    if (o->in_bytes + b->bytes > RPCOUT_INBOX_BYTES) {
        o->inbox_dropped += b->count;
        pthread_mutex_unlock(&o->lock);
        free(b); /* nothing else refers to its events yet */
        return;
    }
    was_empty = o->in_head == NULL;
    b->next = NULL;
    if (o->in_tail)
        o->in_tail->next = b;
    else
        o->in_head = b;
    o->in_tail = b;
    o->in_bytes += b->bytes;
    pthread_mutex_unlock(&o->lock);
    /* one wake-up per batch: the loop takes the whole list when it runs */
    if (was_empty)
        event_active(o->wake, EV_READ, 0);
}

static void publish_stats(struct rpcout *o)
{
    struct rpcout_stats st;
    int i;

    memset(&st, 0, sizeof(st));
    for (i = 0; i < o->npush; i++)
        push_stats(o->push[i], &st.push[i]);
    st.npush = o->npush;
    if (o->srv)
        serve_stats(o->srv, &st.subscribers, &st.subscriber_dropped);
    pthread_mutex_lock(&o->lock);
    st.inbox_dropped = o->inbox_dropped;
    o->st = st;
    pthread_mutex_unlock(&o->lock);
}

void rpcout_stats(struct rpcout *o, struct rpcout_stats *st)
{
    pthread_mutex_lock(&o->lock);
    *st = o->st;
    pthread_mutex_unlock(&o->lock);
}

/* In wait mode, an event is taken only when every connected collector has
 * room (one that is down spools or drops, counted: it must not hold up the
 * others). */
static int room_for(struct rpcout *o, const struct gmsg *m)
{
    int i;

    for (i = 0; o->cfg.wait && i < o->npush; i++)
        if (!push_has_room(o->push[i], m->len))
            return 0;
    return 1;
}

/* One event to every collector and subscriber; releases the inbox's reference. */
static void hand_over(struct rpcout *o, struct gmsg *m)
{
    int i;

    if (m->tag == EV_AGENT_HELLO) { /* a copy: it must not keep its block for the whole run */
        struct gmsg *h = gmsg_new(m->tag, m->seq, m->data, m->len);

        if (h) {
            gmsg_unref(o->hello);
            o->hello = h;
        }
    }
    for (i = 0; i < o->npush; i++)
        push_event(o->push[i], m);
    if (o->srv)
        serve_event(o->srv, m);
    gmsg_unref(m);
}

/* The loop's side of the inbox: every event to every collector and subscriber. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct rpcout *o = arg;
    struct gblock *b, *next = NULL, *tail;
    struct gmsg *m = NULL;
    size_t taken = 0;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&o->lock);
    b = o->in_head;
    tail = o->in_tail;
    o->in_head = o->in_tail = NULL;
    pthread_mutex_unlock(&o->lock);
    for (; b; b = next) {
        next = b->next;
        while ((m = block_peek(b)) != NULL) {
            int last;

            if (!room_for(o, m))
                break; /* the rest waits for acknowledgements (rpcout_room) */
            last = block_take(b, m);
            taken += m->len;
            hand_over(o, m);
            m = NULL;
            if (last)
                break; /* b may be gone */
        }
        if (m)
            break;
    }
    pthread_mutex_lock(&o->lock);
    if (b) { /* put back what is left, before anything that came since */
        tail->next = o->in_head;
        if (o->in_head == NULL)
            o->in_tail = tail;
        o->in_head = b;
    }
    o->in_bytes -= taken;
    pthread_cond_broadcast(&o->room);
    pthread_mutex_unlock(&o->lock);
}

void rpcout_room(struct rpcout *o)
{
    if (o->cfg.wait)
        event_active(o->wake, EV_READ, 0);
}

static void on_stats(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    publish_stats(arg);
}

static void *loop_main(void *arg)
{
    struct rpcout *o = arg;

    event_base_dispatch(o->base);
    return NULL;
}

/* ---------------------------------------------------------- start, stop */

int rpcout_check(const struct rpcout_cfg *cfg, int cleartext_anywhere, char err[RPC_ERR_MAX])
{
    int i, tls, any_tls = 0;

    for (i = 0; i < cfg->npush; i++) {
        if (rpc_check_url("--push", cfg->push[i], cleartext_anywhere, &tls, err) < 0)
            return -1;
        any_tls |= tls;
    }
    if (cfg->listen) {
        if (rpc_check_listen(cfg->listen, cfg->tls.cleartext, cleartext_anywhere, err) < 0)
            return -1;
        any_tls |= !cfg->tls.cleartext;
    }
    if (any_tls && (!cfg->tls.cert || !cfg->tls.key || !cfg->tls.ca)) {
        snprintf(err, RPC_ERR_MAX,
                 "TLS needs --tls-cert, --tls-key and --tls-ca (see docs/certs.md)");
        return -1;
    }
    return 0;
}

static void rpcout_free(struct rpcout *o)
{
    int i;

    for (i = 0; i < o->npush; i++)
        push_close(o->push[i]);
    if (o->srv)
        serve_free(o->srv);
    gmsg_unref(o->hello);
    while (o->in_head) {
        struct gblock *b = o->in_head;

        o->in_head = b->next;
        block_drop(b);
    }
    free(o->fill); /* its events were never handed over */
    if (o->wake)
        event_free(o->wake);
    if (o->stats_ev)
        event_free(o->stats_ev);
    if (o->base)
        event_base_free(o->base);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->room);
    free(o);
}

struct rpcout *rpcout_start(const struct rpcout_cfg *cfg, char err[RPC_ERR_MAX])
{
    struct rpcout *o = calloc(1, sizeof(*o));
    struct timeval st = {0, STATS_MS * 1000};
    int i;

    if (o == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    o->cfg = *cfg;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->room, NULL);
    if (evthread_use_pthreads() < 0 || (o->base = event_base_new()) == NULL) {
        snprintf(err, RPC_ERR_MAX, "cannot create the event loop");
        goto fail;
    }
    o->wake = event_new(o->base, -1, EV_READ, on_wake, o);
    o->stats_ev = event_new(o->base, -1, EV_PERSIST, on_stats, o);
    if (o->wake == NULL || o->stats_ev == NULL || event_add(o->stats_ev, &st) < 0) {
        snprintf(err, RPC_ERR_MAX, "cannot create the event loop");
        goto fail;
    }
    for (i = 0; i < cfg->npush; i++) {
        o->push[i] = push_new(o, cfg->push[i], err);
        if (o->push[i] == NULL)
            goto fail;
        o->npush++;
    }
    if (cfg->listen && (o->srv = serve_new(o, err)) == NULL)
        goto fail;
    publish_stats(o);
    if (pthread_create(&o->thread, NULL, loop_main, o) != 0) {
        snprintf(err, RPC_ERR_MAX, "cannot start the gRPC thread");
        goto fail;
    }
    o->started = 1;
    return o;
fail:
    rpcout_free(o);
    return NULL;
}

/* Runs on the loop: half-close the publish streams, then wait (checking
 * every DRAIN_POLL_MS) until every collector acknowledged everything or
 * drain_ms passed. */
#define DRAIN_POLL_MS  50
#define DRAIN_FLUSH_MS 200

struct drain {
    struct rpcout *o;
    uint64_t deadline;
    struct event *ev;
};

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct drain *d = arg;
    struct rpcout *o = d->o;
    uint64_t pending = 0;
    int i;

    (void)fd;
    (void)what;
    on_wake(-1, 0, o); /* the last events handed over */
    pthread_mutex_lock(&o->lock);
    pending = o->in_head != NULL; /* some still wait for room (wait mode) */
    pthread_mutex_unlock(&o->lock);
    for (i = 0; i < o->npush; i++) {
        if (!pending) /* half-close only once nothing more can come */
            push_finish(o->push[i]);
        pending += push_pending(o->push[i]);
    }
    if (pending == 0 || rpc_now_ms() >= d->deadline) {
        struct timeval flush = {0, DRAIN_FLUSH_MS * 1000};

        if (o->srv)
            serve_shutdown(o->srv);
        publish_stats(o);
        event_base_loopexit(o->base, &flush); /* the subscribers' last bytes go out */
        return;
    }
    {
        struct timeval tv = {0, DRAIN_POLL_MS * 1000};

        evtimer_add(d->ev, &tv);
    }
}

int rpcout_stop(struct rpcout *o)
{
    struct drain d;
    uint64_t lost = 0;
    int i, rc = 0;

    if (o == NULL)
        return 0;
    rpcout_flush(o); /* the exporter thread is done: what it wrote last */
    pthread_mutex_lock(&o->lock);
    o->stopping = 1;
    pthread_cond_broadcast(&o->room);
    pthread_mutex_unlock(&o->lock);
    d.o = o;
    d.deadline = rpc_now_ms() + o->cfg.drain_ms;
    d.ev = evtimer_new(o->base, drain_check, &d);
    if (d.ev)
        event_active(d.ev, EV_TIMEOUT, 0);
    else
        event_base_loopexit(o->base, NULL);
    if (o->started)
        pthread_join(o->thread, NULL);
    if (d.ev)
        event_free(d.ev);
    /* events that never left the inbox go where the rest goes: each
     * collector's spool, or the count of what was lost */
    for (i = 0; i < o->npush; i++)
        push_offline(o->push[i]);
    while (o->in_head) {
        struct gblock *b = o->in_head;
        struct gmsg *m;

        o->in_head = b->next;
        while ((m = block_peek(b)) != NULL) {
            int last = block_take(b, m);

            for (i = 0; i < o->npush; i++)
                push_event(o->push[i], m);
            gmsg_unref(m);
            if (last)
                break;
        }
    }
    o->in_tail = NULL;
    for (i = 0; i < o->npush; i++)
        lost += push_close(o->push[i]);
    o->npush = 0;
    if (lost || o->inbox_dropped) {
        log_error("gRPC: %llu events lost (not acknowledged and not spooled)",
                  (unsigned long long)(lost + o->inbox_dropped));
        rc = -1;
    }
    rpcout_free(o);
    return rc;
}
