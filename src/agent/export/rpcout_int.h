/*
 * rpcout_int.h - what rpcout.c (the thread), push.c (collectors) and
 * serve.c (subscribers) share. Everything here lives on the loop thread.
 */
#ifndef SONDE_EXPORT_RPCOUT_INT_H
#define SONDE_EXPORT_RPCOUT_INT_H

#include <pthread.h>

#include <event2/event.h>

#include "health.h"
#include "rpcout.h"
#include "spool.h"

#define RPCOUT_TAGS 64 /* Event member numbers (EV_TAG_MAX + 1) */

/* One event, shared by every queue that holds it (reference counted). It
 * lives in a block with others (below) or, read back from the spool, alone. */
struct gmsg {
    struct gblock *blk; /* NULL: allocated alone */
    unsigned refs;
    int tag;
    uint64_t seq;
    size_t len;
    uint8_t data[];
};

/*
 * Events handed over together. The exporter thread writes events one after
 * another into a block and hands the whole block over at once: one
 * allocation and one lock for dozens of events instead of one each (a
 * malloc on one thread and a free on another, per event, was a fifth of
 * the gRPC side's CPU). One thread owns a block at a time: the exporter
 * until it is handed over, the loop after. The loop frees it when the last
 * of its events is released, so a queue that keeps one event keeps its
 * block: collectors acknowledge in order and soon, but subscribers, which
 * may be slow, queue copies of their own (serve.c).
 */
#define RPCOUT_BLOCK_BYTES (16u << 10)

struct gblock {
    struct gblock *next; /* inbox list */
    unsigned live;       /* events not yet released */
    size_t used;         /* bytes of data[] written */
    size_t taken;        /* bytes of data[] the loop has handed to its queues */
    size_t bytes;        /* event bytes (gmsg.len) not yet taken, for the inbox limit */
    size_t cap;
    uint64_t count; /* events not yet taken */
    uint8_t data[]; /* struct gmsg, one after another, 8-byte aligned */
};

struct gmsg *gmsg_new(int tag, uint64_t seq, const uint8_t *data, size_t len);
void gmsg_unref(struct gmsg *m);

/* A FIFO of messages: v[head..tail); [head..sent) are on the wire. */
struct pq {
    struct gmsg **v;
    size_t head, sent, tail, cap;
};

struct push_target;
struct serve;

struct rpcout {
    struct rpcout_cfg cfg;
    struct event_base *base;
    pthread_t thread;
    int started;
    struct gblock *fill; /* being written by the exporter thread; not in the inbox yet */
    /* the inbox: filled by the exporter thread, emptied by the loop */
    pthread_mutex_t lock;
    pthread_cond_t room; /* the inbox has room again (wait mode) */
    struct gblock *in_head, *in_tail;
    size_t in_bytes;
    uint64_t inbox_dropped;
    int stopping;
    struct event *wake;
    /* loop side */
    struct push_target *push[RPCOUT_MAX_PUSH];
    int npush;
    struct serve *srv;
    struct gmsg *hello; /* the AgentHello, for GetInfo */
    struct event *stats_ev;
    int lost; /* events lost at exit */
    /* stats published for other threads */
    struct rpcout_stats st;
};

/* push.c */
struct push_target *push_new(struct rpcout *o, const char *url, char err[RPC_ERR_MAX]);
void push_event(struct push_target *t, struct gmsg *m);
/* Whether an event of len bytes fits in memory or in the spool now. */
int push_has_room(const struct push_target *t, size_t len);
/* Number of events still unacknowledged (memory + spool). */
uint64_t push_pending(const struct push_target *t);
/* The loop has stopped: send nothing more (events still go to memory or spool). */
void push_offline(struct push_target *t);
/* Half-close every stream once all is sent (exit). */
void push_finish(struct push_target *t);
/* Spool what is left; returns events lost (no spool, or spool full). */
uint64_t push_close(struct push_target *t);
void push_stats(const struct push_target *t, struct rpcout_push_stats *st);

/* rpcout.c: an acknowledgement made room; take more from the inbox. */
void rpcout_room(struct rpcout *o);

/* serve.c */
struct serve *serve_new(struct rpcout *o, char err[RPC_ERR_MAX]);
void serve_event(struct serve *s, struct gmsg *m);
void serve_stats(const struct serve *s, uint32_t *subscribers, uint64_t *dropped);
void serve_shutdown(struct serve *s);
void serve_free(struct serve *s);

/* the queue */
int pq_push(struct pq *q, struct gmsg *m);
void pq_free(struct pq *q);

#endif
