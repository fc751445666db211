/*
 * rpcout.h - the agent's gRPC side: push to collectors (--push) and serve
 * subscribers (--listen), on a thread of its own with one libevent loop.
 *
 * The exporter thread hands every event over with rpcout_event, which
 * never blocks: it copies the bytes into a block of events, and
 * rpcout_flush (at the end of each batch, or when the block is full) puts
 * the block in the inbox and wakes the loop. Only if the loop falls more
 * than RPCOUT_INBOX_BYTES behind are events dropped there (counted).
 * Everything after that - the per-collector queues, the spool, the
 * subscribers' queues - lives on the loop's thread.
 */
#ifndef SONDE_EXPORT_RPCOUT_H
#define SONDE_EXPORT_RPCOUT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

#define RPCOUT_MAX_PUSH    8
#define RPCOUT_INBOX_BYTES (64u << 20)
#define RPCOUT_URL_MAX     300

struct rpcout_cfg {
    const char *push[RPCOUT_MAX_PUSH]; /* grpcs://host:port or grpc://host:port */
    int npush;
    const char *listen; /* pull server address, or NULL */
    struct rpc_tls tls; /* tls.cleartext: the server side runs h2c */
    size_t queue_bytes; /* memory per collector before the spool */
    const char *spool_dir;
    uint64_t spool_bytes;      /* per collector */
    uint32_t drain_ms;         /* at exit, wait this long for acknowledgements */
    uint32_t sub_queue_events; /* per subscriber */
    size_t max_message;
    /* Reading a file: when the collectors cannot take more (memory queue
     * full, no spool), rpcout_event waits instead of dropping. */
    int wait;
    volatile sig_atomic_t *stop; /* a wait ends (and drops, counted) once *stop is set */
};

/* One collector's state, for agent_status. */
struct rpcout_push_stats {
    char url[RPCOUT_URL_MAX];
    int connected;
    uint64_t queued;        /* events in memory, not acknowledged */
    uint64_t spooled_bytes; /* on disk */
    uint64_t acked;         /* acknowledged by the collector */
    uint64_t dropped;       /* lost: memory and spool full */
    uint64_t rejected;      /* refused by the collector (INVALID_ARGUMENT) */
    uint64_t reconnects;
};

struct rpcout_stats {
    struct rpcout_push_stats push[RPCOUT_MAX_PUSH];
    int npush;
    uint32_t subscribers;
    uint64_t subscriber_dropped; /* events a slow subscriber missed */
    uint64_t inbox_dropped;
};

struct rpcout;

/* Check the configuration (addresses, cleartext rules) without opening
 * anything; -1 with err set. */
int rpcout_check(const struct rpcout_cfg *cfg, int cleartext_anywhere, char err[RPC_ERR_MAX]);
/* Start the thread: listens and dials. */
struct rpcout *rpcout_start(const struct rpcout_cfg *cfg, char err[RPC_ERR_MAX]);
/* Hand over one event (packed, seq already stamped); it leaves with the
 * next rpcout_flush. One thread only (the exporter's); never blocks. */
void rpcout_event(struct rpcout *o, int tag, uint64_t seq, const uint8_t *data, size_t len);
/* Pass the events written since the last flush to the loop. The same
 * thread as rpcout_event; waits only in wait mode, for inbox room. */
void rpcout_flush(struct rpcout *o);
/* Snapshot of the counters (any thread). */
void rpcout_stats(struct rpcout *o, struct rpcout_stats *st);
/* Deliver what is queued (up to drain_ms for acknowledgements), spool the
 * rest, close everything, join the thread. Returns -1 if events were lost. */
int rpcout_stop(struct rpcout *o);

#endif
