/*
 * emit.h - building events and handing them to the exporters.
 *
 * Producers (capture thread, flow workers) fill a protobuf-c struct on the
 * stack, stamp it (agent id, sequence, time) and call ev_emit, which packs
 * it into one heap item and queues it. Packing here, in the producer,
 * spreads the encoding cost over the workers and leaves the exporter with
 * bytes it can write as they are (-o pb) or decode by reflection (-o json).
 *
 * Sequence numbers are given by the exporter, the one consumer, so they
 * increase in output order whatever the number of producers: a packed
 * event leaves room for one more field, and the exporter appends seq
 * (field 2 of every event; protobuf keeps the last value of a field).
 */
#ifndef SONDE_EMIT_H
#define SONDE_EMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/queue.h"
#include "pbwire.h"
#include "sonde/v1/events.pb-c.h"

/* Event oneof tags (field numbers of sonde.v1.Event). */
enum ev_tag {
    EV_AGENT_HELLO = 1,
    EV_AGENT_STATUS = 2,
    EV_INTERFACE = 3,
    EV_INTERFACE_STATS = 4,
    EV_ENDPOINT = 5,
    EV_FLOW = 6,
    EV_FLOW_STATS = 7,
    EV_FLOW_PURGE = 8,
    EV_DNS = 9,
    EV_TLS = 10,
    EV_HTTP = 11,
    EV_DHCP = 12,
    EV_ETH = 20,
    EV_ARP = 21,
    EV_IP4 = 22,
    EV_IP6 = 23,
    EV_TCP = 24,
    EV_UDP = 25,
    EV_ICMP4 = 26,
    EV_ICMP6 = 27,
    EV_DNS_HEADER = 28,
    EV_MDNS_HEADER = 29,
    EV_DHCP_HEADER = 30,
    EV_TAG_MAX = 63
};

#define EV_MASK(tag) (1ULL << (tag))
#define EV_DEFAULT_MASK                                                                            \
    (EV_MASK(EV_AGENT_HELLO) | EV_MASK(EV_AGENT_STATUS) | EV_MASK(EV_INTERFACE) |                  \
     EV_MASK(EV_INTERFACE_STATS) | EV_MASK(EV_ENDPOINT) | EV_MASK(EV_FLOW) |                       \
     EV_MASK(EV_FLOW_STATS) | EV_MASK(EV_FLOW_PURGE) | EV_MASK(EV_DNS) | EV_MASK(EV_TLS) |         \
     EV_MASK(EV_HTTP) | EV_MASK(EV_DHCP))
#define EV_PACKET_MASK                                                                             \
    (EV_MASK(EV_ETH) | EV_MASK(EV_ARP) | EV_MASK(EV_IP4) | EV_MASK(EV_IP6) | EV_MASK(EV_TCP) |     \
     EV_MASK(EV_UDP) | EV_MASK(EV_ICMP4) | EV_MASK(EV_ICMP6) | EV_MASK(EV_DNS_HEADER) |            \
     EV_MASK(EV_MDNS_HEADER) | EV_MASK(EV_DHCP_HEADER))

#define EV_MAX_SOURCES   64
#define EV_MAX_DNS_PORTS 8 /* --dns-port */

/* What every producer shares: read-only after start, except the atomics. */
struct ev_sink {
    char *agent_id;
    uint64_t mask;                     /* enabled tags */
    int wait;                          /* block on a full queue (file input) instead of dropping */
    uint32_t sampling_rate;            /* flow packet sampling, 1 = none */
    uint16_t cid_seed;                 /* Community ID seed */
    const char *iface[EV_MAX_SOURCES]; /* source names by index */
    uint16_t dns_port[EV_MAX_DNS_PORTS]; /* DNS besides 53 and 5353 */
    int n_dns_ports;
    struct evq *q;
    atomic_uint_fast64_t events, dropped;
};

static inline int ev_enabled(const struct ev_sink *s, int tag)
{
    return (s->mask & EV_MASK(tag)) != 0;
}

static inline const char *ev_iface_name(const struct ev_sink *s, unsigned source)
{
    return source < EV_MAX_SOURCES && s->iface[source] ? s->iface[source] : "";
}

/* Room after a packed event for the seq field the exporter appends. */
#define EV_SEQ_FIELD 2
#define EV_SEQ_ROOM  (1 + PB_VARINT_MAX) /* key byte + varint (pb_put_varint stores no more) */

/* Append field seq (a varint) at p, which has EV_SEQ_ROOM bytes free;
 * returns the bytes written. Protobuf takes fields in any order. */
static inline size_t ev_put_seq(uint8_t *p, uint64_t seq)
{
    *p = (uint8_t)(EV_SEQ_FIELD << 3 | PB_WIRE_VARINT);
    return (size_t)(pb_put_varint(p + 1, seq) - p);
}

/* Stamp the header fields every event message starts with (seq: see above). */
#define EV_STAMP(sink, msg, ts_ms)                                                                 \
    do {                                                                                           \
        (msg).agent_id = (sink)->agent_id;                                                         \
        (msg).timestamp = (ts_ms);                                                                 \
    } while (0)

/* Pack and queue. Returns 0, or -1 if dropped (counted). */
int ev_emit(struct ev_sink *s, int tag, const ProtobufCMessage *m);
/* Queue a prepared item (takes it). Returns 0, or -1 if dropped (counted). */
int ev_queue(struct ev_sink *s, struct evq_item *it);

/*
 * A producer thread's own batch: events go to the queue EV_BATCH at a time
 * (one lock), and the exporter's recycled items come back the same way.
 * The owner flushes it whenever others must see what it queued so far.
 */
#define EV_BATCH 64

struct ev_batch {
    struct evq_item *head, *tail;
    size_t n;
    struct evq_item *spare[EVQ_SPARE_CLASSES]; /* recycled items, linked by next */
};

void ev_batch_add(struct ev_sink *s, struct ev_batch *b, struct evq_item *it);
void ev_batch_flush(struct ev_sink *s, struct ev_batch *b);
/* Free the spare items (the batch must be flushed). */
void ev_batch_free(struct ev_batch *b);

/* Text forms shared by the builders. buf sizes: */
#define EV_IP_STRLEN  46
#define EV_MAC_STRLEN 18
void ev_fmt_ip(char *buf, int ip_version, const uint8_t *addr);
void ev_fmt_mac(char *buf, const uint8_t *mac);
/* n bytes as lowercase hex; buf holds 2 * n + 1. */
void ev_fmt_hex(char *buf, const uint8_t *data, size_t n);

#endif
