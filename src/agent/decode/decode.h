/*
 * decode.h - the view of one captured packet that every later stage reads.
 *
 * Decoding never copies packet bytes: it fills a fixed-size struct pkt with
 * offsets into the captured data and the few header values the flow engine
 * needs on every packet. Anything else (packet-layer records) is read later
 * from the layer list, which remembers where each header starts.
 *
 * The rule that keeps this safe on hostile input: every read is checked
 * against caplen before it happens. A header that does not fit is a discard
 * with a reason, never a read past the buffer. A datagram whose IP length is
 * larger than what was captured is fine (snaplen) as long as the headers we
 * need were captured; an IP length larger than the frame on the wire is not.
 *
 * One file per protocol (eth.c, vlan.c, ipv4.c, gre.c, ...) implements the
 * decoders declared in decode_int.h; decode.c dispatches on link type.
 */
#ifndef SONDE_DECODE_H
#define SONDE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#define DECODE_MAX_LAYERS  24 /* layer records kept per packet */
#define DECODE_MAX_TUNNELS 4  /* nested encapsulations followed */
#define DECODE_MAX_VLANS   4  /* 802.1Q/802.1ad tags followed */
#define DECODE_MAX_MPLS    8  /* MPLS labels followed */
#define DECODE_MAX_IP6_EXT 8  /* IPv6 extension headers followed */

/* libpcap DLT values we decode, named here so no file needs pcap.h. */
#define DECODE_DLT_NULL         0
#define DECODE_DLT_EN10MB       1
#define DECODE_DLT_RAW          12 /* some platforms; 101 (LINKTYPE_RAW) is the portable one */
#define DECODE_DLT_RAW_ALT      14 /* OpenBSD's DLT_RAW */
#define DECODE_DLT_PPP          9
#define DECODE_DLT_PPP_SERIAL   50
#define DECODE_DLT_PPP_ETHER    51  /* PPPoE session without Ethernet header */
#define DECODE_DLT_LOOP         108 /* OpenBSD loopback: family in network order */
#define DECODE_DLT_LINKTYPE_RAW 101
#define DECODE_DLT_LINUX_SLL    113
#define DECODE_DLT_IPV4         228
#define DECODE_DLT_IPV6         229
#define DECODE_DLT_LINUX_SLL2   276
#define DECODE_DLT_C_HDLC       104 /* Cisco HDLC */

/* Kinds of layer record. */
enum pkt_layer_type {
    PKT_L_NONE = 0,
    PKT_L_ETH,
    PKT_L_VLAN,
    PKT_L_MPLS,
    PKT_L_PPPOE,
    PKT_L_PPP,
    PKT_L_SLL,
    PKT_L_SLL2,
    PKT_L_NULL,
    PKT_L_ARP,
    PKT_L_IP4,
    PKT_L_IP6,
    PKT_L_TCP,
    PKT_L_UDP,
    PKT_L_ICMP4,
    PKT_L_ICMP6,
    PKT_L_IGMP,
    PKT_L_GRE,
    PKT_L_VXLAN,
    PKT_L_GTPU,
    PKT_L_HDLC,
    PKT_L__COUNT
};

/*
 * Why a packet was discarded. Names (decode_reason_name) are stable: they are
 * reported in interface_stats.discarded_reasons.
 */
enum decode_reason {
    DECODE_OK = 0,
    DECODE_ERR_LINKTYPE,     /* link type we do not decode */
    DECODE_ERR_ETH,          /* Ethernet header truncated */
    DECODE_ERR_VLAN,         /* VLAN tag truncated or too many tags */
    DECODE_ERR_MPLS,         /* label stack truncated or too deep */
    DECODE_ERR_PPPOE,        /* PPPoE header truncated or bad version/length */
    DECODE_ERR_PPP,          /* PPP header truncated */
    DECODE_ERR_SLL,          /* Linux cooked header truncated */
    DECODE_ERR_NULL,         /* BSD loopback header truncated */
    DECODE_ERR_ARP,          /* ARP truncated or not Ethernet/IPv4 */
    DECODE_ERR_IP4,          /* IPv4 header truncated, bad version or header length */
    DECODE_ERR_IP4_LEN,      /* IPv4 total length impossible */
    DECODE_ERR_IP6,          /* IPv6 header truncated or bad version */
    DECODE_ERR_IP6_LEN,      /* IPv6 payload length impossible */
    DECODE_ERR_IP6_EXT,      /* extension header chain truncated or too long */
    DECODE_ERR_TCP,          /* TCP header truncated or bad data offset */
    DECODE_ERR_UDP,          /* UDP header truncated or bad length */
    DECODE_ERR_ICMP,         /* ICMP header truncated */
    DECODE_ERR_ICMP6,        /* ICMPv6 header truncated */
    DECODE_ERR_GRE,          /* GRE header truncated or unsupported version */
    DECODE_ERR_VXLAN,        /* VXLAN header truncated */
    DECODE_ERR_GTPU,         /* GTP-U header truncated or bad */
    DECODE_ERR_TUNNEL_DEPTH, /* more nested tunnels than DECODE_MAX_TUNNELS */
    DECODE_ERR_LAYERS,       /* more layers than DECODE_MAX_LAYERS */
    DECODE_ERR_HDLC,         /* Cisco HDLC header truncated */
    DECODE_REASON__COUNT
};

/* What a packet contained, for the interface counters (pkt.seen). */
#define PKT_SEEN_ETH    0x0001
#define PKT_SEEN_VLAN   0x0002
#define PKT_SEEN_MPLS   0x0004
#define PKT_SEEN_PPPOE  0x0008
#define PKT_SEEN_IP4    0x0010
#define PKT_SEEN_IP6    0x0020
#define PKT_SEEN_TCP    0x0040
#define PKT_SEEN_UDP    0x0080
#define PKT_SEEN_ICMP   0x0100 /* ICMP or ICMPv6 */
#define PKT_SEEN_IGMP   0x0200
#define PKT_SEEN_FRAG   0x0400
#define PKT_SEEN_ARP    0x0800
#define PKT_SEEN_TUNNEL 0x1000

/* pkt.frag */
#define PKT_FRAG_NONE  0
#define PKT_FRAG_FIRST 1 /* offset 0, more fragments follow: has the L4 header */
#define PKT_FRAG_LATER 2 /* offset > 0: no L4 header */

/* TCP flag bits as on the wire. */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

/* Tunnel types; the same values as TunnelType in the proto. */
#define PKT_TUNNEL_NONE  0
#define PKT_TUNNEL_IPIP  1
#define PKT_TUNNEL_GRE   2
#define PKT_TUNNEL_VXLAN 3
#define PKT_TUNNEL_GTPU  4

struct pkt_layer {
    uint8_t type;  /* enum pkt_layer_type */
    uint8_t depth; /* number of tunnels outside this layer */
    uint16_t off;  /* offset of the header in pkt.data */
    uint16_t len;  /* header length (captured part) */
};

struct pkt {
    /* Input, set by the caller before decode_packet(). */
    const uint8_t *data;
    uint32_t caplen; /* bytes captured */
    uint32_t len;    /* bytes on the wire */
    uint64_t ts_us;  /* capture time, microseconds since the epoch */

    /* Result, reset by decode_packet(); layer[] is valid below nlayers only. */
    uint16_t reason; /* enum decode_reason; DECODE_OK when usable */
    uint16_t seen;   /* PKT_SEEN_* */
    uint8_t nlayers;
    struct pkt_layer layer[DECODE_MAX_LAYERS];

    /* Link layer: the outermost Ethernet header, if any. */
    int32_t eth_off; /* -1 when there is no Ethernet header */
    uint8_t nvlan;
    uint16_t vlan[2];    /* outermost first; only the first two are kept */
    uint32_t mpls_label; /* top label, 0 if none */

    /* The innermost IP datagram: the one the flow is about. */
    uint8_t ip_version; /* 4, 6, or 0 when not IP */
    uint8_t ip_proto;   /* upper-layer protocol after IPv6 extension headers */
    uint16_t l3_off;    /* innermost IP header */
    uint16_t src_off;   /* source address (4 or 16 bytes) */
    uint16_t dst_off;
    uint32_t ip_len;  /* datagram length from the IP header */
    uint8_t frag;     /* PKT_FRAG_* */
    uint32_t frag_id; /* IPv4 id or IPv6 fragment identification */

    /* Transport, when the header was present (l4_off != 0). */
    uint16_t l4_off;
    uint16_t sport, dport; /* host order; 0 for protocols without ports */
    uint8_t tcp_flags;
    uint32_t tcp_seq, tcp_ack; /* host order */
    uint16_t tcp_win;
    uint16_t tcp_mss; /* MSS option of a SYN, 0 if absent or not a SYN */
    uint8_t icmp_type, icmp_code;
    uint32_t payload_off; /* L4 payload start */
    uint32_t payload_len; /* L4 payload length from the IP length (may exceed capture) */

    /* The outermost tunnel, when the flow was decapsulated. */
    uint8_t tunnel_type; /* PKT_TUNNEL_* */
    uint8_t tunnel_depth;
    uint8_t outer_ip_version;
    uint16_t outer_src_off, outer_dst_off;
    uint32_t tunnel_id; /* VNI, TEID or GRE key */
};

/*
 * Decode p->data[0 .. p->caplen) captured on a link of type dlt. Returns
 * p->reason. On DECODE_OK, ip_version tells whether there is an IP flow.
 */
int decode_packet(struct pkt *p, int dlt);

/* Whether we decode this link type at all (checked once when a source opens). */
int decode_dlt_supported(int dlt);

/* Stable lower-case name of a discard reason ("ip4_len"). */
const char *decode_reason_name(int reason);

/* Name of a layer type ("ip6"). */
const char *decode_layer_name(int type);

/* Bytes of the transport payload in the capture: payload_len, cut by the
 * snap length. */
static inline size_t pkt_payload_captured(const struct pkt *p)
{
    size_t have;

    if (p->payload_off >= p->caplen)
        return 0;
    have = p->caplen - p->payload_off;
    return have < p->payload_len ? have : p->payload_len;
}

#endif
