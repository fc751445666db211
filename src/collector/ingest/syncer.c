/*
 * syncer.c - fdatasync on a thread of its own; see syncer.h.
 *
 * One round at a time: the loop starts a round, the thread syncs every
 * file and wakes the loop with event_active, which is safe from another
 * thread once libevent's pthreads locking is on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "syncer.h"

struct syncer {
    struct event_base *base;
    struct event *done_ev;
    syncer_done_fn done;
    void *arg;
    pthread_t thread;
    int started;
    int pending; /* loop side: a round started and done() not yet called */
    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int fds[SYNCER_MAX_FDS];
    const char *names[SYNCER_MAX_FDS];
    int n;
    int work; /* a round for the thread */
    int quit;
    int ok;
    char err[SYNCER_ERR_MAX];
};

static void sync_round(struct syncer *s)
{
    int fds[SYNCER_MAX_FDS], n, i, ok = 1;
    const char *names[SYNCER_MAX_FDS];
    char err[SYNCER_ERR_MAX] = "";

    n = s->n;
    memcpy(fds, s->fds, sizeof(fds));
    memcpy(names, s->names, sizeof(names));
    pthread_mutex_unlock(&s->lock);
    for (i = 0; i < n; i++) {
        if (fdatasync(fds[i]) != 0 && ok) {
            snprintf(err, sizeof(err), "%s: fdatasync: %s", names[i], strerror(errno));
            ok = 0;
        }
    }
    pthread_mutex_lock(&s->lock);
    s->ok = ok;
    memcpy(s->err, err, sizeof(err));
    s->work = 0;
}

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->work && !s->quit)
            pthread_cond_wait(&s->wake, &s->lock);
        if (!s->work)
            break;
        sync_round(s);
        event_active(s->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct syncer *s = arg;
    char err[SYNCER_ERR_MAX];
    int ok;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&s->lock);
    ok = s->ok;
    memcpy(err, s->err, sizeof(err));
    pthread_mutex_unlock(&s->lock);
    s->pending = 0;
    s->done(ok, err, s->arg);
}

struct syncer *syncer_new(struct event_base *base, syncer_done_fn done, void *arg)
{
    struct syncer *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base = base;
    s->done = done;
    s->arg = arg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->done_ev = event_new(base, -1, EV_READ, on_done, s);
    if (s->done_ev == NULL || pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        syncer_free(s);
        return NULL;
    }
    s->started = 1;
    return s;
}

int syncer_start(struct syncer *s, const int *fds, const char *const *names, int n)
{
    if (s->pending || n > SYNCER_MAX_FDS)
        return -1;
    pthread_mutex_lock(&s->lock);
    memcpy(s->fds, fds, (size_t)n * sizeof(*fds));
    memcpy(s->names, names, (size_t)n * sizeof(*names));
    s->n = n;
    s->work = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    s->pending = 1;
    return 0;
}

int syncer_busy(const struct syncer *s)
{
    return s->pending;
}

void syncer_free(struct syncer *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->quit = 1;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->done_ev)
        event_free(s->done_ev);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}
