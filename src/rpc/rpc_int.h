/*
 * rpc_int.h - what server.c, client.c and conn.c share: the connection (one
 * TCP or TLS socket carrying one nghttp2 session) and the call (one stream).
 */
#ifndef SONDE_RPC_INT_H
#define SONDE_RPC_INT_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "log.h"
#include "rpc.h"

#define RPC_PATH_MAX     256
#define RPC_HEADERS_MAX  64           /* header fields in one request or response */
#define RPC_HEADER_BYTES (16 * 1024)  /* and their total size */
#define RPC_HANDSHAKE_MS 10000        /* TLS handshake and HTTP/2 preface */
#define RPC_CONN_BUFFER  (4u << 20)   /* default unsent bytes per connection */
#define RPC_IO_CHUNK     (256 * 1024) /* bytes read or written per wake-up, at most */

struct rpc_call {
    struct rpc_conn *conn;
    int32_t id;
    const struct rpc_call_cbs *cbs;
    void *arg;
    void *data;
    struct evbuffer *out; /* framed messages not yet taken by nghttp2 */
    struct rpc_deframer in;
    struct event *deadline;
    char path[RPC_PATH_MAX];
    /* request (server) or response (client) headers */
    unsigned nheaders;
    size_t header_bytes;
    int method_post, http_status, content_type_ok;
    int64_t timeout_ms; /* from grpc-timeout, -1 = none, -2 = malformed */
    int bad_encoding;   /* grpc-encoding other than identity */
    int have_status;    /* client: grpc-status seen */
    int status;
    char message[RPC_STATUS_MAX];
    /* sending */
    unsigned deferred : 1;       /* the data provider said DEFERRED: resume on send */
    unsigned send_closed : 1;    /* no more messages (client half-close, server finish) */
    unsigned above_mark : 1;     /* queued went over RPC_SEND_HIGH_MARK */
    unsigned cancelled : 1;      /* we reset it: on_close gets status/message */
    unsigned opened : 1;         /* server: on_open accepted it */
    unsigned finish_pending : 1; /* server: finished from inside on_open */
    unsigned remote_closed : 1;
    struct rpc_call *prev, *next;
};

struct rpc_conn {
    struct event_base *base;
    struct bufferevent *bev;
    nghttp2_session *h2;
    SSL *ssl;
    struct rpc_server *srv; /* exactly one of srv, cli is set */
    struct rpc_client *cli;
    char peer[RPC_PEER_MAX];
    int authenticated;
    int depth; /* > 0 inside nghttp2_session_mem_recv: no send, no free */
    int dead;  /* close at the next chance */
    char why[RPC_ERR_MAX];
    int goaway; /* sent (server) or received (client) */
    int spoke;  /* server: the client's first frame arrived */
    size_t max_buffer;
    size_t max_message;
    struct rpc_call *calls;
    int ncalls;
    struct event *timer;   /* keepalive */
    struct event *pump_ev; /* rpc_conn_schedule */
    int pump_due;          /* pump_ev is active: another event_active would only take the lock */
    int read_paused;       /* flush_session stopped reading: the output is full */
    uint64_t ping_sent_ms; /* 0: none outstanding */
    uint64_t last_ping_ms; /* server: the client's last PING */
    unsigned ping_strikes;
    int calm;                     /* server: GOAWAY(ENHANCE_YOUR_CALM) sent: close once it is out */
    uint64_t ping_last_ms;        /* when our last keepalive PING went */
    struct rpc_conn *prev, *next; /* server's list */
};

/* conn.c */
void rpc_socket_nodelay(int fd);
/* Larger reads and writes per wake-up than libevent's 16 KiB default. */
void rpc_bev_tune(struct bufferevent *bev);
/* The session, our SETTINGS and connection window, and the keepalive timer. */
int rpc_conn_start(struct rpc_conn *c, nghttp2_session_callbacks *cbs, int server,
                   const nghttp2_settings_entry *iv, size_t niv, int32_t conn_window,
                   uint32_t timer_ms, event_callback_fn timer_cb);
void rpc_conn_set_callbacks(nghttp2_session_callbacks *cbs);
/* Send what nghttp2 has, deliver writability, close when dead. Returns -1
 * when the connection was closed and freed (c is gone). */
int rpc_conn_pump(struct rpc_conn *c);
/* Pump from the loop, soon (never under the caller). */
void rpc_conn_schedule(struct rpc_conn *c);
void rpc_conn_fail(struct rpc_conn *c, const char *fmt, ...) SONDE_PRINTF(2, 3);
void rpc_conn_on_read(struct bufferevent *bev, void *arg);
void rpc_conn_on_write(struct bufferevent *bev, void *arg);
/* The peer's CN after a verified handshake, or its address; sets c->peer. */
void rpc_conn_identify(struct rpc_conn *c, int fd);
int rpc_conn_alpn_ok(struct rpc_conn *c);

struct rpc_call *rpc_call_new(struct rpc_conn *conn, int32_t id, size_t max_message);
/* Deliver on_close (once) and free the call. */
void rpc_call_end(struct rpc_call *c, int code, const char *message);
ssize_t rpc_data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *user);
int rpc_call_feed(struct rpc_call *c, const uint8_t *data, size_t len);
int rpc_call_arm_deadline(struct rpc_call *c, uint32_t ms);

/* server.c / client.c: the role's close of a connection */
void rpc_server_conn_gone(struct rpc_conn *c);
void rpc_client_conn_gone(struct rpc_conn *c);
int rpc_server_stream_close(struct rpc_call *c, uint32_t error_code);
int rpc_client_stream_close(struct rpc_call *c, uint32_t error_code);

/* tls.c */
SSL_CTX *rpc_tls_ctx(const struct rpc_tls *t, int server, char err[RPC_ERR_MAX]);
void rpc_tls_error(const char *what, char err[RPC_ERR_MAX]);
int rpc_tls_bev_error(struct bufferevent *bev, char *buf, size_t n);

#endif
