/*
 * dhcp.h - DHCPv4: the message parser, Dhcp transactions, and what the
 * endpoint inventory learns from them.
 *
 * A transaction is one client's (chaddr) messages with one xid: DISCOVER,
 * OFFER, REQUEST, ACK, or a part of that. Its messages travel in different
 * flows (the client broadcasts from 0.0.0.0, the server answers from its
 * address), so the agent hands all DHCP packets to one worker, whose
 * tracker sees them in capture order.
 */
#ifndef SONDE_DHCP_H
#define SONDE_DHCP_H

#include <stddef.h>
#include <stdint.h>

#include "decode/decode.h"
#include "events/emit.h"
#include "flow/flow.h"

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68
#define DHCP_PENDING     256                  /* open transactions; power of two */
#define DHCP_TIMEOUT_US  (60ULL * 1000000ULL) /* silence that ends a transaction */
#define DHCP_MAX_TYPES   16                   /* message types kept per transaction */
#define DHCP_TEXT_MAX    128
#define DHCP_PRL_MAX     256 /* option 55 as "1,3,6,..." */
#define DHCP_CHADDR_LEN  16

/* Message types (option 53). */
enum dhcp_type {
    DHCP_DISCOVER = 1,
    DHCP_OFFER = 2,
    DHCP_REQUEST = 3,
    DHCP_DECLINE = 4,
    DHCP_ACK = 5,
    DHCP_NAK = 6,
    DHCP_RELEASE = 7,
    DHCP_INFORM = 8
};

struct dhcp_msg {
    uint8_t op, htype, hlen, hops;
    uint32_t xid;
    uint16_t secs, flags;
    uint8_t ciaddr[4], yiaddr[4], siaddr[4], giaddr[4];
    uint8_t chaddr[DHCP_CHADDR_LEN];
    uint8_t type; /* option 53, 0 if absent */
    uint8_t has_requested, has_server_id, has_lease;
    uint8_t requested[4], server_id[4];
    uint32_t lease_time;
    char hostname[DHCP_TEXT_MAX], vendor_class[DHCP_TEXT_MAX], domain[DHCP_TEXT_MAX];
    char client_id[DHCP_TEXT_MAX]; /* hex, cut */
    char fingerprint[DHCP_PRL_MAX];
};

static inline int dhcp_port(uint16_t sport, uint16_t dport)
{
    return (sport == DHCP_SERVER_PORT || sport == DHCP_CLIENT_PORT) &&
           (dport == DHCP_SERVER_PORT || dport == DHCP_CLIENT_PORT);
}

/* Parse the BOOTP/DHCP message in data[0 .. len). Returns 0, or -1 when
 * it is too short or lacks the DHCP magic cookie. Options cut short by the
 * end of the data are ignored from there on. */
int dhcp_parse(const uint8_t *data, size_t len, struct dhcp_msg *m);
/* The UDP payload of p as a DHCP message; -1 if it is none or malformed. */
int dhcp_of_packet(const struct pkt *p, struct dhcp_msg *m);
/* "DISCOVER", "ACK", ...; "" for an unknown type. */
const char *dhcp_type_name(unsigned type);
/* chaddr as a MAC address when htype 1 and hlen 6, else as hex. */
void dhcp_fmt_chaddr(char *buf, size_t size, const struct dhcp_msg *m);

/* ---- transactions: one tracker, in the worker that gets all of DHCP ---- */

struct dhcp_tracker;

struct dhcp_tracker *dhcp_tracker_new(struct ev_sink *s);
void dhcp_tracker_free(struct dhcp_tracker *t);
/* A UDP packet of flow f between DHCP ports. */
void dhcp_packet(struct dhcp_tracker *t, const struct flow *f, const struct pkt *p);
/* Report the transactions silent for DHCP_TIMEOUT_US at now_us. */
void dhcp_expire(struct dhcp_tracker *t, uint64_t now_us);
/* End of input: report every open transaction. */
void dhcp_finish(struct dhcp_tracker *t);
/* Messages that could not be parsed. */
uint64_t dhcp_malformed(const struct dhcp_tracker *t);

#endif
