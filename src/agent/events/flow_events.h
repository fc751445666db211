/*
 * flow_events.h - Flow, FlowStats and FlowPurge. The flow thread queues a
 * snapshot of the flow record; the exporter thread builds and packs the
 * message from it, keeping the encoding cost off the packet path.
 */
#ifndef SONDE_FLOW_EVENTS_H
#define SONDE_FLOW_EVENTS_H

#include "common/sbuf.h"
#include "emit.h"
#include "dpi/app.h"
#include "flow/flow.h"

#define EV_DIGEST_HEXLEN 41

/* Flow thread: queue flow event tag (EV_FLOW, EV_FLOW_STATS, EV_FLOW_PURGE)
 * for f into the calling thread's batch b; app is the detection result a
 * flow event carries (copied; NULL for none), reason is for EV_FLOW_PURGE. */
void ev_flow_queue(struct ev_sink *s, struct ev_batch *b, int tag, const struct flow *f,
                   const struct flow_app *app, int reason, uint64_t now_us);
/* Size of a queued flow item; the exporter recycles them (evq_recycle). */
size_t ev_flow_item_size(void);

/* The flow's digest (SHA-1 of its key, interface and first-seen time), hex:
 * the value every event about the flow carries. */
void ev_flow_digest(const struct ev_sink *s, const struct flow *f, char hex[EV_DIGEST_HEXLEN]);

/* Exporter thread: build and pack a queued flow event at the end of out
 * (with EV_SEQ_ROOM spare bytes after it); returns its length or -1. */
long ev_flow_encode(const struct ev_sink *s, const struct evq_item *it, struct sbuf *out);

#endif
