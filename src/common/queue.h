/*
 * queue.h - the two bounded queues of the agent's pipeline.
 *
 * evq: many producers (flow workers, capture) to one consumer (exporter),
 * carrying packed events. A mutex and two condition variables: events are
 * per flow, not per packet, so this is far from the hot path.
 *
 * pring: one producer (capture) to one consumer (a flow worker), carrying
 * packets. This one is per packet, so it is a lock-free single-producer
 * single-consumer byte ring with C11 atomics; records are variable-sized
 * (header + captured bytes) and never straddle the end of the buffer.
 *
 * Both are bounded. A producer either waits for room (reading a file: no
 * loss) or drops and counts (live capture: never stall the kernel ring).
 */
#ifndef SONDE_QUEUE_H
#define SONDE_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- events ---- */

#define EVQ_F_FLOW_SNAPSHOT 0x1 /* data is a flow snapshot, not a packed message */
#define EVQ_F_RECYCLE       0x2 /* one of the recycled sizes: give back, do not free */
#define EVQ_F_LARGE         0x4 /* ... the large one (EVQ_SPARE_LARGE) */

/* The two recycled item sizes, each with its own list of spares. */
#define EVQ_SPARE_SMALL   0
#define EVQ_SPARE_LARGE   1
#define EVQ_SPARE_CLASSES 2

struct evq_item {
    struct evq_item *next;
    uint32_t tag; /* Event oneof field number */
    uint32_t len;
    uint32_t flags; /* EVQ_F_* */
    uint32_t pad;
    uint8_t data[]; /* packed message, or what flags says */
};

struct evq {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    struct evq_item *head, *tail;
    size_t depth, max_depth;
    int closed;
    int consumer_waiting, producers_waiting; /* signal only when someone sleeps */
    /* Fixed-size items handed back by the consumer for producers to reuse:
     * malloc in one thread and free in another contend on one arena. */
    struct evq_item *spare[EVQ_SPARE_CLASSES];
    size_t nspare[EVQ_SPARE_CLASSES];
};

int evq_init(struct evq *q, size_t max_depth);
void evq_destroy(struct evq *q);
/* Takes ownership of item. wait: block while full; otherwise drop (and free)
 * when full. Returns 0 if queued, -1 if dropped (the caller counts). */
int evq_push(struct evq *q, struct evq_item *item, int wait);
/* The same for a list of n items (head..tail, linked by next), all or none;
 * returns how many were dropped. When spares (EVQ_SPARE_CLASSES lists) is
 * not NULL, each empty one gets every recycled item of its size, in the
 * same lock. */
size_t evq_push_list(struct evq *q, struct evq_item *head, struct evq_item *tail, size_t n,
                     int wait, struct evq_item **spares);
/* Consumer: give back a list (linked by next) of EVQ_F_RECYCLE items. */
void evq_recycle(struct evq *q, struct evq_item *list);
/* Free a list of items linked by next. */
void evq_free_list(struct evq_item *list);
/* Every queued item as a list (oldest first, linked by next), or NULL after
 * timeout_ms (0 = wait forever) or once closed and empty. Taking them all at
 * once keeps the lock out of the per-event path of the consumer. */
struct evq_item *evq_pop_all(struct evq *q, int timeout_ms);
void evq_close(struct evq *q);
size_t evq_depth(struct evq *q);
/* Closed and drained: the consumer can stop. */
int evq_finished(struct evq *q);

/* ---- packets ---- */

#define PRING_ALIGN 8

enum pring_kind { PRING_PACKET = 1, PRING_TICK, PRING_END, PRING_WRAP };

struct pring_rec {
    uint32_t size;   /* whole record, header included, aligned */
    uint16_t kind;   /* enum pring_kind */
    uint16_t source; /* capture source index */
    uint32_t caplen, len;
    uint64_t ts_us;
    uint8_t data[];
};

struct pring {
    uint8_t *buf;
    size_t cap;                      /* bytes, power of two */
    _Alignas(64) atomic_size_t head; /* written by the producer */
    _Alignas(64) atomic_size_t tail; /* written by the consumer */
};

int pring_init(struct pring *r, size_t cap);
void pring_destroy(struct pring *r);
/* Reserve a record for payload bytes; NULL when full. Fill it, then commit. */
struct pring_rec *pring_reserve(struct pring *r, uint32_t payload);
void pring_commit(struct pring *r, struct pring_rec *rec);
/* Oldest record, or NULL when empty. Release it when done with it. */
struct pring_rec *pring_peek(struct pring *r);
void pring_release(struct pring *r, struct pring_rec *rec);

#endif
