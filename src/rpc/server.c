/*
 * server.c - the gRPC server: listen, accept, handshake, dispatch calls.
 *
 * A request is checked in the order PROTOCOL-HTTP2 gives: an HTTP method
 * other than POST gets HTTP 405, a content-type other than
 * application/grpc[+...] HTTP 415; then, as gRPC statuses in a
 * trailers-only response: an unsupported grpc-encoding (UNIMPLEMENTED), a
 * malformed grpc-timeout (INTERNAL) and an unknown path (UNIMPLEMENTED).
 * TLS is 1.2 or later with ALPN h2 and a client certificate from our CA;
 * a connection that fails any of that is closed before HTTP/2 starts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "log.h"
#include "rpc_int.h"

#define SRV_STREAMS       100
#define SRV_KEEPALIVE_MS  (2u * 3600 * 1000)
#define SRV_KA_TIMEOUT_MS 20000
#define SRV_MIN_PING_MS   5000
#define SRV_PING_STRIKES  2
#define SRV_NOTICE_MS     1000 /* shutdown notice -> final GOAWAY */
/* HTTP/2 flow control windows. At full rate (~400 MB/s of events) 1 MiB
 * was under 3 ms of data: a publisher stalled whenever the loop took
 * longer than that. They cost no memory here: DATA is consumed as it
 * arrives, and a message is bounded by max_message. */
#define SRV_STREAM_WINDOW (8 << 20)
#define SRV_CONN_WINDOW   (64 << 20)

struct rpc_server {
    struct event_base *base;
    struct evconnlistener *lis;
    SSL_CTX *ssl;
    struct rpc_server_cfg cfg;
    const struct rpc_method *methods;
    int nmethods;
    nghttp2_session_callbacks *cbs;
    struct rpc_conn *conns;
    int nconns;
    int port;
    int shutting_down;
    struct event *goaway_timer, *grace_timer;
};

/* ------------------------------------------------------------ requests */

static void respond_http(struct rpc_call *c, const char *status)
{
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE}};

    c->cbs = NULL; /* never opened: no callbacks */
    c->send_closed = 1;
    nghttp2_submit_response(c->conn->h2, c->id, nv, 1, NULL);
}

static void trailers_only(struct rpc_call *c, int code, const char *message)
{
    char num[12], msg[RPC_STATUS_MAX * 3];
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-status", (uint8_t *)num, 11, 0, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, 0, NGHTTP2_NV_FLAG_NONE},
    };

    nv[2].valuelen = (size_t)snprintf(num, sizeof(num), "%d", code);
    nv[3].valuelen = rpc_message_encode(message ? message : "", msg, sizeof(msg));
    c->cbs = NULL;
    c->send_closed = 1;
    nghttp2_submit_response(c->conn->h2, c->id, nv, nv[3].valuelen ? 4 : 3, NULL);
}

static const struct rpc_method *find_method(struct rpc_server *s, const char *path)
{
    int i;

    for (i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return NULL;
}

static void dispatch(struct rpc_call *c)
{
    struct rpc_server *s = c->conn->srv;
    const struct rpc_method *m;
    nghttp2_data_provider dp;
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-accept-encoding", (uint8_t *)"identity", 20, 8, NGHTTP2_NV_FLAG_NONE},
    };
    char why[RPC_STATUS_MAX + RPC_PATH_MAX];
    int rc;

    if (!c->method_post)
        return respond_http(c, "405");
    if (!c->content_type_ok)
        return respond_http(c, "415");
    if (c->bad_encoding)
        return trailers_only(c, RPC_UNIMPLEMENTED, "only identity grpc-encoding is supported");
    if (c->timeout_ms == -2)
        return trailers_only(c, RPC_INTERNAL, "malformed grpc-timeout");
    m = find_method(s, c->path);
    if (m == NULL) {
        snprintf(why, sizeof(why), "unknown method %s", c->path);
        return trailers_only(c, RPC_UNIMPLEMENTED, why);
    }
    c->cbs = &m->cbs;
    c->arg = m->arg;
    rc = c->cbs->on_open ? c->cbs->on_open(c, c->arg) : RPC_OK;
    if (rc != RPC_OK)
        return trailers_only(c, rc, c->message);
    c->opened = 1;
    if (c->finish_pending) /* on_open accepted it and already ended it */
        c->send_closed = 1;
    if (c->timeout_ms >= 0)
        rpc_call_arm_deadline(c, c->timeout_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)c->timeout_ms);
    dp.source.ptr = c;
    dp.read_callback = rpc_data_read;
    nghttp2_submit_response(c->conn->h2, c->id, nv, 3, &dp);
}

int rpc_server_begin_headers(struct rpc_conn *conn, const nghttp2_frame *frame)
{
    struct rpc_call *c = rpc_call_new(conn, frame->hd.stream_id, conn->max_message);

    if (c == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(conn->h2, frame->hd.stream_id, c);
    return 0;
}

/* The client is done sending on c. */
static void half_close(struct rpc_call *c)
{
    int was = c->remote_closed;

    c->remote_closed = 1;
    if (was || !c->opened || c->cancelled)
        return;
    if (rpc_deframer_partial(&c->in)) {
        rpc_call_finish(c, RPC_INTERNAL, "stream ended inside a message");
        return;
    }
    if (c->cbs->on_half_close)
        c->cbs->on_half_close(c, c->arg);
}

/* A client PING: answered by nghttp2; here only counted against the policy. */
static void ping_policy(struct rpc_conn *conn)
{
    struct rpc_server *s = conn->srv;
    uint64_t now = rpc_now_ms();

    if (conn->last_ping_ms && now - conn->last_ping_ms < s->cfg.min_ping_ms &&
        ++conn->ping_strikes > s->cfg.max_ping_strikes && !conn->calm) {
        /* GOAWAY(ENHANCE_YOUR_CALM) once; nghttp2 closes the connection once it is out */
        static const char debug[] = "too_many_pings"; /* what gRPC servers say */

        conn->calm = 1;
        conn->goaway = 1;
        nghttp2_submit_goaway(conn->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(conn->h2),
                              NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)debug, sizeof(debug) - 1);
        log_warn("rpc: %s: too many pings: GOAWAY and closing", conn->peer);
    }
    conn->last_ping_ms = now;
}

int rpc_server_frame(struct rpc_conn *conn, const nghttp2_frame *frame)
{
    struct rpc_call *c = frame->hd.stream_id > 0
                             ? nghttp2_session_get_stream_user_data(conn->h2, frame->hd.stream_id)
                             : NULL;

    if (!conn->spoke) { /* the preface and SETTINGS came: no more deadline */
        conn->spoke = 1;
        bufferevent_set_timeouts(conn->bev, NULL, NULL);
    }
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (c && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            conn->ping_strikes = 0;
            dispatch(c);
        }
        break;
    case NGHTTP2_DATA:
        conn->ping_strikes = 0;
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            conn->ping_sent_ms = 0;
        else
            ping_policy(conn);
        break;
    default:
        break;
    }
    if (c && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
        half_close(c);
    return 0;
}

int rpc_server_stream_close(struct rpc_call *c, uint32_t error_code)
{
    int code = c->status;
    const char *msg = c->message;

    if (!c->cancelled && !c->send_closed) {
        code = error_code == NGHTTP2_CANCEL ? RPC_CANCELLED : rpc_code_from_h2(error_code);
        msg = error_code == NGHTTP2_CANCEL ? "cancelled by the client" : "stream reset";
    }
    rpc_call_end(c, code, msg);
    return 0;
}

void rpc_call_finish(struct rpc_call *c, int code, const char *message)
{
    if (c->send_closed || c->cancelled)
        return;
    c->status = code;
    snprintf(c->message, sizeof(c->message), "%s", message ? message : "");
    if (!c->opened || c->conn->srv == NULL) {
        c->finish_pending = 1; /* in on_open: dispatch sends the status */
        return;
    }
    c->send_closed = 1;
    if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->h2, c->id);
    }
    rpc_conn_schedule(c->conn);
}

/* --------------------------------------------------------- connections */

static void keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_conn *c = arg;
    struct rpc_server *s = c->srv;
    uint64_t now = rpc_now_ms();

    (void)fd;
    (void)what;
    if (c->ping_sent_ms && now - c->ping_sent_ms >= s->cfg.keepalive_timeout_ms) {
        rpc_conn_fail(c, "%s: no answer to keepalive PING", c->peer);
    } else if (!c->ping_sent_ms && now - c->ping_last_ms >= s->cfg.keepalive_ms) {
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
        c->ping_sent_ms = c->ping_last_ms = now;
    }
    rpc_conn_pump(c);
}

static int start_http2(struct rpc_conn *c)
{
    struct rpc_server *s = c->srv;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SRV_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, RPC_HEADER_BYTES},
    };

    /* the timer checks every keepalive_timeout; it pings every keepalive_ms */
    if (rpc_conn_start(c, s->cbs, 1, iv, sizeof(iv) / sizeof(iv[0]), SRV_CONN_WINDOW,
                       s->cfg.keepalive_timeout_ms, keepalive) < 0)
        return -1;
    c->ping_sent_ms = 0;
    c->ping_last_ms = rpc_now_ms();
    /* the client's preface must come within the handshake time too (cleared
     * at its first frame, rpc_server_frame): a connection that never speaks
     * HTTP/2 does not stay open */
    {
        struct timeval hs = {RPC_HANDSHAKE_MS / 1000, 0};

        bufferevent_set_timeouts(c->bev, &hs, NULL);
    }
    if (s->shutting_down) {
        nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        c->goaway = 1;
    }
    return 0;
}

static void tls_failure(struct rpc_conn *c, short what)
{
    char buf[RPC_ERR_MAX];

    if (rpc_tls_bev_error(c->bev, buf, sizeof(buf))) {
        rpc_conn_fail(c, "%s: %s", c->peer, buf);
    } else if (what & BEV_EVENT_TIMEOUT) {
        rpc_conn_fail(c, "%s: timed out", c->peer);
    } else if (what & BEV_EVENT_EOF) {
        rpc_conn_fail(c, "%s: closed the connection", c->peer);
    } else {
        rpc_conn_fail(c, "%s: %s", c->peer, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        if (c->ssl && !rpc_conn_alpn_ok(c)) {
            rpc_conn_fail(c, "%s: TLS without ALPN h2", c->peer);
        } else {
            rpc_conn_identify(c, bufferevent_getfd(bev));
            if (c->ssl && !c->authenticated)
                rpc_conn_fail(c, "%s: no verified client certificate", c->peer);
            else if (start_http2(c) < 0)
                rpc_conn_fail(c, "%s: cannot start HTTP/2", c->peer);
        }
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        tls_failure(c, what);
    }
    if (c->dead && c->why[0] && strcmp(c->why, "connection finished") != 0)
        log_info("rpc: %s", c->why);
    if (c->h2 == NULL && c->dead) {
        /* before HTTP/2: nothing for the pump to flush */
        bufferevent_free(c->bev);
        c->bev = NULL;
        rpc_server_conn_gone(c);
        return;
    }
    if (c->h2)
        rpc_conn_pump(c);
}

void rpc_server_conn_gone(struct rpc_conn *c)
{
    struct rpc_server *s = c->srv;

    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

void rpc_server_adopt(struct rpc_server *s, int fd)
{
    struct rpc_conn *c = calloc(1, sizeof(*c));
    struct timeval hs = {RPC_HANDSHAKE_MS / 1000, 0};

    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    rpc_socket_nodelay(fd);
    c->base = s->base;
    c->srv = s;
    c->max_buffer = s->cfg.max_conn_buffer;
    c->max_message = s->cfg.max_message;
    rpc_conn_identify(c, fd); /* the address, until a certificate says more */
    if (s->ssl) {
        c->ssl = SSL_new(s->ssl);
        c->bev = c->ssl ? bufferevent_openssl_socket_new(
                              s->base, fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)
                        : NULL;
        if (c->bev == NULL && c->ssl)
            SSL_free(c->ssl);
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    bufferevent_setcb(c->bev, rpc_conn_on_read, rpc_conn_on_write, on_event, c);
    rpc_bev_tune(c->bev);
    bufferevent_set_timeouts(c->bev, &hs, &hs);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!s->ssl) {
        if (start_http2(c) < 0)
            rpc_conn_fail(c, "cannot start HTTP/2"); /* the pump frees it all */
        rpc_conn_pump(c);
    }
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lis;
    (void)sa;
    (void)salen;
    rpc_server_adopt(arg, fd);
}

static void on_listen_error(struct evconnlistener *lis, void *arg)
{
    (void)lis;
    (void)arg;
    log_warn("rpc: accept: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static int bind_addr(struct rpc_server *s, const char *addr, char err[RPC_ERR_MAX])
{
    char host[256], port[16];
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    int rc;

    if (rpc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, RPC_ERR_MAX, "%s: expected HOST:PORT, [V6]:PORT or :PORT", addr);
        return -1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    rc = evutil_getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, RPC_ERR_MAX, "%s: %s", addr, evutil_gai_strerror(rc));
        return -1;
    }
    s->lis = evconnlistener_new_bind(
        s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        128, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (s->lis == NULL) {
        snprintf(err, RPC_ERR_MAX, "listen on %s: %s", addr, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(s->lis, on_listen_error);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&ss, &sl) == 0)
            s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

struct rpc_server *rpc_server_new(struct event_base *base, const char *addr,
                                  const struct rpc_server_cfg *cfg,
                                  const struct rpc_method *methods, int nmethods,
                                  char err[RPC_ERR_MAX])
{
    struct rpc_server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    s->base = base;
    s->cfg = *cfg;
    if (!s->cfg.max_streams)
        s->cfg.max_streams = SRV_STREAMS;
    if (!s->cfg.keepalive_ms)
        s->cfg.keepalive_ms = SRV_KEEPALIVE_MS;
    if (!s->cfg.keepalive_timeout_ms)
        s->cfg.keepalive_timeout_ms = SRV_KA_TIMEOUT_MS;
    if (!s->cfg.min_ping_ms)
        s->cfg.min_ping_ms = SRV_MIN_PING_MS;
    if (!s->cfg.max_ping_strikes)
        s->cfg.max_ping_strikes = SRV_PING_STRIKES;
    if (!s->cfg.max_conn_buffer)
        s->cfg.max_conn_buffer = RPC_CONN_BUFFER;
    if (!s->cfg.max_message)
        s->cfg.max_message = RPC_MESSAGE_MAX;
    s->methods = methods;
    s->nmethods = nmethods;
    if (!cfg->tls.cleartext && (s->ssl = rpc_tls_ctx(&cfg->tls, 1, err)) == NULL)
        goto fail;
    if (nghttp2_session_callbacks_new(&s->cbs) != 0) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        goto fail;
    }
    rpc_conn_set_callbacks(s->cbs);
    if (bind_addr(s, addr, err) < 0)
        goto fail;
    return s;
fail:
    rpc_server_free(s);
    return NULL;
}

int rpc_server_port(const struct rpc_server *s)
{
    return s->port;
}

int rpc_server_connections(const struct rpc_server *s)
{
    return s->nconns;
}

static void final_goaway(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_server *s = arg;
    struct rpc_conn *c, *next;

    (void)fd;
    (void)what;
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (c->h2) {
            nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR,
                                  NULL, 0);
            c->goaway = 1;
            rpc_conn_pump(c);
        }
    }
}

static void grace_over(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_server *s = arg;
    struct rpc_conn *c, *next;

    (void)fd;
    (void)what;
    for (c = s->conns; c; c = next) {
        next = c->next;
        rpc_conn_fail(c, "server shut down");
        if (c->h2)
            rpc_conn_pump(c);
    }
}

void rpc_server_shutdown(struct rpc_server *s, uint32_t grace_ms)
{
    struct timeval notice = {0, (SRV_NOTICE_MS < grace_ms ? SRV_NOTICE_MS : grace_ms) * 1000};
    struct timeval grace = {(time_t)(grace_ms / 1000), (suseconds_t)(grace_ms % 1000) * 1000};
    struct rpc_conn *c, *next;

    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    if (s->lis)
        evconnlistener_disable(s->lis);
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (c->h2) {
            nghttp2_submit_shutdown_notice(c->h2);
            rpc_conn_pump(c);
        }
    }
    s->goaway_timer = evtimer_new(s->base, final_goaway, s);
    s->grace_timer = evtimer_new(s->base, grace_over, s);
    if (s->goaway_timer)
        evtimer_add(s->goaway_timer, &notice);
    if (s->grace_timer)
        evtimer_add(s->grace_timer, &grace);
}

void rpc_server_free(struct rpc_server *s)
{
    if (s == NULL)
        return;
    if (s->lis)
        evconnlistener_free(s->lis);
    s->lis = NULL;
    while (s->conns) {
        struct rpc_conn *c = s->conns;

        rpc_conn_fail(c, "server closed");
        if (c->h2) {
            rpc_conn_pump(c);
        } else {
            bufferevent_free(c->bev);
            rpc_server_conn_gone(c);
        }
    }
    if (s->goaway_timer)
        event_free(s->goaway_timer);
    if (s->grace_timer)
        event_free(s->grace_timer);
    if (s->cbs)
        nghttp2_session_callbacks_del(s->cbs);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    free(s);
}
