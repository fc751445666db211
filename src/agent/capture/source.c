/*
 * source.c - open libpcap sources, interface addresses, interface counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#if defined(HAVE_FSETLOCKING)
#include <stdio_ext.h>
#endif
#if defined(__linux__)
#include <linux/if_packet.h>
#elif defined(AF_LINK)
#include <net/if_dl.h>
#endif

#include "source.h"

#define SOURCE_MAX_ENDPOINTS 65536
#define ETH_WIRE_OVERHEAD    24 /* preamble+SFD 8, FCS 4, inter-frame gap 12 */
#define SOURCE_FILE_BUF      (1u << 20)

static void source_init(struct source *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->name = strdup(name);
}

/* The program is kept: a mapped file (pcapfile.c) runs it on each record itself. */
static int apply_filter(struct source *s, const char *filter, char *err)
{
    if (filter == NULL || *filter == '\0')
        return 0;
    if (pcap_compile(s->pcap, &s->prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
        snprintf(err, SOURCE_ERR_MAX, "%s: bad filter '%s': %s", s->name, filter,
                 pcap_geterr(s->pcap));
        return -1;
    }
    s->has_prog = 1;
    if (pcap_setfilter(s->pcap, &s->prog) < 0) {
        snprintf(err, SOURCE_ERR_MAX, "%s: cannot set filter: %s", s->name, pcap_geterr(s->pcap));
        return -1;
    }
    s->filter = filter;
    return 0;
}

static int check_dlt(struct source *s, char *err)
{
    s->dlt = pcap_datalink(s->pcap);
    if (!decode_dlt_supported(s->dlt)) {
        const char *n = pcap_datalink_val_to_name(s->dlt);
        snprintf(err, SOURCE_ERR_MAX, "%s: link type %d (%s) is not supported", s->name, s->dlt,
                 n ? n : "unknown");
        return -1;
    }
    return 0;
}

/* The network of an interface address: the address and its prefix length. */
static void note_net(struct netset_entry *e, int v, const void *addr, const struct sockaddr *mask)
{
    const uint8_t *m = v == 4 ? (const uint8_t *)&((const struct sockaddr_in *)mask)->sin_addr
                              : (const uint8_t *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
    int b, max = v == 4 ? 32 : 128;

    memset(e, 0, sizeof(*e));
    e->ip_version = (uint8_t)v;
    memcpy(e->addr, addr, v == 4 ? 4 : 16);
    for (b = 0; b < max && (m[b / 8] & (0x80 >> (b % 8))); b++)
        e->bits++;
}

/* The interface's MAC, addresses and networks, by getifaddrs (Linux, BSD, macOS). */
static void read_ifaddrs(struct source *s)
{
    struct ifaddrs *ifa, *i;
    char buf[INET6_ADDRSTRLEN];

    if (getifaddrs(&ifa) < 0)
        return;
    for (i = ifa; i; i = i->ifa_next) {
        if (i->ifa_addr == NULL || strcmp(i->ifa_name, s->name) != 0)
            continue;
        if (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6) {
            int v4 = i->ifa_addr->sa_family == AF_INET;
            const void *a = v4 ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

            if (s->naddr < SOURCE_MAX_ADDRS &&
                inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof(buf)))
                s->addr[s->naddr++] = strdup(buf);
            if (i->ifa_netmask && s->nnet < SOURCE_MAX_ADDRS)
                note_net(&s->net[s->nnet++], v4 ? 4 : 6, a, i->ifa_netmask);
        }
#if defined(__linux__)
        else if (i->ifa_addr->sa_family == AF_PACKET) {
            struct sockaddr_ll *ll = (struct sockaddr_ll *)i->ifa_addr;
            if (ll->sll_halen == 6) {
                memcpy(s->mac, ll->sll_addr, 6);
                s->has_mac = 1;
            }
        }
#elif defined(AF_LINK)
        else if (i->ifa_addr->sa_family == AF_LINK) {
            struct sockaddr_dl *dl = (struct sockaddr_dl *)i->ifa_addr;
            if (dl->sdl_alen == 6) {
                memcpy(s->mac, LLADDR(dl), 6);
                s->has_mac = 1;
            }
        }
#endif
    }
    freeifaddrs(ifa);
}

int source_open_live(struct source *s, const char *ifname, const struct capture_opts *o, char *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";

    source_init(s, ifname);
    s->pcap = pcap_create(ifname, ebuf);
    if (s->pcap == NULL) {
        snprintf(err, SOURCE_ERR_MAX, "%s: %s", ifname, ebuf);
        return -1;
    }
    pcap_set_snaplen(s->pcap, o->snaplen);
    pcap_set_promisc(s->pcap, o->promisc);
    pcap_set_timeout(s->pcap, o->timeout_ms);
    if (o->immediate)
        pcap_set_immediate_mode(s->pcap, 1);
    if (o->buffer_mb > 0)
        pcap_set_buffer_size(s->pcap, o->buffer_mb * 1024 * 1024);
    if (pcap_activate(s->pcap) < 0) {
        snprintf(err, SOURCE_ERR_MAX, "%s: cannot capture: %s", ifname, pcap_geterr(s->pcap));
        return -1;
    }
    if (check_dlt(s, err) < 0 || apply_filter(s, o->filter, err) < 0)
        return -1;
    if (pcap_setnonblock(s->pcap, 1, ebuf) < 0) {
        snprintf(err, SOURCE_ERR_MAX, "%s: %s", ifname, ebuf);
        return -1;
    }
    s->fd = pcap_get_selectable_fd(s->pcap);
    s->snaplen = pcap_snapshot(s->pcap);
    read_ifaddrs(s);
    return endpoint_table_init(&s->ep, SOURCE_MAX_ENDPOINTS);
}

int source_open_file(struct source *s, const char *path, const struct capture_opts *o, char *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    FILE *f;

    source_init(s, path);
    s->is_file = 1;
    /*
     * libpcap reads a file through stdio, whose buffer is the file system's
     * block size: one read(2) per 4 KiB, a fifth of the time of a bare read
     * loop. A 1 MiB buffer makes that 256 times fewer system calls.
     */
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, SOURCE_ERR_MAX, "%s: %s", path, strerror(errno));
        return -1;
    }
    s->iobuf = malloc(SOURCE_FILE_BUF);
    if (s->iobuf != NULL)
        setvbuf(f, s->iobuf, _IOFBF, SOURCE_FILE_BUF);
#if defined(HAVE_FSETLOCKING)
    /* Only the capture thread reads it; once the exporter thread exists,
     * stdio would otherwise lock and unlock it twice per packet. */
    __fsetlocking(f, FSETLOCKING_BYCALLER);
#endif
    s->pcap = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    if (s->pcap == NULL) {
        if (f != stdin)
            fclose(f);
        /* libpcap names the file itself in some messages, not in others. */
        if (strncmp(ebuf, path, strlen(path)) == 0)
            snprintf(err, SOURCE_ERR_MAX, "%s", ebuf);
        else
            snprintf(err, SOURCE_ERR_MAX, "%s: %s", path, ebuf);
        return -1;
    }
    if (check_dlt(s, err) < 0 || apply_filter(s, o->filter, err) < 0)
        return -1;
    s->snaplen = pcap_snapshot(s->pcap);
    s->mapped = pcapfile_open(&s->file, path, s->pcap, err, SOURCE_ERR_MAX);
    if (s->mapped < 0)
        return -1;
    return endpoint_table_init(&s->ep, SOURCE_MAX_ENDPOINTS);
}

int source_dispatch(struct source *s, int cnt, pcap_handler cb, unsigned char *user)
{
    struct pcap_pkthdr h;
    const uint8_t *data;
    int n = 0, rc;

    if (!s->mapped)
        return pcap_dispatch(s->pcap, cnt, cb, user);
    while (n < cnt && (rc = pcapfile_next(&s->file, &h, &data)) != 0) {
        if (rc < 0)
            return PCAP_ERROR;
        if (s->has_prog && !pcap_offline_filter(&s->prog, &h, data))
            continue;
        cb(user, &h, data);
        n++;
    }
    return n;
}

const char *source_geterr(struct source *s)
{
    return s->mapped ? s->file.err : pcap_geterr(s->pcap);
}

void source_close(struct source *s)
{
    int i;

    if (s->mapped)
        pcapfile_close(&s->file);
    if (s->has_prog)
        pcap_freecode(&s->prog);
    if (s->pcap)
        pcap_close(s->pcap); /* closes a file source's FILE too */
    free(s->iobuf);          /* only after the FILE that used it */
    for (i = 0; i < s->naddr; i++)
        free(s->addr[i]);
    endpoint_table_destroy(&s->ep);
    free(s->name);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}

void source_add_local_nets(const struct source *s, struct netset *local)
{
    int i;

    for (i = 0; i < s->nnet; i++)
        netset_add_addr(local, s->net[i].ip_version, s->net[i].addr, s->net[i].bits);
}

void source_count(struct iface_counters *c, const struct pkt *p, int dlt)
{
    uint16_t seen = p->seen;

    c->raw++;
    if (p->len > c->largest_bytes)
        c->largest_bytes = p->len;
    c->wire_bytes += p->len + (dlt == DECODE_DLT_EN10MB ? ETH_WIRE_OVERHEAD : 0);
    if (seen & PKT_SEEN_ETH)
        c->ethernet++;
    if (seen & PKT_SEEN_VLAN)
        c->vlan++;
    if (seen & PKT_SEEN_MPLS)
        c->mpls++;
    if (seen & PKT_SEEN_PPPOE)
        c->pppoe++;
    if (seen & PKT_SEEN_ARP)
        c->arp++;
    if (p->reason != DECODE_OK) {
        c->discarded++;
        c->discarded_bytes += p->len;
        c->reasons[p->reason < DECODE_REASON__COUNT ? p->reason : 0]++;
        return;
    }
    if (p->ip_version == 0)
        return;
    c->ip++;
    c->ip_bytes += p->len;
    if (p->ip_version == 4)
        c->ip4++;
    else
        c->ip6++;
    if (seen & PKT_SEEN_TUNNEL)
        c->tunnel++;
    if (seen & PKT_SEEN_FRAG)
        c->fragmented++;
    switch (p->ip_proto) {
    case 6:
        c->tcp++;
        if (p->l4_off && (p->tcp_flags & TCP_RST))
            c->tcp_resets++;
        break;
    case 17:
        c->udp++;
        break;
    case 1:
    case 58:
        c->icmp++;
        break;
    case 2:
        c->igmp++;
        break;
    }
}

void source_read_stats(struct source *s)
{
    struct pcap_stat st;

    if (s->is_file || s->pcap == NULL || pcap_stats(s->pcap, &st) < 0)
        return;
    s->c.capture_dropped = (uint64_t)st.ps_drop + st.ps_ifdrop;
}
