/*
 * inventory.h - the agent and inventory events: AgentHello, AgentStatus,
 * Interface, InterfaceStats, Endpoint.
 */
#ifndef SONDE_INVENTORY_H
#define SONDE_INVENTORY_H

#include "export/rpcout.h"
#include "capture/source.h"
#include "emit.h"
#include "flow/engine.h"

struct agent_status_vals {
    uint64_t uptime_s, maxrss_kb, packets, capture_dropped, queue_dropped, discarded;
    double cpu_user, cpu_system;
    uint32_t cpu_cores;
    struct flow_engine_counters flows;
    uint64_t flows_active, flow_table_size, flow_bytes;
    uint64_t dns_malformed, dhcp_malformed;
    uint32_t nworkers;
    uint32_t worker_queue_depth[FLOW_MAX_SOURCES];
    uint32_t event_queue_depth;
    const struct rpcout_stats *rpc; /* NULL without --push / --listen */
};

void ev_agent_hello(struct ev_sink *s, const char *hostname, uint64_t start_ms, uint32_t threads,
                    int dpi, uint64_t now_ms);
void ev_agent_status(struct ev_sink *s, const struct agent_status_vals *v, uint64_t now_ms);
void ev_interface(struct ev_sink *s, const struct source *src, uint64_t now_ms);
void ev_interface_stats(struct ev_sink *s, const struct source *src,
                        const struct flow_source_counters *fc, uint64_t now_ms);
void ev_endpoint(struct ev_sink *s, const struct source *src, const struct endpoint *e,
                 uint64_t now_ms);

#endif
