/*
 * receiver.h - the collector's end of the push interface: every
 * Publish<Type>Stream of sonde.v1.D3Events.
 *
 * Each message is checked (it parses as its type, has an agent_id and a
 * seq, no string over max_string, and, over TLS, its agent_id is the
 * certificate's name), deduplicated by (agent, type, seq), and written to
 * the sinks. Every commit_ms the sinks are committed (flushed and synced)
 * and then each stream is told, in a PublishResponse, the highest seq it
 * has had committed: an acknowledgement never runs ahead of the disk.
 */
#ifndef SONDE_COLLECTOR_RECEIVER_H
#define SONDE_COLLECTOR_RECEIVER_H

#include <stdint.h>

#include "dedup.h"
#include "rpc.h"
#include "sink.h"

#define RECV_MAX_SINKS 8

struct receiver_cfg {
    size_t max_string;     /* longest string or bytes field accepted */
    uint32_t commit_ms;    /* commit and acknowledge this often */
    int trust_agent_id;    /* TLS: do not require agent_id == certificate CN */
    uint64_t accept_types; /* bit per Event tag; 0 = every type */
};

struct receiver_stats {
    uint64_t accepted, duplicates, rejected, streams, commits;
};

struct receiver;

/* What one event came to. */
struct ingest {
    long agent; /* dedup index of its agent */
    uint64_t seq;
    int duplicate; /* already stored: dropped */
    char why[RPC_STATUS_MAX];
};

/*
 * Check, deduplicate and store one packed event of type tag (an Event
 * member number). identity: the name in the agent's certificate (client
 * certificate when it pushes, server certificate when pulled), which the
 * event's agent_id must equal (NULL: no such check); agent: the dedup index
 * the caller's stream is bound to, or -1. Returns RPC_OK (stored, or a
 * duplicate), or a status with the reason in in->why.
 */
int receiver_ingest(struct receiver *r, int tag, const uint8_t *msg, size_t len,
                    const char *identity, long agent, struct ingest *in);

struct receiver *receiver_new(struct event_base *base, const struct receiver_cfg *cfg,
                              struct sink *sinks, int nsinks, struct dedup *dedup,
                              char err[RPC_ERR_MAX]);
/* The publish methods, to put in the server's table (valid until free). */
const struct rpc_method *receiver_methods(const struct receiver *r, int *n);
/* Commit now and acknowledge; then every open stream is ended with
 * UNAVAILABLE "collector shutting down" so agents reconnect later. */
void receiver_shutdown(struct receiver *r);
const struct receiver_stats *receiver_stats(const struct receiver *r);
void receiver_free(struct receiver *r);

#endif
