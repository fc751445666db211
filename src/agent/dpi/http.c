/*
 * http.c - HTTP/1.x transactions; see http.h.
 *
 * The parser reads a start line and header lines, each ended by CRLF (a
 * bare LF is accepted, as servers do), and stops at the blank line or at
 * the end of the data. Values are copied cut to their field's size. It
 * never reads past len: segments come straight off the wire.
 */
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "events/flow_events.h"
#include "http.h"

#define HTTP_VERSION_PREFIX  "HTTP/1."
#define HTTP_STATUS_LINE_MIN 12 /* "HTTP/1.1 200" */

/* A request waiting for its response. f and first_us only identify the
 * flow; they are never followed. */
struct http_req {
    const struct flow *f;
    uint64_t first_us, ts_us, order;
    uint8_t used, client_side;
    struct flow_key key;
    char digest[EV_DIGEST_HEXLEN];
    struct http_msg msg;
};

/* A body still arriving on one side of a flow: its segments, before
 * end_seq, are body whatever their first bytes look like. */
struct http_body {
    const struct flow *f;
    uint64_t first_us;
    uint32_t end_seq;
    uint8_t used, side;
};

struct http_tracker {
    struct ev_sink *sink;
    uint64_t order; /* requests seen: their order on a connection */
    struct http_req r[HTTP_PENDING];
    struct http_body b[HTTP_BODIES];
    struct http_msg scratch;
};

struct http_tracker *http_tracker_new(struct ev_sink *s)
{
    struct http_tracker *t = calloc(1, sizeof(*t));

    if (t)
        t->sink = s;
    return t;
}

void http_tracker_free(struct http_tracker *t)
{
    free(t);
}

/* ---- parsing ---- */

/* The line starting at p: its length without the line end, and where the
 * next one starts. Returns 0 when no line end is in the data. */
static int next_line(const uint8_t *p, const uint8_t *end, size_t *n, const uint8_t **next)
{
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));

    if (lf == NULL)
        return 0;
    *n = (size_t)(lf - p);
    if (*n && p[*n - 1] == '\r')
        (*n)--;
    *next = lf + 1;
    return 1;
}

static void copy(char *dst, size_t size, const uint8_t *src, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int is_tchar(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* "HTTP/1.x" at p[0 .. n). */
static int is_version(const uint8_t *p, size_t n)
{
    return n == sizeof(HTTP_VERSION_PREFIX) &&
           memcmp(p, HTTP_VERSION_PREFIX, sizeof(HTTP_VERSION_PREFIX) - 1) == 0 &&
           p[n - 1] >= '0' && p[n - 1] <= '9';
}

/* METHOD SP request-target SP HTTP/1.x */
static int request_line(const uint8_t *p, size_t n, struct http_msg *m)
{
    size_t i = 0, u;

    while (i < n && i < HTTP_METHOD_MAX - 1 && is_tchar(p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return 0;
    copy(m->method, sizeof(m->method), p, i);
    u = ++i;
    while (i < n && p[i] != ' ')
        i++;
    if (i == u || i >= n || !is_version(p + i + 1, n - i - 1))
        return 0;
    copy(m->uri, sizeof(m->uri), p + u, i - u);
    copy(m->version, sizeof(m->version), p + i + 1, n - i - 1);
    m->is_request = 1;
    return 1;
}

/* HTTP/1.x SP 3DIGIT [SP reason] */
static int status_line(const uint8_t *p, size_t n, struct http_msg *m)
{
    size_t v = sizeof(HTTP_VERSION_PREFIX);

    if (n < HTTP_STATUS_LINE_MIN || !is_version(p, v) || p[v] != ' ')
        return 0;
    if (p[v + 1] < '1' || p[v + 1] > '5' || p[v + 2] < '0' || p[v + 2] > '9' || p[v + 3] < '0' ||
        p[v + 3] > '9' || (n > v + 4 && p[v + 4] != ' '))
        return 0;
    copy(m->version, sizeof(m->version), p, v);
    m->status = (uint16_t)((p[v + 1] - '0') * 100 + (p[v + 2] - '0') * 10 + (p[v + 3] - '0'));
    if (n > v + 5)
        copy(m->reason, sizeof(m->reason), p + v + 5, n - v - 5);
    return 1;
}

static int name_is(const uint8_t *p, size_t n, const char *name)
{
    size_t i;

    if (n != strlen(name))
        return 0;
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];

        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)name[i])
            return 0;
    }
    return 1;
}

static void content_length(struct http_msg *m, const uint8_t *v, size_t n)
{
    uint64_t x = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return; /* not a number: as if absent */
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (n) {
        m->content_length = x;
        m->has_length = 1;
    }
}

/* One "Name: value" line; fields not carried by the events are skipped. */
static void header_line(struct http_msg *m, const uint8_t *p, size_t n)
{
    const uint8_t *colon = memchr(p, ':', n), *v, *end = p + n;
    size_t nlen;

    if (colon == NULL)
        return;
    nlen = (size_t)(colon - p);
    for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    n = (size_t)(end - v);
    if (name_is(p, nlen, "host"))
        copy(m->host, sizeof(m->host), v, n);
    else if (name_is(p, nlen, "user-agent"))
        copy(m->user_agent, sizeof(m->user_agent), v, n);
    else if (name_is(p, nlen, "referer"))
        copy(m->referer, sizeof(m->referer), v, n);
    else if (name_is(p, nlen, "content-type"))
        copy(m->content_type, sizeof(m->content_type), v, n);
    else if (name_is(p, nlen, "server"))
        copy(m->server, sizeof(m->server), v, n);
    else if (name_is(p, nlen, "content-length"))
        content_length(m, v, n);
}

int http_parse(const uint8_t *data, size_t len, struct http_msg *m)
{
    const uint8_t *p = data, *end = data + len, *next;
    size_t n;

    memset(m, 0, sizeof(*m));
    if (len == 0 || !next_line(p, end, &n, &next))
        return 0;
    if (!(p[0] == 'H' && status_line(p, n, m)) && !request_line(p, n, m))
        return 0;
    for (p = next; p < end && next_line(p, end, &n, &next); p = next) {
        if (n == 0) {
            m->header_len = (size_t)(next - data);
            break;
        }
        header_line(m, p, n);
    }
    return 1;
}

/* ---- transactions ---- */

static size_t home_of(const struct flow *f)
{
    return (size_t)hash_mix64((uint64_t)(uintptr_t)f ^ f->first_us * 0x9e3779b97f4a7c15ULL) &
           (HTTP_PENDING - 1);
}

static int is_req_of(const struct http_req *r, const struct flow *f)
{
    return r->used && r->f == f && r->first_us == f->first_us;
}

static void emit(struct http_tracker *t, const struct http_req *q, const struct http_msg *resp,
                 uint64_t resp_ts, const struct flow_key *key, int client_side, const char *digest)
{
    Sonde__V1__Http m = SONDE__V1__HTTP__INIT;
    char cip[EV_IP_STRLEN], sip[EV_IP_STRLEN];

    if (!ev_enabled(t->sink, EV_HTTP))
        return;
    EV_STAMP(t->sink, m, (resp ? resp_ts : q->ts_us) / 1000);
    m.interface = (char *)ev_iface_name(t->sink, key->source);
    m.digest = (char *)digest;
    ev_fmt_ip(cip, key->ip_version, key->addr[client_side]);
    ev_fmt_ip(sip, key->ip_version, key->addr[!client_side]);
    m.client_ip = cip;
    m.client_port = key->port[client_side];
    m.server_ip = sip;
    m.server_port = key->port[!client_side];
    if (q) {
        m.method = (char *)q->msg.method;
        m.host = (char *)q->msg.host;
        m.uri = (char *)q->msg.uri;
        m.version = (char *)q->msg.version;
        m.user_agent = (char *)q->msg.user_agent;
        m.referer = (char *)q->msg.referer;
        m.request_content_length = q->msg.content_length;
    }
    if (resp) {
        m.answered = 1;
        if (q == NULL)
            m.version = (char *)resp->version;
        m.status_code = resp->status;
        m.reason = (char *)resp->reason;
        m.content_type = (char *)resp->content_type;
        m.content_length = resp->content_length;
        m.server = (char *)resp->server;
        if (q && resp_ts >= q->ts_us)
            m.response_time_us = resp_ts - q->ts_us;
    }
    ev_emit(t->sink, EV_HTTP, &m.base);
}

/* The oldest waiting request of f, or NULL. */
static struct http_req *oldest_of(struct http_tracker *t, const struct flow *f)
{
    struct http_req *best = NULL;
    size_t h = home_of(f), i;

    for (i = 0; i < HTTP_PROBE; i++) {
        struct http_req *r = &t->r[(h + i) & (HTTP_PENDING - 1)];

        if (is_req_of(r, f) && (best == NULL || r->order < best->order))
            best = r;
    }
    return best;
}

static void report_unanswered(struct http_tracker *t, struct http_req *r)
{
    emit(t, r, NULL, 0, &r->key, r->client_side, r->digest);
    r->used = 0;
}

/* A slot for a new request of f: a free one near its home, or the oldest
 * there, reported unanswered to make room. */
static struct http_req *slot_for(struct http_tracker *t, const struct flow *f)
{
    struct http_req *old = NULL;
    size_t h = home_of(f), i;

    for (i = 0; i < HTTP_PROBE; i++) {
        struct http_req *r = &t->r[(h + i) & (HTTP_PENDING - 1)];

        if (!r->used)
            return r;
        if (old == NULL || r->order < old->order)
            old = r;
    }
    report_unanswered(t, old);
    return old;
}

static void request(struct http_tracker *t, const struct flow *f, const struct pkt *p, int side,
                    const struct http_msg *m)
{
    struct http_req *r = slot_for(t, f);

    r->used = 1;
    r->f = f;
    r->first_us = f->first_us;
    r->ts_us = p->ts_us;
    r->order = ++t->order;
    r->client_side = (uint8_t)side;
    r->key = f->key;
    ev_flow_digest(t->sink, f, r->digest);
    r->msg = *m;
}

/* Returns 1 when the response has no body whatever its header says: to a
 * HEAD request, or 1xx, 204, 304 (RFC 9112, 6.3). */
static int response(struct http_tracker *t, const struct flow *f, const struct pkt *p, int side,
                    const struct http_msg *m)
{
    struct http_req *r;
    char digest[EV_DIGEST_HEXLEN];
    int bodiless = m->status < 200 || m->status == 204 || m->status == 304;

    if (m->status < 200 && m->status != 101)
        return 1; /* interim (100 Continue): the final response follows */
    r = oldest_of(t, f);
    if (r) {
        bodiless |= strcmp(r->msg.method, "HEAD") == 0;
        emit(t, r, m, p->ts_us, &r->key, r->client_side, r->digest);
        r->used = 0;
        return bodiless;
    }
    ev_flow_digest(t->sink, f, digest); /* the request was not seen */
    emit(t, NULL, m, p->ts_us, &f->key, !side, digest);
    return bodiless;
}

static struct http_body *body_of(struct http_tracker *t, const struct flow *f, int side)
{
    return &t->b[(home_of(f) ^ (size_t)side) & (HTTP_BODIES - 1)];
}

/* Whether this segment lies inside a body announced earlier. */
static int in_body(struct http_tracker *t, const struct flow *f, const struct pkt *p, int side)
{
    struct http_body *b = body_of(t, f, side);

    if (!b->used || b->f != f || b->first_us != f->first_us || b->side != side)
        return 0;
    if ((int32_t)(p->tcp_seq - b->end_seq) < 0)
        return 1;
    b->used = 0; /* past it */
    return 0;
}

/* A body of `len` bytes starts `at` bytes into this segment's payload and
 * runs past it: remember where it ends. */
static void body_starts(struct http_tracker *t, const struct flow *f, const struct pkt *p, int side,
                        size_t at, uint64_t len)
{
    struct http_body *b = body_of(t, f, side);

    if (len > HTTP_BODY_TRACK_MAX)
        return; /* beyond what sequence numbers can tell apart */
    b->used = 1;
    b->f = f;
    b->first_us = f->first_us;
    b->side = (uint8_t)side;
    b->end_seq = p->tcp_seq + (uint32_t)(at + len);
}

void http_packet(struct http_tracker *t, const struct flow *f, const struct pkt *p, int side)
{
    const uint8_t *start = p->data + p->payload_off, *data = start;
    size_t len = pkt_payload_captured(p), i;

    if (p->ip_proto != 6)
        return;
    /* cheap refusal first: every TCP segment comes here */
    if (len == 0 || data[0] < 'A' || data[0] > 'Z' || in_body(t, f, p, side))
        return;
    for (i = 0; i < HTTP_MAX_MESSAGES && http_parse(data, len, &t->scratch); i++) {
        const struct http_msg *m = &t->scratch;
        uint64_t body = m->content_length;
        int known = 1; /* the body's length: a request without Content-Length has none */

        if (m->is_request) {
            request(t, f, p, side, m);
        } else if (response(t, f, p, side, m)) {
            body = 0;
        } else {
            known = m->has_length; /* else it runs to a chunk end or the connection's end */
        }
        /* a next message in this segment only after a whole body */
        if (m->header_len == 0 || !known)
            break;
        if (body > len - m->header_len) {
            body_starts(t, f, p, side, (size_t)(data - start) + m->header_len, body);
            break;
        }
        data += m->header_len + body;
        len -= m->header_len + body;
    }
}

void http_flow_end(struct http_tracker *t, const struct flow *f)
{
    struct http_req *r;

    while ((r = oldest_of(t, f)) != NULL)
        report_unanswered(t, r);
}
