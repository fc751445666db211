/*
 * writer.c - output rounds on a thread of their own; see writer.h.
 *
 * One round at a time: the loop swaps the sinks' buffers and starts a
 * round, the thread writes (and syncs) and wakes the loop with
 * event_active, which is safe from another thread once libevent's pthreads
 * locking is on. writer_wait lets the loop finish a round itself when it
 * cannot go on without it (buffers at their limit, shutdown).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"

struct writer {
    struct event *done_ev;
    writer_done_fn done;
    void *arg;
    pthread_t thread;
    int started;
    int pending; /* loop side: a round started and done() not yet called */
    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake, ended;
    struct sink *sinks;
    int n, sync;
    int work; /* a round for the thread */
    int quit;
    int ok;
    char err[WRITER_ERR_MAX];
};

static int write_round(struct sink *sinks, int n, int sync, char err[WRITER_ERR_MAX])
{
    int i;

    for (i = 0; i < n; i++)
        if (sink_write_out(&sinks[i], err) < 0)
            return 0;
    for (i = 0; sync && i < n; i++)
        if (sink_sync(&sinks[i], err) < 0)
            return 0;
    return 1;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct sink *sinks;
        int n, sync, ok;
        char err[WRITER_ERR_MAX] = "";

        while (!w->work && !w->quit)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->work)
            break;
        sinks = w->sinks;
        n = w->n;
        sync = w->sync;
        pthread_mutex_unlock(&w->lock);
        ok = write_round(sinks, n, sync, err);
        pthread_mutex_lock(&w->lock);
        w->ok = ok;
        memcpy(w->err, err, sizeof(err));
        w->work = 0;
        pthread_cond_signal(&w->ended);
        event_active(w->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* The round has ended (w->work is 0): report it on the loop. */
static void finish(struct writer *w)
{
    char err[WRITER_ERR_MAX];
    int ok;

    pthread_mutex_lock(&w->lock);
    ok = w->ok;
    memcpy(err, w->err, sizeof(err));
    pthread_mutex_unlock(&w->lock);
    w->pending = 0;
    w->done(ok, err, w->arg);
}

/* The wake-up of a round writer_wait already finished may come after the
 * next round started: only a round that has ended is finished here. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct writer *w = arg;
    int ended;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->lock);
    ended = !w->work;
    pthread_mutex_unlock(&w->lock);
    if (w->pending && ended)
        finish(w);
}

struct writer *writer_new(struct event_base *base, writer_done_fn done, void *arg)
{
    struct writer *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->done = done;
    w->arg = arg;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->ended, NULL);
    w->done_ev = event_new(base, -1, EV_READ, on_done, w);
    if (w->done_ev == NULL || pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        writer_free(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

int writer_start(struct writer *w, struct sink *sinks, int n, int sync)
{
    int i;

    if (w->pending)
        return -1;
    for (i = 0; i < n; i++)
        sink_swap(&sinks[i]);
    pthread_mutex_lock(&w->lock);
    w->sinks = sinks;
    w->n = n;
    w->sync = sync;
    w->work = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    w->pending = 1;
    return 0;
}

int writer_busy(const struct writer *w)
{
    return w->pending;
}

void writer_wait(struct writer *w)
{
    if (!w->pending)
        return;
    pthread_mutex_lock(&w->lock);
    while (w->work)
        pthread_cond_wait(&w->ended, &w->lock);
    pthread_mutex_unlock(&w->lock);
    finish(w);
}

void writer_free(struct writer *w)
{
    if (w == NULL)
        return;
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    if (w->done_ev)
        event_free(w->done_ev);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->ended);
    free(w);
}
