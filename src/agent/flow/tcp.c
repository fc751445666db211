/*
 * tcp.c - TCP connection state, handshake RTT, retransmissions, resets and
 * sequence gaps, from what one observation point sees of both directions.
 *
 * Sequence tracking is per direction: next_seq is the highest sequence
 * number plus length seen so far. A segment carrying data that ends at or
 * before next_seq repeats data already seen (a retransmission, or a
 * keep-alive probe); one that starts beyond next_seq leaves a gap (a
 * sequence error: a segment we never saw, lost before the capture point
 * or dropped by it). Comparisons use serial arithmetic so wrap-around at
 * 2^32 is handled.
 */
#include "engine.h"

/* TcpState values in the proto. */
#define ST_SYN_SENT     1
#define ST_SYN_RECEIVED 2
#define ST_ESTABLISHED  3
#define ST_FIN_WAIT     4
#define ST_CLOSED       5
#define ST_RESET        6
#define ST_MIDSTREAM    7

static int seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static int seq_gt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

/* Track sequence numbers of one direction; counts retransmits and gaps. */
static void track_seq(struct flow *f, const struct pkt *p, int side,
                      struct flow_source_counters *sc)
{
    uint8_t valid = side ? FLOW_F_SEQ1 : FLOW_F_SEQ0;
    uint32_t seg =
        p->payload_len + ((p->tcp_flags & TCP_SYN) ? 1 : 0) + ((p->tcp_flags & TCP_FIN) ? 1 : 0);
    uint32_t end = p->tcp_seq + seg;

    if (p->tcp_flags & TCP_RST)
        return;
    if (!(f->flags & valid)) {
        f->flags |= valid;
        f->next_seq[side] = end;
        return;
    }
    if (seg == 0)
        return; /* pure ACK: nothing to compare */
    if (!seq_gt(end, f->next_seq[side])) {
        f->retransmits++;
    } else if (seq_gt(p->tcp_seq, f->next_seq[side])) {
        f->seq_errors++;
        sc->tcp_seq_errors++;
    }
    if (seq_lt(f->next_seq[side], end))
        f->next_seq[side] = end;
}

static void track_close(struct flow *f, uint8_t flags, int side)
{
    if (flags & TCP_RST) {
        f->resets++;
        f->tcp_state = ST_RESET;
        return;
    }
    if (flags & TCP_FIN) {
        f->flags |= side ? FLOW_F_FIN1 : FLOW_F_FIN0;
        if ((f->flags & (FLOW_F_FIN0 | FLOW_F_FIN1)) == (FLOW_F_FIN0 | FLOW_F_FIN1))
            f->tcp_state = ST_CLOSED;
        else if (f->tcp_state != ST_RESET)
            f->tcp_state = ST_FIN_WAIT;
    }
}

int flow_tcp_update(struct flow *f, const struct pkt *p, int side, struct flow_source_counters *sc)
{
    uint8_t flags = p->tcp_flags;
    int done = 0;

    f->tcp_flags[side] |= flags;
    if ((flags & TCP_SYN) && p->tcp_mss)
        f->mss[side] = p->tcp_mss;
    track_seq(f, p, side, sc);

    switch (f->tcp_state) {
    case 0: /* first packet of the flow */
        if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
            f->tcp_state = ST_SYN_SENT;
            f->syn_us = p->ts_us;
        } else {
            f->tcp_state = ST_MIDSTREAM;
        }
        break;
    case ST_SYN_SENT:
        if ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) && side != f->origin)
            f->tcp_state = ST_SYN_RECEIVED;
        break;
    case ST_SYN_RECEIVED:
        if ((flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_ACK && side == f->origin) {
            f->tcp_state = ST_ESTABLISHED;
            f->rtt_us = p->ts_us >= f->syn_us ? p->ts_us - f->syn_us : 0;
            done = 1;
        }
        break;
    case ST_MIDSTREAM:
        /* Picked up after the handshake: established once both sides speak. */
        if (f->pkts[0] && f->pkts[1]) {
            f->tcp_state = ST_ESTABLISHED;
            done = 1;
        }
        break;
    default:
        break;
    }
    if (flags & (TCP_FIN | TCP_RST))
        track_close(f, flags, side);
    return done;
}

int flow_list_for(const struct flow *f)
{
    if (f->key.proto != 6)
        return FLOW_LIST_SHORT;
    switch (f->tcp_state) {
    case ST_CLOSED:
    case ST_RESET:
        return FLOW_LIST_CLOSED;
    case ST_ESTABLISHED:
    case ST_FIN_WAIT:
        return FLOW_LIST_LONG;
    default:
        return FLOW_LIST_SHORT;
    }
}
