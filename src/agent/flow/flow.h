/*
 * flow.h - a bidirectional flow and the key that finds it.
 *
 * The key is canonical: of the two (address, port) endpoints, the smaller
 * one is always side 0, so both directions of a conversation build the same
 * key, hash and digest. Per-direction counters are indexed by key side;
 * "local" and "other" (the Netify view) are decided once, when the flow is
 * created, and stored as which key side is local.
 */
#ifndef SONDE_FLOW_H
#define SONDE_FLOW_H

#include <stdint.h>

#include "decode/decode.h"

struct flow_key {
    uint8_t addr[2][16]; /* IPv4 in the first 4 bytes, rest zero */
    uint16_t port[2];
    uint16_t vlan;
    uint16_t source; /* capture source (interface) index */
    uint8_t ip_version;
    uint8_t proto;
    uint8_t pad[6]; /* zero: keys are hashed and compared as bytes */
};

_Static_assert(sizeof(struct flow_key) % 8 == 0, "flow keys are compared in 8-byte words");

/* Timeout classes: one LRU list each, so the head is always the next to expire. */
enum flow_list { FLOW_LIST_SHORT = 0, FLOW_LIST_LONG, FLOW_LIST_CLOSED, FLOW_LIST__COUNT };

/* flow.flags */
#define FLOW_F_ESTABLISHED 0x01 /* handshake done or reply seen */
#define FLOW_F_REPORTED    0x02 /* the flow event has been sent */
#define FLOW_F_FIN0        0x04 /* key side 0 sent FIN */
#define FLOW_F_FIN1        0x08
#define FLOW_F_SEQ0        0x10 /* next_seq[0] is valid */
#define FLOW_F_SEQ1        0x20
#define FLOW_F_DETECTED    0x40 /* application detection has ended */

struct flow_tunnel {
    uint8_t type, depth, ip_version;
    uint32_t id;
    uint8_t src[16], dst[16]; /* outer addresses as first seen */
};

/*
 * Laid out by how often a field is touched: the first 64 bytes are what a
 * lookup reads, the next 64 what every packet of the flow updates, and the
 * rest is read or written a few times per flow. Flows are allocated on
 * 64-byte boundaries (table.c), so a packet costs two cache lines.
 */
struct flow {
    /* lookup */
    struct flow_key key;
    struct flow *hnext; /* hash chain */
    uint64_t last_us;
    /* every packet */
    uint64_t bytes[2], pkts[2]; /* by key side */
    uint64_t list_us;           /* when last moved to its list's tail (<= last_us) */
    uint32_t next_seq[2];       /* TCP, by key side */
    uint32_t stats_round;       /* engine stats round of its last packet */
    uint8_t flags;              /* FLOW_F_* */
    uint8_t list;               /* enum flow_list */
    uint8_t tcp_state;          /* TcpState value */
    uint8_t tcp_flags[2];       /* OR of TCP flags by key side */
    uint8_t origin;             /* key side that sent first */
    uint8_t local;              /* key side that is "local" */
    uint8_t other_type;         /* OtherType value */
    uint16_t dpi_packets;       /* packets handed to application detection */
    /* a few times per flow */
    struct flow *prev, *next; /* timeout list */
    uint64_t first_us;
    uint64_t stats_bytes, stats_pkts; /* totals at the previous flow_stats */
    uint64_t fragments;
    uint8_t mac[2][6]; /* source MAC seen from each key side */
    uint8_t icmp_type, icmp_code;
    uint16_t vlan_inner;
    uint32_t mpls_label;
    struct flow_tunnel *tunnel; /* NULL unless decapsulated */
    uint16_t mss[2];
    uint32_t retransmits, resets, seq_errors;
    uint64_t syn_us;
    uint64_t rtt_us;
    void *dpi; /* nDPI's state while detection runs (dpi/) */
};

#endif
