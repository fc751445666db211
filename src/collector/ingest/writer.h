/*
 * writer.h - the collector's outputs are written and synced on a thread of
 * their own.
 *
 * The collector acknowledges events only once they are on disk, and
 * fdatasync blocks for as long as the disk takes: on the event loop it
 * stopped all reading for a quarter of the time at full rate, and the
 * write(2)s themselves were a tenth of the loop's work. The loop hands
 * each sink's pending records over (sink_swap) and goes on reading; the
 * writer writes them, syncs the files if asked, and calls done() on the
 * loop. Only then are the events of a synced round acknowledged.
 */
#ifndef SONDE_COLLECTOR_WRITER_H
#define SONDE_COLLECTOR_WRITER_H

#include <event2/event.h>

#include "sink.h"

#define WRITER_ERR_MAX SINK_ERR_MAX

/* ok: every sink written (and synced, if the round was); otherwise err
 * says which one failed and why. */
typedef void (*writer_done_fn)(int ok, const char *err, void *arg);

struct writer;

/* The base must have been made after evthread_use_pthreads(). */
struct writer *writer_new(struct event_base *base, writer_done_fn done, void *arg);
/* Hand over what sinks[0..n) hold and write it, then fdatasync if sync;
 * -1 if a round is still running. The sinks' out buffers, sizes and files
 * belong to the writer until done() runs. */
int writer_start(struct writer *w, struct sink *sinks, int n, int sync);
int writer_busy(const struct writer *w);
/* Block until the running round ends, and run its done() now. */
void writer_wait(struct writer *w);
/* Waits for a running round (its done() is not called), then frees. */
void writer_free(struct writer *w);

#endif
