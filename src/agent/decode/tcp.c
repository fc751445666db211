/*
 * tcp.c - TCP headers: ports, flags, sequence numbers, window, MSS option.
 *
 * The header, options included, must be captured and must fit in the IP
 * payload; the payload itself may be cut by the snaplen.
 */
#include "decode_int.h"

#define TCP_MIN_HLEN 20
#define TCPOPT_EOL   0
#define TCPOPT_NOP   1
#define TCPOPT_MSS   2

/*
 * The MSS option from the options in [off, end), all captured. A malformed
 * option ends the walk quietly: options are advice, not part of the flow key.
 */
static uint16_t decode_tcp_mss(const struct pkt *p, uint32_t off, uint32_t end)
{
    uint8_t kind, olen;

    while (off < end) {
        kind = decode_rd8(p, off);
        if (kind == TCPOPT_EOL)
            break;
        if (kind == TCPOPT_NOP) {
            off++;
            continue;
        }
        if (off + 2 > end)
            break;
        olen = decode_rd8(p, off + 1);
        if (olen < 2 || off + olen > end)
            break;
        if (kind == TCPOPT_MSS && olen == 4)
            return decode_rd16(p, off + 2);
        off += olen;
    }
    return 0;
}

int decode_tcp(struct pkt *p, uint32_t off, uint32_t len)
{
    uint32_t hl;
    int r;

    if (len < TCP_MIN_HLEN || !decode_fits(p, off, TCP_MIN_HLEN))
        return DECODE_ERR_TCP;
    hl = (uint32_t)(decode_rd8(p, off + 12) >> 4) * 4;
    if (hl < TCP_MIN_HLEN || hl > len || !decode_fits(p, off, hl))
        return DECODE_ERR_TCP;
    r = decode_layer_add(p, PKT_L_TCP, off, hl);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_TCP;
    p->l4_off = (uint16_t)off;
    p->sport = decode_rd16(p, off);
    p->dport = decode_rd16(p, off + 2);
    p->tcp_seq = decode_rd32(p, off + 4);
    p->tcp_ack = decode_rd32(p, off + 8);
    p->tcp_flags = decode_rd8(p, off + 13);
    p->tcp_win = decode_rd16(p, off + 14);
    /* MSS is only meaningful on SYNs; other segments' options (timestamps
     * on nearly every one) are left alone: this runs on every packet. */
    if (hl > TCP_MIN_HLEN && (p->tcp_flags & TCP_SYN))
        p->tcp_mss = decode_tcp_mss(p, off + TCP_MIN_HLEN, off + hl);
    p->payload_off = off + hl;
    p->payload_len = len - hl;
    return DECODE_OK;
}
