/*
 * vxlan.c - VXLAN (RFC 7348): UDP destination port 4789, inner Ethernet.
 *
 * The 8-byte header holds flags and a 24-bit VNI, reported as tunnel_id.
 * Traffic to port 4789 that is too short for the header, or lacks the I flag
 * that makes the VNI valid, is not VXLAN as far as we can tell and stays a
 * plain UDP flow. A header that should be there but was not captured is an
 * error.
 */
#include "decode_int.h"

#define VXLAN_HLEN   8
#define VXLAN_FLAG_I 0x08

int decode_vxlan(struct pkt *p, uint32_t off, uint32_t len)
{
    uint32_t vni;
    int r;

    if (len < VXLAN_HLEN)
        return DECODE_OK;
    if (!decode_fits(p, off, VXLAN_HLEN))
        return DECODE_ERR_VXLAN;
    if (!(decode_rd8(p, off) & VXLAN_FLAG_I))
        return DECODE_OK;
    r = decode_layer_add(p, PKT_L_VXLAN, off, VXLAN_HLEN);
    if (r != DECODE_OK)
        return r;
    vni = decode_rd32(p, off + 4) >> 8;
    r = decode_tunnel_enter(p, PKT_TUNNEL_VXLAN, vni);
    if (r != DECODE_OK)
        return r;
    return decode_eth(p, off + VXLAN_HLEN);
}
