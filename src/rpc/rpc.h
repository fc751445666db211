/*
 * rpc.h - gRPC over HTTP/2 (nghttp2), TLS (OpenSSL) and libevent: the
 * client and server halves sonde's agent and collector talk through.
 *
 * Everything runs on the caller's event_base, in the thread that runs it;
 * nothing here is thread-safe. A call (struct rpc_call) is one HTTP/2
 * stream. Messages are opaque bytes here: protobuf packing is the caller's.
 *
 * Flow of a call:
 *   server: a request arrives -> method->on_open (accept or refuse with a
 *           status) -> on_message per request message -> on_half_close when
 *           the client is done sending; the handler sends with
 *           rpc_call_send and ends the call with rpc_call_finish.
 *   client: rpc_client_call -> rpc_call_send ... -> rpc_call_close_send;
 *           cbs->on_message per response message, cbs->on_close once.
 * Either side: on_close is the last callback of a call; the call is freed
 * right after it returns.
 */
#ifndef SONDE_RPC_H
#define SONDE_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "wire.h"

struct event_base;
struct rpc_call;
struct rpc_server;
struct rpc_client;

#define RPC_PEER_MAX       128 /* identity: certificate CN, or the address */
#define RPC_ERR_MAX        256
#define RPC_SEND_HIGH_MARK (1u << 20) /* bytes queued on a call before on_writable matters */

/* Certificates for TLS. With cleartext set, none are used (h2c with prior
 * knowledge); the caller decides whether cleartext is allowed at all. */
struct rpc_tls {
    const char *cert; /* PEM: our certificate (chain) */
    const char *key;  /* PEM: its private key */
    const char *ca;   /* PEM: CA(s) the peer's certificate must chain to */
    int cleartext;
};

/* Callbacks of one call; every one may be NULL. */
struct rpc_call_cbs {
    /* Server: a new call of this method. Return RPC_OK to accept it, or a
     * status to end it at once (with rpc_call_finish's message if set). */
    int (*on_open)(struct rpc_call *c, void *arg);
    /* One whole message. A nonzero rpc_code ends the call with that status
     * (server) or cancels it (client). */
    int (*on_message)(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg);
    /* Server: the client will send nothing more. */
    void (*on_half_close)(struct rpc_call *c, void *arg);
    /* The queued bytes fell below RPC_SEND_HIGH_MARK / 2 after having been above. */
    void (*on_writable)(struct rpc_call *c, void *arg);
    /* The end: code and message are the status (from the trailers, the
     * peer's reset, a deadline, or a lost connection). */
    void (*on_close)(struct rpc_call *c, int code, const char *message, void *arg);
};

/* A server method: "/package.Service/Method" and its callbacks. */
struct rpc_method {
    const char *path;
    struct rpc_call_cbs cbs;
    void *arg;
};

struct rpc_server_cfg {
    struct rpc_tls tls;
    size_t max_message;            /* largest request message; 0 = RPC_MESSAGE_MAX */
    uint32_t max_streams;          /* SETTINGS_MAX_CONCURRENT_STREAMS; 0 = 100 */
    uint32_t keepalive_ms;         /* PING an idle connection this often; 0 = 2 h */
    uint32_t keepalive_timeout_ms; /* and close it without an answer; 0 = 20 s */
    uint32_t min_ping_ms;          /* client PINGs closer than this are strikes; 0 = 5 s... */
    uint32_t max_ping_strikes;     /* ... and more strikes than this: GOAWAY; 0 = 2 */
    size_t max_conn_buffer;        /* unsent bytes per connection before reading stops; 0 = 4 MiB */
};

/* Listen on addr ("127.0.0.1:50051", "[::1]:0", ":50051"). The methods
 * array must outlive the server. On failure returns NULL and says why. */
struct rpc_server *rpc_server_new(struct event_base *base, const char *addr,
                                  const struct rpc_server_cfg *cfg,
                                  const struct rpc_method *methods, int nmethods,
                                  char err[RPC_ERR_MAX]);
/* Serve a connected socket as if it had been accepted (tests, fuzzing). */
void rpc_server_adopt(struct rpc_server *s, int fd);
/* The port actually bound (for ":0"). */
int rpc_server_port(const struct rpc_server *s);
/* Graceful: GOAWAY to every connection, no new calls; calls in progress
 * run on for up to grace_ms, then the connections close. */
void rpc_server_shutdown(struct rpc_server *s, uint32_t grace_ms);
/* Connections open now (for tests and metrics). */
int rpc_server_connections(const struct rpc_server *s);
void rpc_server_free(struct rpc_server *s);

struct rpc_client_cfg {
    struct rpc_tls tls;
    const char *host; /* name or address to dial; also the TLS name checked */
    const char *port;
    size_t max_message;            /* largest response message; 0 = RPC_MESSAGE_MAX */
    uint32_t connect_timeout_ms;   /* TCP + TLS; 0 = 10 s */
    uint32_t keepalive_ms;         /* PING this often while calls are open; 0 = 30 s */
    uint32_t keepalive_timeout_ms; /* no PING ACK in time: connection lost; 0 = 10 s */
};

/* The connection state as the client's owner sees it. */
struct rpc_client_events {
    void (*on_ready)(struct rpc_client *cl, void *arg); /* TLS and HTTP/2 up: calls may start */
    /* The connection is gone (or never came); every call already got on_close. */
    void (*on_down)(struct rpc_client *cl, const char *why, void *arg);
    /* The server sent GOAWAY: no new calls on this connection. */
    void (*on_goaway)(struct rpc_client *cl, void *arg);
    void *arg;
};

/* Dial now; on_ready or on_down follows. */
struct rpc_client *rpc_client_new(struct event_base *base, const struct rpc_client_cfg *cfg,
                                  const struct rpc_client_events *ev, char err[RPC_ERR_MAX]);
/* Whether calls may start (ready and no GOAWAY). */
int rpc_client_usable(const struct rpc_client *cl);
/* Start a call of path; timeout_ms 0 = no deadline. NULL when not usable. */
struct rpc_call *rpc_client_call(struct rpc_client *cl, const char *path, uint32_t timeout_ms,
                                 const struct rpc_call_cbs *cbs, void *arg);
/* Close at once: open calls end with UNAVAILABLE (on_close runs now). */
void rpc_client_free(struct rpc_client *cl);

/* Queue one message. Returns -1 when the call can send no more. */
int rpc_call_send(struct rpc_call *c, const uint8_t *msg, size_t len);
/* Bytes queued on the call and not yet taken by HTTP/2 flow control. */
size_t rpc_call_queued(const struct rpc_call *c);
/* Client: no more messages (END_STREAM after what is queued). */
void rpc_call_close_send(struct rpc_call *c);
/* Server: end with a status, after what is queued (trailers). */
void rpc_call_finish(struct rpc_call *c, int code, const char *message);
/* Either: end now with RST_STREAM(CANCEL); on_close runs with code. */
void rpc_call_cancel(struct rpc_call *c, int code, const char *message);
/* The peer's identity: its certificate's CN, or "ip:port" in cleartext. */
const char *rpc_call_peer(const struct rpc_call *c);
/* Whether the connection is TLS with a verified client certificate. */
int rpc_call_authenticated(const struct rpc_call *c);
/* The request path ("/sonde.v1.D3Events/Subscribe"). */
const char *rpc_call_path(const struct rpc_call *c);
void rpc_call_set_data(struct rpc_call *c, void *data);
void *rpc_call_data(const struct rpc_call *c);

/* Monotonic milliseconds (timeouts, deadlines, backoff). */
uint64_t rpc_now_ms(void);

/*
 * Reconnecting: *backoff_ms doubles from RPC_BACKOFF_MIN_MS up to
 * RPC_BACKOFF_MAX_MS (set it to 0 after a connection succeeds); the delay
 * returned is that +-25%, so that many peers cut off by one outage do not
 * come back in lockstep.
 */
#define RPC_BACKOFF_MIN_MS 250
#define RPC_BACKOFF_MAX_MS 30000
struct timeval rpc_backoff(unsigned *backoff_ms);

/* A --push/--pull URL: well formed, and cleartext (grpc://) only to a
 * loopback address unless cleartext_anywhere. *tls says which. opt names
 * the option in err. */
int rpc_check_url(const char *opt, const char *url, int cleartext_anywhere, int *tls,
                  char err[RPC_ERR_MAX]);
/* A --listen address: well formed, and cleartext only on loopback unless
 * cleartext_anywhere. */
int rpc_check_listen(const char *addr, int cleartext, int cleartext_anywhere,
                     char err[RPC_ERR_MAX]);

/* Whether "host" (an address literal, or "localhost") is loopback: where
 * cleartext is allowed without --insecure-cleartext-anywhere. */
int rpc_host_is_loopback(const char *host);
/* "grpcs://host:port" (TLS) or "grpc://host:port" (cleartext); -1 when malformed. */
int rpc_parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap, int *tls);
/* Split "host:port" / "[v6]:port" / ":port"; returns -1 when malformed. */
int rpc_split_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap);

#endif
