/*
 * inventory.c - agent and inventory event builders.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "inventory.h"

#define JSON_VERSION 1

void ev_agent_hello(struct ev_sink *s, const char *hostname, uint64_t start_ms, uint32_t threads,
                    int dpi, uint64_t now_ms)
{
    Sonde__V1__AgentHello m = SONDE__V1__AGENT_HELLO__INIT;
    /* "dpi" last: it is left out with --no-dpi */
    static char *caps[] = {"flows",        "pcap",    "pcapng", "packet-events",
                           "community-id", "tunnels", "dpi"};
    char build[256];
    struct utsname u;

    if (!ev_enabled(s, EV_AGENT_HELLO))
        return;
    if (uname(&u) < 0)
        memset(&u, 0, sizeof(u));
    snprintf(build, sizeof(build), "sonde-agent/%s (%s; %s; %s)", SONDE_VERSION, u.sysname,
             u.machine,
#if defined(__clang__)
             "clang " __clang_version__
#elif defined(__GNUC__)
             "gcc " __VERSION__
#else
             "cc"
#endif
    );
    EV_STAMP(s, m, now_ms);
    m.hostname = (char *)hostname;
    m.agent_version = SONDE_VERSION;
    m.build_version = build;
    m.n_capabilities = sizeof(caps) / sizeof(caps[0]) - (dpi ? 0 : 1);
    m.capabilities = caps;
    m.start_time = start_ms;
    m.json_version = JSON_VERSION;
    m.threads = threads;
    m.sampling_rate = s->sampling_rate;
    ev_emit(s, EV_AGENT_HELLO, &m.base);
}

/* The gRPC exporters' counters (the strings stay in st, which outlives m). */
static void status_rpc(Sonde__V1__AgentStatus *m, const struct rpcout_stats *st,
                       Sonde__V1__PushStatus *push, Sonde__V1__PushStatus **ppush)
{
    int i;

    for (i = 0; i < st->npush; i++) {
        const struct rpcout_push_stats *p = &st->push[i];

        sonde__v1__push_status__init(&push[i]);
        push[i].collector = (char *)p->url;
        push[i].connected = p->connected;
        push[i].queued = p->queued;
        push[i].spooled_bytes = p->spooled_bytes;
        push[i].acked = p->acked;
        push[i].dropped = p->dropped;
        push[i].rejected = p->rejected;
        push[i].reconnects = p->reconnects;
        ppush[i] = &push[i];
    }
    m->n_push = (size_t)st->npush;
    m->push = ppush;
    m->subscribers = st->subscribers;
    m->subscriber_dropped = st->subscriber_dropped;
}

void ev_agent_status(struct ev_sink *s, const struct agent_status_vals *v, uint64_t now_ms)
{
    Sonde__V1__AgentStatus m = SONDE__V1__AGENT_STATUS__INIT;
    Sonde__V1__PushStatus push[RPCOUT_MAX_PUSH], *ppush[RPCOUT_MAX_PUSH];
    uint32_t depth[FLOW_MAX_SOURCES];

    if (!ev_enabled(s, EV_AGENT_STATUS))
        return;
    EV_STAMP(s, m, now_ms);
    m.uptime = v->uptime_s;
    m.cpu_user = v->cpu_user;
    m.cpu_system = v->cpu_system;
    m.maxrss_kb = v->maxrss_kb;
    m.cpu_cores = v->cpu_cores;
    m.flows_active = v->flows_active;
    m.flows_expired = v->flows.expired;
    m.flows_purged = v->flows.purged;
    m.flows_evicted = v->flows.evicted;
    m.flows_closed = v->flows.closed;
    m.packets = v->packets;
    m.capture_dropped = v->capture_dropped;
    m.queue_dropped = v->queue_dropped;
    m.events = atomic_load(&s->events);
    m.events_dropped = atomic_load(&s->dropped);
    m.discarded = v->discarded;
    memcpy(depth, v->worker_queue_depth, sizeof(depth));
    m.n_worker_queue_depth = v->nworkers;
    m.worker_queue_depth = depth;
    m.event_queue_depth = v->event_queue_depth;
    m.flow_table_size = v->flow_table_size;
    m.flow_bytes = v->flow_bytes;
    m.dns_malformed = v->dns_malformed;
    m.dhcp_malformed = v->dhcp_malformed;
    if (v->rpc)
        status_rpc(&m, v->rpc, push, ppush);
    ev_emit(s, EV_AGENT_STATUS, &m.base);
}

void ev_interface(struct ev_sink *s, const struct source *src, uint64_t now_ms)
{
    Sonde__V1__Interface m = SONDE__V1__INTERFACE__INIT;
    char mac[EV_MAC_STRLEN] = "";
    const char *dlt = pcap_datalink_val_to_name(src->dlt);

    if (!ev_enabled(s, EV_INTERFACE))
        return;
    EV_STAMP(s, m, now_ms);
    if (src->has_mac)
        ev_fmt_mac(mac, src->mac);
    m.interface = src->name;
    m.mac = mac;
    m.n_addr = (size_t)src->naddr;
    m.addr = (char **)src->addr;
    m.role = SONDE__V1__INTERFACE_ROLE__INTERFACE_ROLE_LAN;
    m.capture_type = src->is_file ? SONDE__V1__CAPTURE_TYPE__CAPTURE_TYPE_FILE
                                  : SONDE__V1__CAPTURE_TYPE__CAPTURE_TYPE_PCAP;
    m.link_type = (char *)(dlt ? dlt : "");
    m.snaplen = (uint32_t)src->snaplen;
    m.filter = (char *)(src->filter ? src->filter : "");
    ev_emit(s, EV_INTERFACE, &m.base);
}

void ev_interface_stats(struct ev_sink *s, const struct source *src,
                        const struct flow_source_counters *fc, uint64_t now_ms)
{
    Sonde__V1__InterfaceStats m = SONDE__V1__INTERFACE_STATS__INIT;
    Sonde__V1__Counter cnt[DECODE_REASON__COUNT], *pc[DECODE_REASON__COUNT];
    const struct iface_counters *c = &src->c;
    size_t n = 0;
    int r;

    if (!ev_enabled(s, EV_INTERFACE_STATS))
        return;
    EV_STAMP(s, m, now_ms);
    m.interface = src->name;
    m.raw = c->raw;
    m.ethernet = c->ethernet;
    m.vlan = c->vlan;
    m.mpls = c->mpls;
    m.pppoe = c->pppoe;
    m.ip = c->ip;
    m.ip4 = c->ip4;
    m.ip6 = c->ip6;
    m.ip_bytes = c->ip_bytes;
    m.wire_bytes = c->wire_bytes;
    m.tcp = c->tcp;
    m.udp = c->udp;
    m.icmp = c->icmp;
    m.igmp = c->igmp;
    m.fragmented = c->fragmented;
    m.discarded = c->discarded;
    m.discarded_bytes = c->discarded_bytes;
    m.largest_bytes = c->largest_bytes;
    m.tcp_resets = c->tcp_resets;
    m.tcp_seq_errors = fc->tcp_seq_errors;
    m.capture_dropped = c->capture_dropped;
    m.capture_filtered = c->capture_filtered;
    m.queue_dropped = c->queue_dropped;
    m.flow_dropped = fc->flow_dropped;
    m.arp = c->arp;
    m.tunnel = c->tunnel;
    m.sampling_rate = s->sampling_rate;
    for (r = 1; r < DECODE_REASON__COUNT; r++) {
        if (c->reasons[r] == 0)
            continue;
        sonde__v1__counter__init(&cnt[n]);
        cnt[n].name = (char *)decode_reason_name(r);
        cnt[n].value = c->reasons[r];
        pc[n] = &cnt[n];
        n++;
    }
    m.n_discarded_reasons = n;
    m.discarded_reasons = pc;
    ev_emit(s, EV_INTERFACE_STATS, &m.base);
}

void ev_endpoint(struct ev_sink *s, const struct source *src, const struct endpoint *e,
                 uint64_t now_ms)
{
    Sonde__V1__Endpoint m = SONDE__V1__ENDPOINT__INIT;
    char mac[EV_MAC_STRLEN], ipbuf[ENDPOINT_MAX_IPS][EV_IP_STRLEN];
    char *ips[ENDPOINT_MAX_IPS];
    int i;

    if (!ev_enabled(s, EV_ENDPOINT))
        return;
    EV_STAMP(s, m, now_ms);
    ev_fmt_mac(mac, e->mac);
    for (i = 0; i < e->nip; i++) {
        ev_fmt_ip(ipbuf[i], e->ip[i].ip_version, e->ip[i].addr);
        ips[i] = ipbuf[i];
    }
    m.interface = src->name;
    m.mac = mac;
    m.n_ip = e->nip;
    m.ip = ips;
    m.first_seen_at = e->first_us / 1000;
    m.last_seen_at = e->last_us / 1000;
    m.packets = e->packets;
    m.bytes = e->bytes;
    m.hostname = (char *)e->hostname;
    ev_emit(s, EV_ENDPOINT, &m.base);
}
