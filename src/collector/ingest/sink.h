/*
 * sink.h - where the receiver puts events until the store exists: JSON
 * lines or length-delimited sonde.v1.Event frames (the agent's -o formats),
 * appended to a file and made durable (write + fdatasync) before the
 * agents are told their events are accepted.
 */
#ifndef SONDE_COLLECTOR_SINK_H
#define SONDE_COLLECTOR_SINK_H

#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "dedup.h"
#include "sbuf.h"

#define SINK_ERR_MAX 256

enum sink_kind { SINK_JSON = 1, SINK_PB };

struct sink {
    int kind;
    char *path;
    FILE *f;
    int is_stdout;
    int regular;   /* a regular file (not stdout, a pipe, a tty) */
    int sync;      /* fdatasync on commit (regular files) */
    uint64_t size; /* bytes in the file: where a failed write is cut back to */
    uint64_t written;
    struct sbuf buf; /* records not yet handed to the writer (the loop's) */
    struct sbuf out; /* records being written (the writer's, between sink_swap and its end) */
};

/* "json:PATH" / "pb:PATH" ("-" = stdout); opens for appending. */
int sink_open(struct sink *s, const char *spec, int fsync_on_commit, char err[SINK_ERR_MAX]);
/*
 * Read what the file already holds into d (agent, type -> highest seq), so
 * that a restarted collector recognises what it stored before. A last
 * record cut short by a crash is removed from the file. Returns the number
 * of events found, or -1 with err set.
 */
long sink_scan(struct sink *s, struct dedup *d, char err[SINK_ERR_MAX]);
/* Append one event (m unpacked, packed[0..len) the same bytes) to buf. */
int sink_write(struct sink *s, int tag, const ProtobufCMessage *m, const uint8_t *packed,
               size_t len);
/* What buf holds becomes out, to be written; buf starts empty (out was). */
void sink_swap(struct sink *s);
/* out into the file; on failure the file is cut back to what it held and
 * out keeps the records (sink_commit tries them again). */
int sink_write_out(struct sink *s, char err[SINK_ERR_MAX]);
/* fdatasync, for a regular file unless --no-fsync. */
int sink_sync(struct sink *s, char err[SINK_ERR_MAX]);
/* All of it now, on the calling thread: swap, write out, sync. */
int sink_commit(struct sink *s, char err[SINK_ERR_MAX]);
void sink_close(struct sink *s);

#endif
