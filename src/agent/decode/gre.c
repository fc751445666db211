/*
 * gre.c - GRE (RFC 2784 with the RFC 2890 key and sequence number).
 *
 * Version 0 is decapsulated when it carries IPv4, IPv6, MPLS or bridged
 * Ethernet (0x6558); the key becomes tunnel_id. Any other payload (ERSPAN,
 * keepalives of other kinds, ...) leaves the GRE packet as the flow.
 *
 * Version 1 is PPTP's enhanced GRE (RFC 2637): it is checked and recorded
 * but not decapsulated, so a PPTP session is one flow (ip_proto 47) rather
 * than a flow per inner PPP packet. Other versions are errors, and so are
 * the RFC 1701 routing and recursion bits, which RFC 2784 says to discard.
 *
 * Either way l4_off points at the GRE header and the payload after it, so a
 * GRE flow that is not decapsulated still has a transport view.
 */
#include "decode_int.h"

#define GRE_MIN_HLEN 4
#define GRE_C        0x8000 /* checksum present */
#define GRE_R        0x4000 /* routing present (RFC 1701) */
#define GRE_K        0x2000 /* key present */
#define GRE_S        0x1000 /* sequence number present */
#define GRE_SSR      0x0800 /* strict source route (RFC 1701) */
#define GRE_RECUR    0x0700 /* recursion control (RFC 1701) */
#define GRE_A        0x0080 /* acknowledgment present (version 1) */
#define GRE_VER      0x0007

/* Record the header and make it the transport of the (outer) flow. */
static int decode_gre_layer(struct pkt *p, uint32_t off, uint32_t hl, uint32_t len)
{
    int r;

    if (hl > len || !decode_fits(p, off, hl))
        return DECODE_ERR_GRE;
    r = decode_layer_add(p, PKT_L_GRE, off, hl);
    if (r != DECODE_OK)
        return r;
    p->l4_off = (uint16_t)off;
    p->payload_off = off + hl;
    p->payload_len = len - hl;
    return DECODE_OK;
}

static int decode_gre_v0(struct pkt *p, uint32_t off, uint32_t len, uint16_t flags)
{
    uint32_t hl = GRE_MIN_HLEN, key_off = 0, key = 0;
    uint16_t proto = decode_rd16(p, off + 2);
    int r;

    if (flags & GRE_C)
        hl += 4; /* checksum and reserved1 */
    if (flags & GRE_K) {
        key_off = hl;
        hl += 4;
    }
    if (flags & GRE_S)
        hl += 4;
    r = decode_gre_layer(p, off, hl, len);
    if (r != DECODE_OK)
        return r;
    if (flags & GRE_K)
        key = decode_rd32(p, off + key_off);
    if (p->frag != PKT_FRAG_NONE)
        return DECODE_OK; /* no decapsulation without reassembly */

    switch (proto) {
    case DECODE_ETH_IP4:
    case DECODE_ETH_IP6:
    case DECODE_ETH_TEB:
    case DECODE_ETH_MPLS_UC:
    case DECODE_ETH_MPLS_MC:
        break;
    default:
        return DECODE_OK;
    }
    r = decode_tunnel_enter(p, PKT_TUNNEL_GRE, key);
    if (r != DECODE_OK)
        return r;
    if (proto == DECODE_ETH_TEB)
        return decode_eth(p, off + hl);
    return decode_ethertype(p, proto, off + hl);
}

/* PPTP: key (payload length, call id) always present, then seq and ack. */
static int decode_gre_pptp(struct pkt *p, uint32_t off, uint32_t len, uint16_t flags)
{
    uint32_t hl = GRE_MIN_HLEN + 4;

    if ((flags & GRE_C) || !(flags & GRE_K) || decode_rd16(p, off + 2) != DECODE_ETH_PPTP)
        return DECODE_ERR_GRE;
    if (flags & GRE_S)
        hl += 4;
    if (flags & GRE_A)
        hl += 4;
    return decode_gre_layer(p, off, hl, len);
}

int decode_gre(struct pkt *p, uint32_t off, uint32_t len)
{
    uint16_t flags;

    if (len < GRE_MIN_HLEN || !decode_fits(p, off, GRE_MIN_HLEN))
        return DECODE_ERR_GRE;
    flags = decode_rd16(p, off);
    if (flags & (GRE_R | GRE_SSR | GRE_RECUR))
        return DECODE_ERR_GRE;
    switch (flags & GRE_VER) {
    case 0:
        return decode_gre_v0(p, off, len, flags);
    case 1:
        return decode_gre_pptp(p, off, len, flags);
    default:
        return DECODE_ERR_GRE;
    }
}
