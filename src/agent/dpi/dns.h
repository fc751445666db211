/*
 * dns.h - DNS and mDNS: transactions as Dns events, names for addresses.
 *
 * Messages on port 53 (UDP and TCP) and 5353 (mDNS) are parsed with ldns.
 * A query waits in a small per-worker table until its response arrives on
 * the same flow with the same transaction id; then one Dns event carries
 * both (response time included). A query left unanswered is reported
 * after DNS_TIMEOUT_US of packet time, or when its slot is needed.
 *
 * The answers also feed the hint cache: address -> the name that was asked
 * for, until the record's TTL runs out. A flow event names its other side
 * from it (dns_host_name), as the Netify agent does.
 */
#ifndef SONDE_DNS_H
#define SONDE_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "decode/decode.h"
#include "events/emit.h"
#include "flow/flow.h"

#define DNS_PORT           53
#define MDNS_PORT          5353
#define DNS_PENDING        1024                /* unanswered queries per worker; power of two */
#define DNS_TIMEOUT_US     (5ULL * 1000000ULL) /* dig's default wait */
#define DNS_MAX_ANSWERS    64                  /* answers carried by one event */
#define DNS_NAME_MAX       256                 /* presentation form + NUL */
#define DNS_CACHE_SLOTS    4096                /* hint cache entries; power of two */
#define DNS_TCP_LEN_PREFIX 2

/* ---- hint cache: shared by the workers (it locks) ---- */

struct dns_cache;

struct dns_cache *dns_cache_new(size_t slots);
void dns_cache_free(struct dns_cache *c);
/* Remember that addr was an answer for name at seen_us, valid ttl seconds. */
void dns_cache_put(struct dns_cache *c, int ip_version, const uint8_t *addr, const char *name,
                   uint64_t seen_us, uint32_t ttl);
/* The name of addr as known at time at_us; 0 and "" when none. */
int dns_cache_get(struct dns_cache *c, int ip_version, const uint8_t *addr, uint64_t at_us,
                  char name[DNS_NAME_MAX]);
/* Learn the A and AAAA answers of one response message (wire format):
 * 0, or -1 if it is malformed. */
int dns_cache_learn(struct dns_cache *c, const uint8_t *msg, size_t len, uint64_t ts_us);

/* A name in wire form (uncompressed labels), in presentation form without
 * the root's dot; returns the length written (see dns.c). */
size_t dns_name_text(const uint8_t *wire, size_t len, char *out, size_t size);

/* ---- transactions: one tracker per flow worker ---- */

struct dns_tracker;

struct dns_tracker *dns_tracker_new(struct ev_sink *s, struct dns_cache *cache);
void dns_tracker_free(struct dns_tracker *t);

/* Whether a packet between these ports may carry DNS (s: --dns-port). */
static inline int dns_port(const struct ev_sink *s, uint16_t sport, uint16_t dport)
{
    int i;

    if (sport == DNS_PORT || dport == DNS_PORT || sport == MDNS_PORT || dport == MDNS_PORT)
        return 1;
    for (i = 0; i < s->n_dns_ports; i++)
        if (sport == s->dns_port[i] || dport == s->dns_port[i])
            return 1;
    return 0;
}

/* A packet of flow f with payload, sent from key side `side`. */
void dns_packet(struct dns_tracker *t, const struct flow *f, const struct pkt *p, int side);
/* Report the queries older than DNS_TIMEOUT_US at now_us as unanswered. */
void dns_expire(struct dns_tracker *t, uint64_t now_us);
/* End of input: report every query still waiting. */
void dns_finish(struct dns_tracker *t);
/* Messages that could not be parsed (malformed, cut by the snap length,
 * or split across TCP segments). */
uint64_t dns_malformed(const struct dns_tracker *t);

/* ---- packet layer: the D3Events DnsHeader / MdnsHeader record ---- */

struct dns_header {
    uint16_t id, flags, qdcount, ancount, nscount, arcount;
    char qname[DNS_NAME_MAX];
};

/* Parse the DNS message in data[0 .. len). Returns 0, or -1 if malformed. */
int dns_header_parse(const uint8_t *data, size_t len, struct dns_header *h);

/* The data of the first answer of the message in data[0 .. len), in
 * presentation form, into out (cut to size). Returns 1, or 0 if none. */
int dns_first_answer(const uint8_t *data, size_t len, char *out, size_t size);

#endif
