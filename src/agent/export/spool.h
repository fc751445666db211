/*
 * spool.h - a directory of segment files where events for one collector
 * wait when its memory queue is full or when the agent exits with events
 * not yet acknowledged.
 *
 * Records are read back in the order of their segments' names, which are
 * the first seq they hold (zero-padded): appends go to the newest segment,
 * and the events left in memory at exit - older than anything spooled -
 * go to a segment of their own that sorts before the others. So the
 * collector receives each type in seq order, which its deduplication
 * relies on. Record: u32 length, u8 tag, u64 seq (little endian), bytes.
 */
#ifndef SONDE_EXPORT_SPOOL_H
#define SONDE_EXPORT_SPOOL_H

#include <stdint.h>
#include <stdio.h>

#include "common/sbuf.h"

#define SPOOL_SEGMENT_BYTES (8u << 20)
#define SPOOL_DIR_MAX       400
#define SPOOL_DIR_MAX_S     "400" /* the same, for printf precision */
#define SPOOL_PATH_MAX      512   /* SPOOL_DIR_MAX, '/', a segment name */
#define SPOOL_ERR_MAX       256
#define SPOOL_RECORD_HEAD   13
#define SPOOL_RECORD_MAX    (16u << 20)

struct spool {
    char dir[SPOOL_PATH_MAX];
    uint64_t max_bytes;
    uint64_t bytes; /* in all segments, not yet read */
    FILE *w;        /* the segment being appended to */
    char wname[SPOOL_PATH_MAX];
    uint64_t wbytes;
    FILE *r; /* the segment being read */
    char rname[SPOOL_PATH_MAX];
    long rsize; /* its size when opened */
    uint64_t segments_read, records_dropped_bad;
    int stuck; /* a read segment could not be removed: reading stops */
};

/* Create dir if needed and take stock of what a previous run left there. */
int spool_open(struct spool *s, const char *dir, uint64_t max_bytes, char err[SPOOL_ERR_MAX]);
/* Append one record; -1 when it would pass max_bytes or the write fails. */
int spool_append(struct spool *s, int tag, uint64_t seq, const uint8_t *p, size_t n);
/* Write records to a new segment named first_seq, in the order given (they
 * must be older than everything spooled). Same -1 rules, record by record. */
int spool_prepend_begin(struct spool *s, uint64_t first_seq);
int spool_prepend(struct spool *s, int tag, uint64_t seq, const uint8_t *p, size_t n);
void spool_prepend_end(struct spool *s);
/* The oldest record into out: 1, 0 when empty, -1 on a damaged segment
 * (the rest of that segment is skipped and counted). */
int spool_read(struct spool *s, int *tag, uint64_t *seq, struct sbuf *out);
int spool_empty(const struct spool *s);
void spool_close(struct spool *s);

#endif
