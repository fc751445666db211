/*
 * queue.c - bounded event queue and SPSC packet ring; see queue.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"

#define EVQ_WAKE_BATCH 256

int evq_init(struct evq *q, size_t max_depth)
{
    memset(q, 0, sizeof(*q));
    q->max_depth = max_depth;
    if (pthread_mutex_init(&q->lock, NULL))
        return -1;
    if (pthread_cond_init(&q->nonempty, NULL) || pthread_cond_init(&q->nonfull, NULL))
        return -1;
    return 0;
}

void evq_free_list(struct evq_item *list)
{
    struct evq_item *next;

    for (; list; list = next) {
        next = list->next;
        free(list);
    }
}

void evq_destroy(struct evq *q)
{
    evq_free_list(q->head);
    evq_free_list(q->spare[EVQ_SPARE_SMALL]);
    evq_free_list(q->spare[EVQ_SPARE_LARGE]);
    pthread_cond_destroy(&q->nonempty);
    pthread_cond_destroy(&q->nonfull);
    pthread_mutex_destroy(&q->lock);
}

size_t evq_push_list(struct evq *q, struct evq_item *head, struct evq_item *tail, size_t n,
                     int wait, struct evq_item **spares)
{
    int c;

    pthread_mutex_lock(&q->lock);
    while (q->depth + n > q->max_depth && wait && !q->closed) {
        q->producers_waiting++;
        pthread_cond_wait(&q->nonfull, &q->lock);
        q->producers_waiting--;
    }
    if (q->depth + n > q->max_depth || q->closed) {
        pthread_mutex_unlock(&q->lock);
        tail->next = NULL;
        evq_free_list(head);
        return n;
    }
    tail->next = NULL;
    if (q->tail)
        q->tail->next = head;
    else
        q->head = head;
    q->tail = tail;
    q->depth += n;
    /* Wake the consumer for a batch, not for every event: it also wakes by
     * itself every few tens of milliseconds (see evq_pop_all's callers). */
    if (q->consumer_waiting && q->depth >= EVQ_WAKE_BATCH)
        pthread_cond_signal(&q->nonempty);
    /* All the spares at once, and only when the producer has none left:
     * walking the list here would take a cache miss per item, under the
     * lock, for lines the consumer wrote last. */
    for (c = 0; spares && c < EVQ_SPARE_CLASSES; c++) {
        if (spares[c] == NULL) {
            spares[c] = q->spare[c];
            q->spare[c] = NULL;
            q->nspare[c] = 0;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int evq_push(struct evq *q, struct evq_item *item, int wait)
{
    return evq_push_list(q, item, item, 1, wait, NULL) ? -1 : 0;
}

void evq_recycle(struct evq *q, struct evq_item *list)
{
    struct evq_item *extra = NULL, *next;

    pthread_mutex_lock(&q->lock);
    for (; list; list = next) {
        int c = (list->flags & EVQ_F_LARGE) ? EVQ_SPARE_LARGE : EVQ_SPARE_SMALL;

        next = list->next;
        if (q->nspare[c] >= q->max_depth) {
            list->next = extra;
            extra = list;
            continue;
        }
        list->next = q->spare[c];
        q->spare[c] = list;
        q->nspare[c]++;
    }
    pthread_mutex_unlock(&q->lock);
    evq_free_list(extra);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

struct evq_item *evq_pop_all(struct evq *q, int timeout_ms)
{
    struct evq_item *it;
    struct timespec deadline;

    if (timeout_ms > 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && !q->closed) {
        int rc = 0;

        q->consumer_waiting = 1;
        if (timeout_ms <= 0)
            pthread_cond_wait(&q->nonempty, &q->lock);
        else
            rc = pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline);
        q->consumer_waiting = 0;
        if (rc == ETIMEDOUT)
            break;
    }
    it = q->head;
    q->head = q->tail = NULL;
    q->depth = 0;
    if (it && q->producers_waiting)
        pthread_cond_broadcast(&q->nonfull);
    pthread_mutex_unlock(&q->lock);
    return it;
}

void evq_close(struct evq *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_cond_broadcast(&q->nonfull);
    pthread_mutex_unlock(&q->lock);
}

size_t evq_depth(struct evq *q)
{
    size_t d;

    pthread_mutex_lock(&q->lock);
    d = q->depth;
    pthread_mutex_unlock(&q->lock);
    return d;
}

int evq_finished(struct evq *q)
{
    int done;

    pthread_mutex_lock(&q->lock);
    done = q->closed && q->head == NULL;
    pthread_mutex_unlock(&q->lock);
    return done;
}

/* ---- SPSC packet ring ---- */

static uint32_t rec_size(uint32_t payload)
{
    size_t sz = sizeof(struct pring_rec) + payload;

    return (uint32_t)((sz + PRING_ALIGN - 1) & ~(size_t)(PRING_ALIGN - 1));
}

int pring_init(struct pring *r, size_t cap)
{
    size_t c = 4096;

    while (c < cap)
        c <<= 1;
    r->buf = aligned_alloc(64, c);
    if (r->buf == NULL)
        return -1;
    r->cap = c;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void pring_destroy(struct pring *r)
{
    free(r->buf);
    r->buf = NULL;
}

/*
 * head and tail are free-running byte counters; their difference is the
 * bytes in use. A record that would cross the end of the buffer is preceded
 * by a WRAP record filling the rest, so every record is contiguous.
 */
struct pring_rec *pring_reserve(struct pring *r, uint32_t payload)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint32_t need = rec_size(payload);
    size_t pos = head & (r->cap - 1);
    size_t room_end = r->cap - pos;
    struct pring_rec *rec;

    if (need > r->cap / 2)
        return NULL;
    if (room_end < need) {
        /* Need the rest of the buffer for padding plus the record at 0. */
        if (r->cap - (head - tail) < room_end + need)
            return NULL;
        rec = (struct pring_rec *)(r->buf + pos);
        rec->size = (uint32_t)room_end;
        rec->kind = PRING_WRAP;
        head += room_end;
        atomic_store_explicit(&r->head, head, memory_order_release);
        pos = 0;
    } else if (r->cap - (head - tail) < need) {
        return NULL;
    }
    rec = (struct pring_rec *)(r->buf + pos);
    rec->size = need;
    return rec;
}

void pring_commit(struct pring *r, struct pring_rec *rec)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

    atomic_store_explicit(&r->head, head + rec->size, memory_order_release);
}

struct pring_rec *pring_peek(struct pring *r)
{
    for (;;) {
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        struct pring_rec *rec;

        if (head == tail)
            return NULL;
        rec = (struct pring_rec *)(r->buf + (tail & (r->cap - 1)));
        if (rec->kind != PRING_WRAP)
            return rec;
        atomic_store_explicit(&r->tail, tail + rec->size, memory_order_release);
    }
}

void pring_release(struct pring *r, struct pring_rec *rec)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

    atomic_store_explicit(&r->tail, tail + rec->size, memory_order_release);
}
