/*
 * gtpu.c - GTPv1-U (3GPP TS 29.281), UDP port 2152: user traffic of mobile
 * networks.
 *
 * The mandatory header is 8 bytes: flags, message type, length (of what
 * follows those 8 bytes) and the TEID, reported as tunnel_id. If any of the
 * E, S or PN flags is set, 4 more bytes follow (sequence number, N-PDU
 * number, next extension header type), and with E a chain of extension
 * headers, each a length in 4-byte units, content, and the next type.
 *
 * Only G-PDUs (type 0xff) carry user packets; they are decapsulated when
 * the payload is IPv4 or IPv6. Signalling (echo, error indication, end
 * marker) and payloads of other kinds stay the outer UDP flow, as does
 * anything on port 2152 that is not GTPv1 with PT set.
 */
#include "decode_int.h"

#define GTPU_HLEN     8
#define GTPU_OPT_HLEN 12
#define GTPU_V1_PT    0x30 /* version 1 and protocol type GTP, in the top nibble */
#define GTPU_FLAG_E   0x04
#define GTPU_OPTS     0x07 /* E, S, PN: the optional 4 bytes are present */
#define GTPU_GPDU     0xff

/*
 * Length of the header at off, extension headers included, or 0 when it is
 * truncated or malformed. end is the GTP message length from off.
 */
static uint32_t decode_gtpu_hlen(const struct pkt *p, uint32_t off, uint32_t end)
{
    uint8_t flags = decode_rd8(p, off), next;
    uint32_t hl = GTPU_OPT_HLEN, elen;

    if (!(flags & GTPU_OPTS))
        return GTPU_HLEN;
    if (hl > end || !decode_fits(p, off, hl))
        return 0;
    next = (flags & GTPU_FLAG_E) ? decode_rd8(p, off + 11) : 0;
    /* Each extension is at least 4 bytes and must fit: the walk ends. */
    while (next != 0) {
        if (hl + 1 > end || !decode_fits(p, off + hl, 1))
            return 0;
        elen = decode_rd8(p, off + hl) * 4u;
        if (elen == 0 || hl + elen > end || !decode_fits(p, off + hl, elen))
            return 0;
        next = decode_rd8(p, off + hl + elen - 1);
        hl += elen;
    }
    return hl;
}

int decode_gtpu(struct pkt *p, uint32_t off, uint32_t len)
{
    uint32_t end, hl;
    uint8_t nibble;
    int r;

    if (len < GTPU_HLEN)
        return DECODE_OK;
    if (!decode_fits(p, off, GTPU_HLEN))
        return DECODE_ERR_GTPU;
    if ((decode_rd8(p, off) & 0xf0) != GTPU_V1_PT)
        return DECODE_OK;
    end = GTPU_HLEN + decode_rd16(p, off + 2);
    if (end > len)
        return DECODE_ERR_GTPU;
    hl = decode_gtpu_hlen(p, off, end);
    if (hl == 0)
        return DECODE_ERR_GTPU;
    r = decode_layer_add(p, PKT_L_GTPU, off, hl);
    if (r != DECODE_OK)
        return r;
    if (decode_rd8(p, off + 1) != GTPU_GPDU || hl == end)
        return DECODE_OK;

    if (!decode_fits(p, off + hl, 1))
        return DECODE_ERR_GTPU;
    nibble = decode_rd8(p, off + hl) >> 4;
    if (nibble != 4 && nibble != 6)
        return DECODE_OK; /* an Ethernet or unstructured PDU session */
    r = decode_tunnel_enter(p, PKT_TUNNEL_GTPU, decode_rd32(p, off + 4));
    if (r != DECODE_OK)
        return r;
    return nibble == 4 ? decode_ip4(p, off + hl) : decode_ip6(p, off + hl);
}
