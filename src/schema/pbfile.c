/*
 * pbfile.c - length-delimited streams of sonde.v1.Event.
 *
 * Writing is on the agent's hot path: the builders have already packed the
 * inner message, and an Event holding one member is just that member as a
 * length-delimited field, so a frame is three varints and a copy.
 *
 * Reading is for files of unknown origin: a length is never trusted beyond
 * PBFILE_MAX_EVENT and every short read is an error naming its byte offset.
 */
#include <errno.h>
#include <string.h>

#include "event.h"
#include "log.h"
#include "pbfile.h"
#include "pbwire.h"

static void frame_fail(struct sbuf *out)
{
    out->failed = 1; /* the sbuf convention: callers check sbuf_ok once */
}

/* The Event's size when it holds packed[0..len) as member tag; 0 if it cannot. */
static size_t event_size(int tag, size_t len)
{
    size_t total;

    if (schema_event_descriptor(tag) == NULL) {
        log_error("pbfile: %d is not a field of sonde.v1.Event", tag);
        return 0;
    }
    total = pb_varint_size(((uint64_t)tag << 3) | PB_WIRE_LEN) + pb_varint_size(len) + len;
    if (len > PBFILE_MAX_EVENT || total > PBFILE_MAX_EVENT) {
        log_error("pbfile: event of %zu bytes over the %u-byte limit", len, PBFILE_MAX_EVENT);
        return 0;
    }
    return total;
}

/* [total] key length event, into out: one reservation (with the slack
 * pb_put_varint's word-wide stores need), then only stores and a copy. */
static void put_frame(struct sbuf *out, int framed, int tag, const uint8_t *packed, size_t len)
{
    size_t total = event_size(tag, len);
    uint8_t *p, *start;

    if (total == 0) {
        frame_fail(out);
        return;
    }
    start = (uint8_t *)sbuf_reserve(out, PB_VARINT_MAX + total + PB_VARINT_SLACK);
    if (start == NULL)
        return;
    p = framed ? pb_put_varint(start, total) : start;
    p = pb_put_varint(p, ((uint64_t)tag << 3) | PB_WIRE_LEN);
    p = pb_put_varint(p, len);
    memcpy(p, packed, len);
    out->len += (size_t)(p + len - start);
}

void pbfile_frame_event(struct sbuf *out, int tag, const uint8_t *packed, size_t len)
{
    put_frame(out, 1, tag, packed, len);
}

void pbfile_event(struct sbuf *out, int tag, const uint8_t *packed, size_t len)
{
    put_frame(out, 0, tag, packed, len);
}

void pbfile_reader_init(struct pbfile_reader *r, FILE *fp)
{
    memset(r, 0, sizeof(*r));
    r->fp = fp;
}

static int read_error(struct pbfile_reader *r)
{
    snprintf(r->err, sizeof(r->err), "read error at byte offset %llu: %s",
             (unsigned long long)r->offset, strerror(errno));
    return -1;
}

/*
 * The frame length. Returns 1, 0 at end of file before its first byte, or -1.
 * Bits past 64 cannot be stored: they only make the length too large.
 */
static int read_length(struct pbfile_reader *r, uint64_t *len)
{
    uint64_t v = 0;
    int i, c, too_big = 0;

    for (i = 0; i < PBFILE_MAX_VARINT; i++) {
        c = getc(r->fp);
        if (c == EOF) {
            if (ferror(r->fp))
                return read_error(r);
            if (i == 0)
                return 0;
            r->truncated = 1;
            snprintf(r->err, sizeof(r->err), "truncated length at byte offset %llu",
                     (unsigned long long)r->frame_offset);
            return -1;
        }
        r->offset++;
        if (7 * i < 63 || (c & 0x7f) <= 1)
            v |= (uint64_t)(c & 0x7f) << (7 * i);
        else
            too_big = 1;
        if (!(c & 0x80)) {
            if (too_big) {
                snprintf(r->err, sizeof(r->err), "event length over 64 bits at byte offset %llu",
                         (unsigned long long)r->frame_offset);
                return -1;
            }
            if (v > PBFILE_MAX_EVENT) {
                snprintf(r->err, sizeof(r->err),
                         "event length %llu over the %u-byte limit at byte offset %llu",
                         (unsigned long long)v, PBFILE_MAX_EVENT,
                         (unsigned long long)r->frame_offset);
                return -1;
            }
            *len = v;
            return 1;
        }
    }
    snprintf(r->err, sizeof(r->err), "length varint longer than %d bytes at byte offset %llu",
             PBFILE_MAX_VARINT, (unsigned long long)r->frame_offset);
    return -1;
}

int pbfile_read(struct pbfile_reader *r, struct sbuf *msg)
{
    uint64_t len = 0;
    size_t got;
    char *dst;
    int rc;

    r->err[0] = '\0';
    r->frame_offset = r->offset;
    rc = read_length(r, &len);
    if (rc <= 0)
        return rc;
    sbuf_reset(msg);
    dst = sbuf_reserve(msg, (size_t)len);
    if (dst == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory for %llu bytes at byte offset %llu",
                 (unsigned long long)len, (unsigned long long)r->frame_offset);
        return -1;
    }
    got = fread(dst, 1, (size_t)len, r->fp);
    r->offset += got;
    if (got < len) {
        if (ferror(r->fp))
            return read_error(r);
        r->truncated = 1;
        snprintf(r->err, sizeof(r->err), "truncated event (%zu of %llu bytes) at byte offset %llu",
                 got, (unsigned long long)len, (unsigned long long)r->frame_offset);
        return -1;
    }
    msg->len = (size_t)len;
    dst[len] = '\0';
    return 1;
}
