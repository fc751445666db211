/*
 * engine.h - the flow engine of one worker thread.
 *
 * It owns a flow table and turns decoded packets into flow updates, and
 * flow updates into three kinds of callback: a flow is ready to report
 * (established, or about to be purged without ever being), a flow's
 * periodic stats are due, a flow is purged. The callbacks build and queue
 * events; the engine itself knows nothing about protobuf or outputs.
 *
 * Time is packet time: the engine's clock is the latest packet timestamp
 * it has seen (or a tick from the capture thread when the link is idle),
 * so replaying a file expires flows exactly as live capture would.
 */
#ifndef SONDE_FLOW_ENGINE_H
#define SONDE_FLOW_ENGINE_H

#include <stdint.h>

#include "flow.h"
#include "frag.h"
#include "netset.h"
#include "table.h"

#define FLOW_MAX_SOURCES 64

/* Values of PurgeReason in the proto. */
#define FLOW_PURGE_CLOSED     1
#define FLOW_PURGE_EXPIRED    2
#define FLOW_PURGE_EVICTED    3
#define FLOW_PURGE_TERMINATED 4

struct flow_settings {
    uint64_t timeout_us[FLOW_LIST__COUNT]; /* idle timeout per list */
    uint64_t stats_interval_us;            /* 0 = no flow_stats */
    size_t max_flows;                      /* per engine */
    const struct netset *local;
};

struct flow_engine_ops {
    void (*report)(void *ctx, struct flow *f);
    void (*stats)(void *ctx, struct flow *f);
    void (*purge)(void *ctx, struct flow *f, int reason);
    /*
     * Application detection, or NULL for none. inspect sees the flow's
     * packets until it returns nonzero (detection ended); the flow is
     * reported then, not when established. conclude ends detection of a
     * flow purged before inspect did.
     */
    int (*inspect)(void *ctx, struct flow *f, const struct pkt *p);
    void (*conclude)(void *ctx, struct flow *f);
    /* Application records, or NULL: every packet with a payload, from key
     * side `side`, after accounting (a TCP segment repeating data already
     * seen is left out); and once per second of packet time. */
    void (*payload)(void *ctx, struct flow *f, const struct pkt *p, int side);
    void (*tick)(void *ctx, uint64_t now_us);
};

/* Per-source counters the interface_stats need from the workers. */
struct flow_source_counters {
    uint64_t tcp_seq_errors;
    uint64_t flow_dropped;
};

struct flow_engine_counters {
    uint64_t created, expired, closed, evicted, purged, terminated;
    uint64_t frag_orphans; /* later fragments whose first fragment was not seen */
};

struct flow_engine {
    struct flow_table table;
    struct frag_table frag;
    struct flow_settings cfg;
    const struct flow_engine_ops *ops;
    void *ctx;
    uint64_t now_us;
    uint64_t next_expire_us, next_stats_us;
    uint32_t stats_round; /* rounds so far; see stats_round() */
    struct flow_engine_counters c;
    struct flow_source_counters src[FLOW_MAX_SOURCES];
};

int flow_engine_init(struct flow_engine *e, const struct flow_settings *cfg,
                     const struct flow_engine_ops *ops, void *ctx);
void flow_engine_destroy(struct flow_engine *e);
/* Account one decoded IP packet (p->reason == DECODE_OK, p->ip_version != 0). */
void flow_engine_packet(struct flow_engine *e, const struct pkt *p, uint16_t source);
/* Advance the clock without a packet (idle link): expiry and stats. */
void flow_engine_advance(struct flow_engine *e, uint64_t now_us);
/* End of input or shutdown: purge every flow as terminated. */
void flow_engine_finish(struct flow_engine *e);

/* Build the canonical key of a packet; returns the key side of the sender. */
int flow_key_from_pkt(struct flow_key *k, const struct pkt *p, uint16_t source, uint16_t sport,
                      uint16_t dport);

/* TCP state tracking (tcp.c). Returns nonzero when the handshake completed. */
int flow_tcp_update(struct flow *f, const struct pkt *p, int side, struct flow_source_counters *sc);
/* The timeout list a flow belongs on now. */
int flow_list_for(const struct flow *f);

#endif
