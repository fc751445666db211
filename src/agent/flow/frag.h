/*
 * frag.h - remembers the ports of fragmented datagrams.
 *
 * Only the first fragment of an IP datagram carries the TCP/UDP header. We
 * note its ports under (addresses, protocol, IP id) so the later fragments
 * are counted to the same flow. A fixed, direct-mapped table: a new entry
 * simply replaces an old one in its slot, so memory is bounded and a flood
 * of fragments costs nothing but misses (counted by the caller).
 */
#ifndef SONDE_FRAG_H
#define SONDE_FRAG_H

#include <stdint.h>

#include "decode/decode.h"

#define FRAG_SLOTS      4096 /* power of two */
#define FRAG_TIMEOUT_US (30ULL * 1000000ULL)

struct frag_entry {
    uint8_t src[16], dst[16];
    uint32_t id;
    uint8_t ip_version, proto;
    uint16_t sport, dport;
    uint64_t ts_us; /* 0 = empty */
};

struct frag_table {
    struct frag_entry slot[FRAG_SLOTS];
};

void frag_init(struct frag_table *t);
/* First fragment: remember its ports. */
void frag_note(struct frag_table *t, const struct pkt *p);
/* Later fragment: fill sport/dport from the first one; 0 if unknown. */
int frag_lookup(const struct frag_table *t, const struct pkt *p, uint16_t *sport, uint16_t *dport);

#endif
