/*
 * flow_events.h - Flow, FlowStats and FlowPurge from a flow record.
 */
#ifndef SONDE_FLOW_EVENTS_H
#define SONDE_FLOW_EVENTS_H

#include "emit.h"
#include "flow/flow.h"

#define EV_DIGEST_HEXLEN 41

void ev_flow(struct ev_sink *s, struct flow *f, uint64_t now_us);
void ev_flow_stats(struct ev_sink *s, struct flow *f, uint64_t now_us);
void ev_flow_purge(struct ev_sink *s, struct flow *f, int reason, uint64_t now_us);

/* The flow's digest as hex (computed once, then cached in the flow). */
void ev_flow_digest(struct ev_sink *s, struct flow *f, char out[EV_DIGEST_HEXLEN]);

#endif
