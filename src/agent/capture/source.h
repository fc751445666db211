/*
 * source.h - a capture source (live interface or capture file) and its
 * Netify interface counters.
 *
 * libpcap does the capturing on every platform (TPACKET_V3 on Linux, BPF
 * on the BSDs and macOS); this file only opens it with the user's settings
 * and reads back its statistics.
 */
#ifndef SONDE_SOURCE_H
#define SONDE_SOURCE_H

#include <stdint.h>

#include <pcap/pcap.h>

#include "decode/decode.h"
#include "endpoint.h"
#include "pcapfile.h"
#include "flow/netset.h"

#define SOURCE_MAX_ADDRS 16
#define SOURCE_ERR_MAX   512

struct capture_opts {
    int snaplen;
    int promisc;
    int immediate;
    int buffer_mb;  /* kernel buffer, 0 = libpcap default */
    int timeout_ms; /* read timeout when not immediate */
    const char *filter;
};

struct iface_counters {
    uint64_t raw, ethernet, vlan, mpls, pppoe, ip, ip4, ip6, ip_bytes, wire_bytes;
    uint64_t tcp, udp, icmp, igmp, fragmented, discarded, discarded_bytes, largest_bytes;
    uint64_t tcp_resets, arp, tunnel;
    uint64_t capture_dropped, capture_filtered, queue_dropped;
    uint64_t reasons[DECODE_REASON__COUNT];
};

struct source {
    pcap_t *pcap;
    char *name;
    int is_file;
    int dlt;
    int snaplen;
    int fd;      /* selectable descriptor for live capture, -1 otherwise */
    char *iobuf; /* stdio buffer of a file source */
    const char *filter;
    struct bpf_program prog; /* the compiled filter, if has_prog */
    int has_prog;
    int mapped; /* a file read by pcapfile.c, not by libpcap */
    struct pcapfile file;
    uint16_t index;
    int has_mac;
    uint8_t mac[6];
    int naddr;
    char *addr[SOURCE_MAX_ADDRS];
    int nnet;
    struct netset_entry net[SOURCE_MAX_ADDRS]; /* the networks of those addresses */
    struct iface_counters c;
    struct endpoint_table ep;
};

int source_open_live(struct source *s, const char *ifname, const struct capture_opts *o, char *err);
int source_open_file(struct source *s, const char *path, const struct capture_opts *o, char *err);
void source_close(struct source *s);
/* pcap_dispatch, for a mapped file too: up to cnt packets that pass the
 * filter; 0 at the end, PCAP_ERROR on a damaged file (source_geterr). */
int source_dispatch(struct source *s, int cnt, pcap_handler cb, unsigned char *user);
const char *source_geterr(struct source *s);
/* Add the interface's own networks to the local set. */
void source_add_local_nets(const struct source *s, struct netset *local);
/* Account one decoded packet in the interface counters. */
void source_count(struct iface_counters *c, const struct pkt *p, int dlt);
/* Refresh capture_dropped / capture_filtered from pcap_stats (live only). */
void source_read_stats(struct source *s);

#endif
