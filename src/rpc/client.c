/*
 * client.c - the gRPC client: one connection to one server, many calls.
 *
 * The owner (the agent's push exporter, the collector's pull mode) keeps
 * one rpc_client per server and makes a new one after on_down; backoff is
 * the owner's business. The client checks the server's certificate against
 * our CA and against the name or address it dialled, offers only ALPN h2,
 * and PINGs while calls are open so that a dead path is noticed within
 * keepalive_ms + keepalive_timeout_ms even when nothing is being sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "rpc_int.h"

#define CLI_CONNECT_MS    10000
#define CLI_KEEPALIVE_MS  30000
#define CLI_KA_TIMEOUT_MS 10000
#define CLI_STREAM_WINDOW (1 << 20)
#define CLI_CONN_WINDOW   (16 << 20)
#define CLI_AUTHORITY_MAX 300

struct rpc_client {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    struct rpc_client_cfg cfg;
    struct rpc_client_events ev;
    nghttp2_session_callbacks *cbs;
    struct rpc_conn *conn; /* NULL once down */
    char host[256], port[16];
    char authority[CLI_AUTHORITY_MAX];
    int ready;
    int reported_down;
    struct event *down_ev; /* on_down runs from the loop, not from inside a call */
    char why[RPC_ERR_MAX];
};

int rpc_client_frame(struct rpc_conn *conn, const nghttp2_frame *frame)
{
    struct rpc_client *cl = conn->cli;

    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        conn->ping_sent_ms = 0;
    } else if (frame->hd.type == NGHTTP2_GOAWAY && !conn->goaway) {
        conn->goaway = 1;
        if (cl->ev.on_goaway)
            cl->ev.on_goaway(cl, cl->ev.arg);
    }
    return 0;
}

int rpc_client_stream_close(struct rpc_call *c, uint32_t error_code)
{
    int code;
    const char *msg = c->message;

    if (c->cancelled) {
        code = c->status;
    } else if (c->have_status) {
        code = c->status;
    } else if (c->http_status && c->http_status != 200) {
        code = rpc_code_from_http(c->http_status);
        snprintf(c->message, sizeof(c->message), "HTTP status %d", c->http_status);
    } else if (error_code != NGHTTP2_NO_ERROR) {
        code = rpc_code_from_h2(error_code);
        msg = nghttp2_http2_strerror(error_code);
    } else {
        code = RPC_INTERNAL;
        msg = "stream ended without grpc-status";
    }
    if (code == RPC_OK && rpc_deframer_partial(&c->in)) {
        code = RPC_INTERNAL;
        msg = "stream ended inside a message";
    }
    rpc_call_end(c, code, msg);
    return 0;
}

void rpc_call_close_send(struct rpc_call *c)
{
    if (c->send_closed || c->cancelled)
        return;
    c->send_closed = 1;
    if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->h2, c->id);
    }
    rpc_conn_schedule(c->conn);
}

struct rpc_call *rpc_client_call(struct rpc_client *cl, const char *path, uint32_t timeout_ms,
                                 const struct rpc_call_cbs *cbs, void *arg)
{
    struct rpc_conn *conn = cl->conn;
    char tmo[10];
    nghttp2_nv nv[8];
    nghttp2_data_provider dp;
    struct rpc_call *c;
    int n = 0;
    int32_t id;

    if (!rpc_client_usable(cl) || strlen(path) >= RPC_PATH_MAX)
        return NULL;
    c = rpc_call_new(conn, 0, cl->cfg.max_message);
    if (c == NULL)
        return NULL;
    c->cbs = cbs;
    c->arg = arg;
    snprintf(c->path, sizeof(c->path), "%s", path);
#define NV(n_, v_)                                                                                 \
    nv[n++] = (nghttp2_nv){(uint8_t *)(n_), (uint8_t *)(v_), strlen(n_), strlen(v_),               \
                           NGHTTP2_NV_FLAG_NONE}
    NV(":method", "POST");
    NV(":scheme", conn->ssl ? "https" : "http");
    NV(":path", c->path);
    NV(":authority", cl->authority);
    NV("te", "trailers");
    NV("content-type", "application/grpc");
    NV("user-agent", "sonde/" SONDE_VERSION);
    if (timeout_ms) {
        rpc_timeout_format(timeout_ms, tmo);
        NV("grpc-timeout", tmo);
    }
#undef NV
    dp.source.ptr = c;
    dp.read_callback = rpc_data_read;
    id = nghttp2_submit_request(conn->h2, NULL, nv, (size_t)n, &dp, c);
    if (id < 0) {
        c->cbs = NULL;
        rpc_call_end(c, RPC_UNAVAILABLE, nghttp2_strerror(id));
        return NULL;
    }
    c->id = id;
    if (timeout_ms && rpc_call_arm_deadline(c, timeout_ms) < 0)
        rpc_call_cancel(c, RPC_INTERNAL, "cannot arm the deadline"); /* on_close follows */
    rpc_conn_schedule(conn);
    return c;
}

struct timeval rpc_backoff(unsigned *backoff_ms)
{
    unsigned b = *backoff_ms ? *backoff_ms * 2 : RPC_BACKOFF_MIN_MS, ms;
    struct timeval tv;

    if (b > RPC_BACKOFF_MAX_MS)
        b = RPC_BACKOFF_MAX_MS;
    *backoff_ms = b;
    ms = b - b / 4 + (unsigned)rand() % (b / 2);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return tv;
}

int rpc_client_usable(const struct rpc_client *cl)
{
    return cl->conn && cl->ready && !cl->conn->goaway && !cl->conn->dead;
}

/* ---------------------------------------------------------- connection */

static void report_down(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_client *cl = arg;

    (void)fd;
    (void)what;
    if (cl->reported_down)
        return;
    cl->reported_down = 1;
    if (cl->ev.on_down)
        cl->ev.on_down(cl, cl->why, cl->ev.arg);
}

void rpc_client_conn_gone(struct rpc_conn *c)
{
    struct rpc_client *cl = c->cli;

    snprintf(cl->why, sizeof(cl->why), "%s", c->why[0] ? c->why : "connection closed");
    cl->conn = NULL;
    cl->ready = 0;
    free(c);
    if (cl->down_ev)
        event_active(cl->down_ev, 0, 0);
}

static void keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_conn *c = arg;
    struct rpc_client *cl = c->cli;
    uint64_t now = rpc_now_ms();

    (void)fd;
    (void)what;
    if (c->ping_sent_ms && now - c->ping_sent_ms >= cl->cfg.keepalive_timeout_ms)
        rpc_conn_fail(c, "%s:%s: no answer to keepalive PING", cl->host, cl->port);
    else if (!c->ping_sent_ms && c->ncalls > 0 && c->h2 &&
             now - c->ping_last_ms >= cl->cfg.keepalive_ms) {
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
        c->ping_sent_ms = c->ping_last_ms = now;
    }
    rpc_conn_pump(c);
}

static int start_http2(struct rpc_client *cl)
{
    struct rpc_conn *c = cl->conn;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CLI_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, RPC_HEADER_BYTES},
    };

    /* tick at the shorter period: a dead path shows within keepalive + timeout */
    c->ping_last_ms = rpc_now_ms();
    if (rpc_conn_start(c, cl->cbs, 0, iv, sizeof(iv) / sizeof(iv[0]), CLI_CONN_WINDOW,
                       cl->cfg.keepalive_ms < cl->cfg.keepalive_timeout_ms
                           ? cl->cfg.keepalive_ms
                           : cl->cfg.keepalive_timeout_ms,
                       keepalive) < 0)
        return -1;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    cl->ready = 1;
    return 0;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_conn *c = arg;
    struct rpc_client *cl = c->cli;

    if (what & BEV_EVENT_CONNECTED) {
        if (c->ssl && !rpc_conn_alpn_ok(c))
            rpc_conn_fail(c, "%s:%s: the server did not agree to ALPN h2", cl->host, cl->port);
        else {
            rpc_socket_nodelay(bufferevent_getfd(bev));
            rpc_conn_identify(c, bufferevent_getfd(bev));
            if (start_http2(cl) < 0)
                rpc_conn_fail(c, "%s:%s: cannot start HTTP/2", cl->host, cl->port);
        }
        if (!c->dead) {
            rpc_conn_pump(c);
            if (cl->conn && cl->ready && cl->ev.on_ready)
                cl->ev.on_ready(cl, cl->ev.arg);
            return;
        }
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        int dns = bufferevent_socket_get_dns_error(bev);
        char buf[RPC_ERR_MAX];

        if (rpc_tls_bev_error(bev, buf, sizeof(buf))) {
            rpc_conn_fail(c, "%s:%s: %s", cl->host, cl->port, buf);
        } else if (dns) {
            rpc_conn_fail(c, "%s: %s", cl->host, evutil_gai_strerror(dns));
        } else if (what & BEV_EVENT_TIMEOUT) {
            rpc_conn_fail(c, "%s:%s: timed out", cl->host, cl->port);
        } else if (what & BEV_EVENT_EOF) {
            rpc_conn_fail(c, "%s:%s: connection closed by the server", cl->host, cl->port);
        } else {
            rpc_conn_fail(c, "%s:%s: %s", cl->host, cl->port,
                          evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
    }
    if (c->h2) {
        rpc_conn_pump(c);
    } else if (c->dead) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        rpc_client_conn_gone(c);
    }
}

static int is_ip_literal(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;

    return evutil_inet_pton(AF_INET, host, &a4) == 1 || evutil_inet_pton(AF_INET6, host, &a6) == 1;
}

/* The TLS object for one connection: who we expect at the other end. */
static SSL *new_ssl(struct rpc_client *cl, char err[RPC_ERR_MAX])
{
    SSL *ssl = SSL_new(cl->ssl_ctx);
    int ok;

    if (ssl == NULL) {
        rpc_tls_error("SSL_new", err);
        return NULL;
    }
    if (is_ip_literal(cl->host)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), cl->host) == 1;
    } else {
        ok = SSL_set_tlsext_host_name(ssl, cl->host) == 1 && SSL_set1_host(ssl, cl->host) == 1;
    }
    if (!ok) {
        rpc_tls_error("setting the expected server name", err);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static int dial(struct rpc_client *cl, char err[RPC_ERR_MAX])
{
    struct rpc_conn *c = calloc(1, sizeof(*c));
    struct timeval to = {(time_t)(cl->cfg.connect_timeout_ms / 1000),
                         (suseconds_t)(cl->cfg.connect_timeout_ms % 1000) * 1000};

    if (c == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return -1;
    }
    c->base = cl->base;
    c->cli = cl;
    c->max_buffer = RPC_CONN_BUFFER;
    c->max_message = cl->cfg.max_message;
    snprintf(c->peer, sizeof(c->peer), "%.100s:%.15s", cl->host, cl->port);
    if (cl->ssl_ctx) {
        c->ssl = new_ssl(cl, err);
        if (c->ssl == NULL) {
            free(c);
            return -1;
        }
        c->bev = bufferevent_openssl_socket_new(cl->base, -1, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL)
            SSL_free(c->ssl);
    } else {
        c->bev = bufferevent_socket_new(cl->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        free(c);
        return -1;
    }
    cl->conn = c;
    bufferevent_setcb(c->bev, rpc_conn_on_read, rpc_conn_on_write, on_event, c);
    rpc_bev_tune(c->bev);
    bufferevent_set_timeouts(c->bev, &to, &to);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect_hostname(c->bev, cl->dns, AF_UNSPEC, cl->host, atoi(cl->port)) <
        0) {
        snprintf(err, RPC_ERR_MAX, "%.200s:%.15s: cannot connect", cl->host, cl->port);
        bufferevent_free(c->bev);
        cl->conn = NULL;
        free(c);
        return -1;
    }
    return 0;
}

struct rpc_client *rpc_client_new(struct event_base *base, const struct rpc_client_cfg *cfg,
                                  const struct rpc_client_events *ev, char err[RPC_ERR_MAX])
{
    struct rpc_client *cl = calloc(1, sizeof(*cl));

    if (cl == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    cl->base = base;
    cl->cfg = *cfg;
    if (ev)
        cl->ev = *ev;
    if (!cl->cfg.connect_timeout_ms)
        cl->cfg.connect_timeout_ms = CLI_CONNECT_MS;
    if (!cl->cfg.keepalive_ms)
        cl->cfg.keepalive_ms = CLI_KEEPALIVE_MS;
    if (!cl->cfg.keepalive_timeout_ms)
        cl->cfg.keepalive_timeout_ms = CLI_KA_TIMEOUT_MS;
    if (!cl->cfg.max_message)
        cl->cfg.max_message = RPC_MESSAGE_MAX;
    snprintf(cl->host, sizeof(cl->host), "%s", cfg->host ? cfg->host : "");
    snprintf(cl->port, sizeof(cl->port), "%s", cfg->port ? cfg->port : "");
    snprintf(cl->authority, sizeof(cl->authority), strchr(cl->host, ':') ? "[%s]:%s" : "%s:%s",
             cl->host, cl->port);
    cl->cfg.host = cl->host;
    cl->cfg.port = cl->port;
    cl->down_ev = event_new(base, -1, 0, report_down, cl);
    cl->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (cl->down_ev == NULL || cl->dns == NULL) {
        snprintf(err, RPC_ERR_MAX, "cannot set up the event loop (DNS resolver)");
        goto fail;
    }
    if (!cfg->tls.cleartext && (cl->ssl_ctx = rpc_tls_ctx(&cfg->tls, 0, err)) == NULL)
        goto fail;
    if (nghttp2_session_callbacks_new(&cl->cbs) != 0) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        goto fail;
    }
    rpc_conn_set_callbacks(cl->cbs);
    if (dial(cl, err) < 0)
        goto fail;
    return cl;
fail:
    cl->ev.on_down = NULL;
    rpc_client_free(cl);
    return NULL;
}

void rpc_client_free(struct rpc_client *cl)
{
    if (cl == NULL)
        return;
    cl->ev.on_down = NULL; /* the owner is tearing it down: no callback */
    cl->ev.on_goaway = NULL;
    if (cl->conn) {
        struct rpc_conn *c = cl->conn;

        rpc_conn_fail(c, "client closed");
        if (c->h2) {
            c->depth = 0;
            rpc_conn_pump(c);
        } else {
            bufferevent_free(c->bev);
            c->bev = NULL;
            rpc_client_conn_gone(c);
        }
    }
    if (cl->down_ev)
        event_free(cl->down_ev);
    if (cl->dns)
        evdns_base_free(cl->dns, 0);
    if (cl->cbs)
        nghttp2_session_callbacks_del(cl->cbs);
    if (cl->ssl_ctx)
        SSL_CTX_free(cl->ssl_ctx);
    free(cl);
}
