/*
 * fuzz_packet.c - libFuzzer target: one input is one captured packet, run
 * through everything the agent does with a packet.
 *
 * The first byte picks the link type; the rest is the frame. The packet is
 * decoded, its packet-layer records (DNS headers included) are built and
 * packed, it is accounted to a flow, inspected by nDPI and parsed by the
 * application trackers (DNS, HTTP, DHCP; Tls events at detection's end);
 * every flow event that results is encoded as the exporter would. State (flows, nDPI, pending DNS
 * queries) carries over from input to input, as it does between the packets of a capture, and
 * packet time advances 10 ms per input so that timeouts fire.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "decode/decode.h"
#include "dpi/dhcp.h"
#include "dpi/dns.h"
#include "dpi/dpi.h"
#include "dpi/http.h"
#include "dpi/tls.h"
#include "events/flow_events.h"
#include "events/packet_events.h"
#include "flow/engine.h"
#include "flow/netset.h"

#define FUZZ_MAX_FLOWS 4096
#define FUZZ_QUEUE     1024
#define FUZZ_STEP_US   10000
#define S(x)           ((uint64_t)(x)*1000000ULL)

static const int link_types[] = {
    DECODE_DLT_EN10MB, DECODE_DLT_RAW,       DECODE_DLT_LINUX_SLL, DECODE_DLT_LINUX_SLL2,
    DECODE_DLT_NULL,   DECODE_DLT_PPP,       DECODE_DLT_C_HDLC,    DECODE_DLT_IPV4,
    DECODE_DLT_IPV6,   DECODE_DLT_PPP_ETHER,
};

struct fuzz {
    struct ev_sink sink;
    struct evq q;
    struct ev_batch batch;
    struct netset local;
    struct flow_engine eng;
    struct dpi *dpi;
    struct flow_app *app;
    struct dns_cache *cache;
    struct dns_tracker *dns;
    struct http_tracker *http;
    struct dhcp_tracker *dhcp;
    struct sbuf out;
    struct pkt pkt;
    uint64_t now_us, ether_id;
};

static void cb_report(void *ctx, struct flow *f)
{
    struct fuzz *z = ctx;

    ev_flow_queue(&z->sink, &z->batch, EV_FLOW, f, z->app, 0, z->eng.now_us);
    if (z->app && z->app->has_tls)
        tls_emit(&z->sink, f, z->app, z->eng.now_us);
    z->app = NULL;
}

static void cb_stats(void *ctx, struct flow *f)
{
    struct fuzz *z = ctx;

    ev_flow_queue(&z->sink, &z->batch, EV_FLOW_STATS, f, NULL, 0, z->eng.now_us);
}

static void cb_purge(void *ctx, struct flow *f, int reason)
{
    struct fuzz *z = ctx;

    http_flow_end(z->http, f);
    ev_flow_queue(&z->sink, &z->batch, EV_FLOW_PURGE, f, NULL, reason, z->eng.now_us);
}

static int cb_inspect(void *ctx, struct flow *f, const struct pkt *p)
{
    struct fuzz *z = ctx;

    return dpi_packet(z->dpi, f, p, &z->app);
}

static void cb_conclude(void *ctx, struct flow *f)
{
    struct fuzz *z = ctx;

    dpi_conclude(z->dpi, f, &z->app);
}

static void cb_payload(void *ctx, struct flow *f, const struct pkt *p, int side)
{
    struct fuzz *z = ctx;

    if (dns_port(&z->sink, p->sport, p->dport))
        dns_packet(z->dns, f, p, side);
    else if (p->ip_proto == 6)
        http_packet(z->http, f, p, side);
    else if (p->ip_proto == 17 && dhcp_port(p->sport, p->dport))
        dhcp_packet(z->dhcp, f, p);
}

static void cb_tick(void *ctx, uint64_t now_us)
{
    struct fuzz *z = ctx;

    dns_expire(z->dns, now_us);
    dhcp_expire(z->dhcp, now_us);
}

static const struct flow_engine_ops ops = {cb_report,   cb_stats,   cb_purge, cb_inspect,
                                           cb_conclude, cb_payload, cb_tick};

static struct fuzz *setup(void)
{
    struct fuzz *z = calloc(1, sizeof(*z));
    struct flow_settings fs;

    if (z == NULL)
        abort();
    z->sink.agent_id = (char *)"fuzz";
    z->sink.mask = EV_DEFAULT_MASK | EV_PACKET_MASK;
    z->sink.sampling_rate = 1;
    z->sink.q = &z->q;
    z->sink.dns_port[z->sink.n_dns_ports++] = 5300;
    netset_init(&z->local);
    memset(&fs, 0, sizeof(fs));
    fs.timeout_us[FLOW_LIST_SHORT] = S(30);
    fs.timeout_us[FLOW_LIST_LONG] = S(300);
    fs.timeout_us[FLOW_LIST_CLOSED] = S(10);
    fs.stats_interval_us = S(15);
    fs.max_flows = FUZZ_MAX_FLOWS;
    fs.local = &z->local;
    z->dpi = dpi_new(DPI_PACKETS_DEFAULT);
    z->cache = dns_cache_new(DNS_CACHE_SLOTS);
    z->dns = dns_tracker_new(&z->sink, z->cache);
    z->http = http_tracker_new(&z->sink);
    z->dhcp = dhcp_tracker_new(&z->sink);
    if (evq_init(&z->q, FUZZ_QUEUE) < 0 || netset_add_defaults(&z->local) < 0 || z->dpi == NULL ||
        z->cache == NULL || z->dns == NULL || z->http == NULL || z->dhcp == NULL ||
        flow_engine_init(&z->eng, &fs, &ops, z) < 0)
        abort();
    sbuf_init(&z->out);
    z->now_us = S(1700000000);
    return z;
}

/* What the exporter does with the queued events: encode the flow ones. */
static void drain(struct fuzz *z)
{
    struct evq_item *it, *next;

    ev_batch_flush(&z->sink, &z->batch);
    if (evq_depth(&z->q) == 0)
        return;
    for (it = evq_pop_all(&z->q, 1); it; it = next) {
        next = it->next;
        if (it->flags & EVQ_F_FLOW_SNAPSHOT) {
            sbuf_reset(&z->out);
            if (ev_flow_encode(&z->sink, it, &z->out) < 0)
                abort(); /* the agent's own snapshots always encode */
        }
        it->next = NULL;
        evq_free_list(it);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz *z;
    struct pkt *p;
    uint8_t *copy;
    int dlt;

    if (z == NULL)
        z = setup();
    if (size < 1)
        return 0;
    dlt = link_types[data[0] % (sizeof(link_types) / sizeof(link_types[0]))];
    /* a copy of exactly the frame, so that reading past it is caught */
    copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    z->now_us += FUZZ_STEP_US;
    p = &z->pkt;
    p->data = copy;
    p->caplen = (uint32_t)(size - 1);
    p->len = p->caplen;
    p->ts_us = z->now_us;
    decode_packet(p, dlt);
    ev_packet_layers(&z->sink, p, "fuzz", ++z->ether_id);
    if (p->reason == DECODE_OK && p->ip_version)
        flow_engine_packet(&z->eng, p, 0);
    drain(z);
    free(copy);
    return 0;
}
