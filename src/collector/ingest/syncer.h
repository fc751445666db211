/*
 * syncer.h - fdatasync on a thread of its own.
 *
 * The collector acknowledges events only once they are on disk, and
 * fdatasync blocks for as long as the disk takes: on the event loop it
 * stopped all reading for a quarter of the time at full rate. The loop
 * writes, then hands the files to the syncer and goes on reading; the
 * syncer calls done() on the loop when they are durable, and only then are
 * the events written before it acknowledged.
 */
#ifndef SONDE_COLLECTOR_SYNCER_H
#define SONDE_COLLECTOR_SYNCER_H

#include <event2/event.h>

#define SYNCER_MAX_FDS 8
#define SYNCER_ERR_MAX 256

/* ok: every file is durable; otherwise err says which one failed and why. */
typedef void (*syncer_done_fn)(int ok, const char *err, void *arg);

struct syncer;

/* The base must have been made after evthread_use_pthreads(). */
struct syncer *syncer_new(struct event_base *base, syncer_done_fn done, void *arg);
/* fdatasync fds[0..n) (names for messages); -1 if a round is still running. */
int syncer_start(struct syncer *s, const int *fds, const char *const *names, int n);
int syncer_busy(const struct syncer *s);
/* Waits for a running round (its done() is not called), then frees. */
void syncer_free(struct syncer *s);

#endif
