/*
 * pbfile.h - the -o pb:PATH format: sonde.v1.Event messages, each preceded
 * by its length in bytes as a protobuf varint (the standard length-delimited
 * stream: Java's writeDelimitedTo, Python's _VarintBytes + SerializeToString).
 */
#ifndef SONDE_SCHEMA_PBFILE_H
#define SONDE_SCHEMA_PBFILE_H

#include <stdint.h>
#include <stdio.h>

#include "sbuf.h"

/* Largest Event the writer frames and the reader accepts, bytes. */
#define PBFILE_MAX_EVENT (16u * 1024 * 1024)
/* A varint of a 64-bit value never needs more bytes than this. */
#define PBFILE_MAX_VARINT 10
/* Room for an error message of the reader. */
#define PBFILE_ERR_MAX 128

/*
 * Append one frame: varint(size of the Event) then the Event, whose only
 * field is the member tag holding packed[0..len) - the already packed inner
 * message (e.g. a packed Flow). Nothing is unpacked or packed again. An
 * invalid tag (not an Event member) or a frame over PBFILE_MAX_EVENT marks
 * out failed (see sbuf_ok) and logs why.
 */
void pbfile_frame_event(struct sbuf *out, int tag, const uint8_t *packed, size_t len);
/* The same Event without the length in front (one gRPC Subscribe message). */
void pbfile_event(struct sbuf *out, int tag, const uint8_t *packed, size_t len);

struct pbfile_reader {
    FILE *fp;
    uint64_t offset;       /* bytes consumed from fp */
    uint64_t frame_offset; /* where the last frame read (or failing) starts */
    char err[PBFILE_ERR_MAX];
    int truncated; /* the error is the file ending inside a frame (a cut, not damage) */
};

/* Read frames from fp (stdin allowed); the reader does not close it. */
void pbfile_reader_init(struct pbfile_reader *r, FILE *fp);

/*
 * Read the next frame into msg (replacing its contents): 1 with one Event's
 * bytes in msg->data[0..msg->len), 0 at a clean end of file (between frames),
 * -1 on error, with a message naming the byte offset in r->err: a read
 * error, a truncated length or body, a length varint over PBFILE_MAX_VARINT
 * bytes or a length over PBFILE_MAX_EVENT, out of memory.
 */
int pbfile_read(struct pbfile_reader *r, struct sbuf *msg);

#endif
