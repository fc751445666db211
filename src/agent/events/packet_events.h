/*
 * packet_events.h - the D3Events packet-layer profile: one record per
 * protocol layer of a captured packet, all sharing the packet's ether_id.
 */
#ifndef SONDE_PACKET_EVENTS_H
#define SONDE_PACKET_EVENTS_H

#include "decode/decode.h"
#include "emit.h"

#define EV_ETHER_ID_LEN 8

/* Emit the enabled records for every layer of p (decoded or not: the
 * layers before a decode error are still reported). */
void ev_packet_layers(struct ev_sink *s, const struct pkt *p, const char *iface, uint64_t ether_id);

#endif
