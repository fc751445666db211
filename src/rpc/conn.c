/*
 * conn.c - one HTTP/2 connection and its calls, for both roles.
 *
 * Bytes come in from the bufferevent (TLS or plain) and go to nghttp2;
 * nghttp2's output goes back to the bufferevent, but only while less than
 * max_buffer bytes wait there: a peer that does not read stops getting
 * more, and once the buffer is full we stop reading from it too, so its
 * connection costs a bounded amount of memory whatever it does.
 *
 * nghttp2 forbids sending (and we forbid freeing) from inside its receive
 * callbacks, so those only set flags; rpc_conn_pump, called at the end of
 * every entry point, does the sending, the writability callbacks and the
 * closing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/x509.h>

#include "log.h"
#include "rpc_int.h"

/*
 * HTTP/2 interleaves small frames (acknowledgements, WINDOW_UPDATE, PING)
 * with large ones; with Nagle's algorithm a small write waits for the
 * peer's delayed ACK, up to 40 ms, and a stream of events stalls on it.
 * Not a TCP socket (tests use socketpairs): nothing to do.
 */
void rpc_socket_nodelay(int fd)
{
    int one = 1;

    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void rpc_bev_tune(struct bufferevent *bev)
{
    bufferevent_set_max_single_read(bev, RPC_IO_CHUNK);
    bufferevent_set_max_single_write(bev, RPC_IO_CHUNK);
}

uint64_t rpc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void rpc_conn_fail(struct rpc_conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->dead)
        return;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->dead = 1;
}

/* ------------------------------------------------------------- calls */

struct rpc_call *rpc_call_new(struct rpc_conn *conn, int32_t id, size_t max_message)
{
    struct rpc_call *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->out = evbuffer_new();
    if (c->out == NULL) {
        free(c);
        return NULL;
    }
    c->conn = conn;
    c->id = id;
    c->timeout_ms = -1;
    rpc_deframer_init(&c->in, max_message);
    c->next = conn->calls;
    if (conn->calls)
        conn->calls->prev = c;
    conn->calls = c;
    conn->ncalls++;
    return c;
}

void rpc_call_end(struct rpc_call *c, int code, const char *message)
{
    struct rpc_conn *conn = c->conn;

    if (c->prev)
        c->prev->next = c->next;
    else
        conn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    conn->ncalls--;
    if (conn->h2 && c->id > 0)
        nghttp2_session_set_stream_user_data(conn->h2, c->id, NULL);
    if (c->cbs && c->cbs->on_close)
        c->cbs->on_close(c, code, message ? message : "", c->arg);
    if (c->deadline)
        event_free(c->deadline);
    evbuffer_free(c->out);
    rpc_deframer_free(&c->in);
    free(c);
}

/* The data provider of every call: framed messages from c->out. */
ssize_t rpc_data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *user)
{
    struct rpc_call *c = src->ptr;
    size_t n = evbuffer_get_length(c->out);

    (void)user;
    if (n > len)
        n = len;
    if (n)
        evbuffer_remove(c->out, buf, n);
    if (evbuffer_get_length(c->out) > 0)
        return (ssize_t)n;
    if (!c->send_closed) {
        if (n)
            return (ssize_t)n;
        c->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (c->conn->srv) { /* the status goes in trailers */
        char code[12], msg[RPC_STATUS_MAX * 3];
        nghttp2_nv nv[2] = {
            {(uint8_t *)"grpc-status", (uint8_t *)code, 11, 0, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, 0, NGHTTP2_NV_FLAG_NONE},
        };

        nv[0].valuelen = (size_t)snprintf(code, sizeof(code), "%d", c->status);
        nv[1].valuelen = rpc_message_encode(c->message, msg, sizeof(msg));
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(s, id, nv, nv[1].valuelen ? 2 : 1) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

static int deliver(void *arg, const uint8_t *msg, size_t len)
{
    struct rpc_call *c = arg;

    if (c->cancelled || (c->send_closed && c->conn->srv))
        return 0; /* already ending: drop what still arrives */
    if (c->cbs && c->cbs->on_message)
        return c->cbs->on_message(c, msg, len, c->arg);
    return 0;
}

/* DATA for c: messages out; a framing error or a refusal ends the call. */
int rpc_call_feed(struct rpc_call *c, const uint8_t *data, size_t len)
{
    int rc = rpc_deframer_feed(&c->in, data, len, deliver, c);

    if (rc == 0)
        return 0;
    if (rc < 0 && c->conn->srv)
        rpc_call_finish(c, c->in.error, c->in.why); /* the client reads why in the trailers */
    else if (rc < 0)
        rpc_call_cancel(c, c->in.error, c->in.why);
    else if (c->conn->srv)
        rpc_call_finish(c, rc, NULL);
    else
        rpc_call_cancel(c, rc, "refused by the client");
    return 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_call *c = arg;
    struct rpc_conn *conn = c->conn;

    (void)fd;
    (void)what;
    rpc_call_cancel(c, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
    rpc_conn_pump(conn);
}

int rpc_call_arm_deadline(struct rpc_call *c, uint32_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    c->deadline = evtimer_new(c->conn->base, on_deadline, c);
    return c->deadline ? evtimer_add(c->deadline, &tv) : -1;
}

int rpc_call_send(struct rpc_call *c, const uint8_t *msg, size_t len)
{
    uint8_t prefix[RPC_PREFIX_LEN];

    if (c->send_closed || c->cancelled || c->conn->dead || len > UINT32_MAX)
        return -1;
    rpc_frame_prefix(prefix, (uint32_t)len);
    if (evbuffer_add(c->out, prefix, sizeof(prefix)) < 0 || evbuffer_add(c->out, msg, len) < 0)
        return -1;
    if (evbuffer_get_length(c->out) >= RPC_SEND_HIGH_MARK)
        c->above_mark = 1;
    if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->h2, c->id);
    }
    rpc_conn_schedule(c->conn);
    return 0;
}

size_t rpc_call_queued(const struct rpc_call *c)
{
    return evbuffer_get_length(c->out);
}

void rpc_call_cancel(struct rpc_call *c, int code, const char *message)
{
    if (c->cancelled)
        return;
    c->cancelled = 1;
    c->status = code;
    snprintf(c->message, sizeof(c->message), "%s", message ? message : "");
    evbuffer_drain(c->out, evbuffer_get_length(c->out));
    nghttp2_submit_rst_stream(c->conn->h2, NGHTTP2_FLAG_NONE, c->id, NGHTTP2_CANCEL);
    rpc_conn_schedule(c->conn);
}

const char *rpc_call_peer(const struct rpc_call *c)
{
    return c->conn->peer;
}

int rpc_call_authenticated(const struct rpc_call *c)
{
    return c->conn->authenticated;
}

const char *rpc_call_path(const struct rpc_call *c)
{
    return c->path;
}

void rpc_call_set_data(struct rpc_call *c, void *data)
{
    c->data = data;
}

void *rpc_call_data(const struct rpc_call *c)
{
    return c->data;
}

/* ------------------------------------------------------------ the pump */

/*
 * The API functions (send, finish, cancel, close_send) only queue, then
 * ask the loop to pump: pumping may close the connection and free its
 * calls, which must never happen under a caller that is walking them.
 */
static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_conn *c = arg;

    (void)fd;
    (void)what;
    c->pump_due = 0;
    rpc_conn_pump(c);
}

/* Once per turn of the loop, however many messages are queued: with
 * libevent's locking on (the agent's threads), event_active takes the
 * base's lock every time. */
void rpc_conn_schedule(struct rpc_conn *c)
{
    if (c->pump_ev && !c->dead && !c->pump_due) {
        c->pump_due = 1;
        event_active(c->pump_ev, 0, 0);
    }
}

/* nghttp2's pending output into the bufferevent, up to max_buffer. */
static int flush_session(struct rpc_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int full;

    while (evbuffer_get_length(out) < c->max_buffer) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);

        if (n < 0) {
            rpc_conn_fail(c, "HTTP/2: %s", nghttp2_strerror((int)n));
            return -1;
        }
        if (n == 0)
            break;
        if (evbuffer_add(out, data, (size_t)n) < 0) {
            rpc_conn_fail(c, "out of memory");
            return -1;
        }
    }
    /* a full output buffer: stop reading until it drains (rpc_conn_on_write);
     * only on a change, as each call takes the base's lock */
    full = evbuffer_get_length(out) >= c->max_buffer;
    if (full != c->read_paused) {
        c->read_paused = full;
        if (full)
            bufferevent_disable(c->bev, EV_READ);
        else
            bufferevent_enable(c->bev, EV_READ);
    }
    return 0;
}

static void conn_free(struct rpc_conn *c)
{
    const char *why = c->why[0] ? c->why : "connection closed";

    while (c->calls)
        rpc_call_end(c->calls, c->calls->cancelled ? c->calls->status : RPC_UNAVAILABLE,
                     c->calls->cancelled ? c->calls->message : why);
    if (c->timer)
        event_free(c->timer);
    if (c->pump_ev)
        event_free(c->pump_ev);
    if (c->h2)
        nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->bev)
        bufferevent_free(c->bev); /* frees the SSL too (BEV_OPT_CLOSE_ON_FREE) */
    c->bev = NULL;
    if (c->srv)
        rpc_server_conn_gone(c);
    else
        rpc_client_conn_gone(c);
}

int rpc_conn_pump(struct rpc_conn *c)
{
    struct rpc_call *k, *next;

    if (c->depth > 0)
        return 0;
    if (!c->dead && c->h2)
        flush_session(c);
    if (!c->dead && c->h2) {
        for (k = c->calls; k; k = next) {
            next = k->next;
            if (k->above_mark && evbuffer_get_length(k->out) < RPC_SEND_HIGH_MARK / 2) {
                k->above_mark = 0;
                if (k->cbs && k->cbs->on_writable) {
                    c->depth++;
                    k->cbs->on_writable(k, k->arg);
                    c->depth--;
                }
            }
        }
        flush_session(c);
    }
    if (!c->dead && c->h2 && (!nghttp2_session_want_read(c->h2) || c->calm) &&
        !nghttp2_session_want_write(c->h2) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        rpc_conn_fail(c, "connection finished");
    if (c->dead) {
        conn_free(c);
        return -1;
    }
    return 0;
}

void rpc_conn_on_read(struct bufferevent *bev, void *arg)
{
    struct rpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    /* the buffer's chunks as they are (no pullup copy); nghttp2 keeps its
     * own state across chunk boundaries */
    while (!c->dead && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t used;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        c->depth++;
        used = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
        c->depth--;
        if (used < 0) {
            rpc_conn_fail(c, "HTTP/2 from %s: %s", c->peer, nghttp2_strerror((int)used));
            break;
        }
        evbuffer_drain(in, (size_t)used);
    }
    rpc_conn_pump(c);
}

void rpc_conn_on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    rpc_conn_pump(arg);
}

/* ------------------------------------------------------- nghttp2 hooks */

static struct rpc_call *stream_call(nghttp2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static int has_prefix(const uint8_t *v, size_t len, const char *p)
{
    size_t n = strlen(p);

    return len >= n && memcmp(v, p, n) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct rpc_conn *conn = user;
    struct rpc_call *c = stream_call(s, frame->hd.stream_id);

    (void)flags;
    if (c == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    c->nheaders++;
    c->header_bytes += namelen + valuelen;
    if (c->nheaders > RPC_HEADERS_MAX || c->header_bytes > RPC_HEADER_BYTES)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
#define IS(n) (namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
    if (conn->srv) {
        if (IS(":method"))
            c->method_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        else if (IS(":path") && valuelen < sizeof(c->path))
            memcpy(c->path, value, valuelen), c->path[valuelen] = '\0';
        else if (IS("content-type"))
            c->content_type_ok = has_prefix(value, valuelen, "application/grpc") &&
                                 (valuelen == 16 || value[16] == '+' || value[16] == ';');
        else if (IS("grpc-timeout"))
            c->timeout_ms = rpc_timeout_parse((const char *)value, valuelen) < 0
                                ? -2
                                : rpc_timeout_parse((const char *)value, valuelen);
        else if (IS("grpc-encoding"))
            c->bad_encoding = !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
    } else {
        if (IS(":status")) {
            c->http_status = 0;
            for (size_t i = 0; i < valuelen && i < 3; i++)
                c->http_status = c->http_status * 10 + (value[i] - '0');
        } else if (IS("content-type")) {
            c->content_type_ok = has_prefix(value, valuelen, "application/grpc");
        } else if (IS("grpc-status")) {
            int v = 0;

            for (size_t i = 0; i < valuelen && i < 4; i++)
                v = value[i] >= '0' && value[i] <= '9' ? v * 10 + (value[i] - '0') : 1000;
            c->have_status = 1;
            c->status = valuelen && v < RPC_CODE__COUNT ? v : RPC_UNKNOWN;
        } else if (IS("grpc-message")) {
            rpc_message_decode((const char *)value, valuelen, c->message, sizeof(c->message));
        }
    }
#undef IS
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct rpc_call *c = stream_call(s, id);

    (void)flags;
    (void)user;
    if (c == NULL || c->cancelled)
        return 0;
    if (c->conn->srv && !c->opened)
        return 0; /* refused at open: its data is not wanted */
    if (!c->conn->srv && !c->content_type_ok) {
        rpc_call_cancel(c, RPC_UNKNOWN, "the response is not application/grpc");
        return 0;
    }
    return rpc_call_feed(c, data, len);
}

int rpc_server_frame(struct rpc_conn *conn, const nghttp2_frame *frame);
int rpc_client_frame(struct rpc_conn *conn, const nghttp2_frame *frame);

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct rpc_conn *conn = user;

    (void)s;
    return conn->srv ? rpc_server_frame(conn, frame) : rpc_client_frame(conn, frame);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
    struct rpc_conn *conn = user;
    struct rpc_call *c = stream_call(s, id);

    if (c == NULL)
        return 0;
    return conn->srv ? rpc_server_stream_close(c, error_code)
                     : rpc_client_stream_close(c, error_code);
}

int rpc_server_begin_headers(struct rpc_conn *conn, const nghttp2_frame *frame);

/*
 * Server, after each frame goes out. Sending DATA or HEADERS clears the
 * client's ping strikes (below). And once our END_STREAM is out, a client
 * still sending is told to stop with RST_STREAM(NO_ERROR), as
 * PROTOCOL-HTTP2 asks, so a refused publisher's stream does not stay half
 * open.
 */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct rpc_conn *conn = user;
    struct rpc_call *c = stream_call(s, frame->hd.stream_id);

    /* as gRPC servers do: a client that PINGs while we send to it is
     * measuring the path (BDP), not flooding */
    if (conn->srv && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS))
        conn->ping_strikes = 0;
    if (conn->srv && c && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !c->remote_closed)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct rpc_conn *conn = user;

    (void)s;
    if (conn->srv && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        return rpc_server_begin_headers(conn, frame);
    return 0;
}

void rpc_conn_set_callbacks(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
}

/* ------------------------------------------------------------ identity */

int rpc_conn_alpn_ok(struct rpc_conn *c)
{
    const unsigned char *p = NULL;
    unsigned len = 0;

    SSL_get0_alpn_selected(c->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

void rpc_conn_identify(struct rpc_conn *c, int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (c->ssl && SSL_get_verify_result(c->ssl) == X509_V_OK) {
        X509 *cert = SSL_get1_peer_certificate(c->ssl);

        if (cert) {
            char cn[RPC_PEER_MAX];

            int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                              sizeof(cn));

            /* a CN that was cut to fit, or holds a NUL, is no identity */
            if (n > 0 && n < (int)sizeof(cn) - 1 && (size_t)n == strlen(cn)) {
                snprintf(c->peer, sizeof(c->peer), "%s", cn);
                c->authenticated = 1;
            }
            X509_free(cert);
            if (c->authenticated)
                return;
        }
    }
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;

            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(c->peer, sizeof(c->peer), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

static int conn_init(struct rpc_conn *c, nghttp2_session_callbacks *cbs, int server)
{
    nghttp2_option *opt;
    int rc;

    if (nghttp2_option_new(&opt) != 0)
        return -1;
    /* gRPC has no server push: no stream may be reserved by the peer */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    rc = server ? nghttp2_session_server_new2(&c->h2, cbs, c, opt)
                : nghttp2_session_client_new2(&c->h2, cbs, c, opt);
    nghttp2_option_del(opt);
    c->pump_ev = event_new(c->base, -1, 0, pump_cb, c);
    return rc == 0 && c->pump_ev ? 0 : -1;
}

int rpc_conn_start(struct rpc_conn *c, nghttp2_session_callbacks *cbs, int server,
                   const nghttp2_settings_entry *iv, size_t niv, int32_t conn_window,
                   uint32_t timer_ms, event_callback_fn timer_cb)
{
    struct timeval tv = {(time_t)(timer_ms / 1000), (suseconds_t)(timer_ms % 1000) * 1000};

    if (conn_init(c, cbs, server) < 0)
        return -1;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, niv);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, conn_window);
    if (timer_ms == 0)
        tv.tv_sec = 1;
    c->timer = event_new(c->base, -1, EV_PERSIST, timer_cb, c);
    return c->timer && event_add(c->timer, &tv) == 0 ? 0 : -1;
}
