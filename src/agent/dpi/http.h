/*
 * http.h - HTTP/1.x: one Http event per request, with its response.
 *
 * Every TCP segment that starts an HTTP/1.x message (a request line, or a
 * status line) is parsed; several messages in one segment are followed as
 * long as each one's body is there whole (Content-Length). Requests wait in
 * a small per-worker table until a response comes on the same connection,
 * matched in order as HTTP/1.1 requires of pipelined requests; a request
 * still waiting when its flow ends is reported unanswered.
 *
 * Only what a segment holds is read: a header block split across segments
 * gives the fields of its first part. There is no reassembly, on purpose:
 * it would cost every TCP flow memory for the few bytes the event needs.
 * A body announced by Content-Length is skipped by sequence number, so a
 * body segment that happens to start like a message is not taken for one.
 */
#ifndef SONDE_HTTP_H
#define SONDE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "decode/decode.h"
#include "events/emit.h"
#include "flow/flow.h"

#define HTTP_BODIES         1024 /* bodies being skipped, per worker; power of two */
#define HTTP_BODY_TRACK_MAX (1u << 30)
#define HTTP_PENDING        1024 /* requests waiting for a response, per worker; power of two */
#define HTTP_PROBE          8    /* slots one flow's requests may use from its home slot */
#define HTTP_METHOD_MAX     24
#define HTTP_URI_MAX        512
#define HTTP_FIELD_MAX      256
#define HTTP_VERSION_MAX    12
#define HTTP_MAX_MESSAGES   16 /* messages read from one segment */

/* One message's start line and the header fields the events carry. */
struct http_msg {
    uint8_t is_request;
    uint8_t has_length;
    uint16_t status;
    uint64_t content_length;
    size_t header_len; /* through the blank line ending the header; 0 if not in the data */
    char method[HTTP_METHOD_MAX], version[HTTP_VERSION_MAX];
    char uri[HTTP_URI_MAX];
    char host[HTTP_FIELD_MAX], user_agent[HTTP_FIELD_MAX], referer[HTTP_FIELD_MAX];
    char content_type[HTTP_FIELD_MAX], server[HTTP_FIELD_MAX], reason[HTTP_FIELD_MAX];
};

/*
 * Parse the message starting at data[0 .. len). Returns 1 when it starts
 * with a well-formed HTTP/1.x request or status line, else 0.
 */
int http_parse(const uint8_t *data, size_t len, struct http_msg *m);

struct http_tracker;

struct http_tracker *http_tracker_new(struct ev_sink *s);
void http_tracker_free(struct http_tracker *t);
/* A TCP segment of flow f with payload, sent from key side `side`. */
void http_packet(struct http_tracker *t, const struct flow *f, const struct pkt *p, int side);
/* Flow f ends: report its requests still waiting. */
void http_flow_end(struct http_tracker *t, const struct flow *f);

#endif
