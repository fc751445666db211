/*
 * agent.c - sets up and runs the pipeline described in agent.h.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "capture/source.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/queue.h"
#include "decode/decode.h"
#include "events/emit.h"
#include "events/flow_events.h"
#include "events/inventory.h"
#include "events/packet_events.h"
#include "event.h"
#include "export/export.h"
#include "export/rpcout.h"
#include "dpi/dhcp.h"
#include "dpi/dns.h"
#include "dpi/http.h"
#include "dpi/tls.h"
#include "dpi/dpi.h"
#include "flow/engine.h"

#define AGENT_MAX_SOURCES  EV_MAX_SOURCES
#define AGENT_RING_BYTES   (8u << 20) /* per worker */
#define AGENT_POLL_MS      250        /* live: wake at least this often */
#define AGENT_DISPATCH_CNT 4096       /* packets per pcap_dispatch call */
#define AGENT_CLOCK_EVERY  4096       /* packets between wall-clock checks */
#define US_PER_S           1000000ULL
#define AGENT_FILE_SEED    0x5eed5eedULL

struct agent;

struct worker {
    struct agent *a;
    int index;
    pthread_t thread;
    int started;
    struct flow_engine eng;
    struct pring ring;
    uint64_t enqueued;          /* written by the capture thread only */
    atomic_uint_fast64_t taken; /* written by the worker only */
    struct ev_batch batch;      /* flow events not yet handed to the exporter */
    struct pkt pkt;
    struct dpi *dpi;           /* NULL with --no-dpi */
    struct flow_app *app;      /* detection result for the flow being reported (dpi.h) */
    struct dns_tracker *dns;   /* NULL when neither DNS events nor the hint cache are wanted */
    struct http_tracker *http; /* NULL without http events */
    struct dhcp_tracker *dhcp; /* worker 0 only, which gets all of DHCP; NULL without dhcp events */
    struct flow_app *hint;     /* carries dns_host_name alone when detection has no result */
};

struct agent {
    const struct agent_settings *cfg;
    volatile sig_atomic_t *stop;
    struct ev_sink sink;
    struct evq evq;
    struct exporter exp;
    struct rpcout_cfg rpc_cfg;
    struct rpcout *rpc;
    struct netset local;
    struct source src[AGENT_MAX_SOURCES];
    int nsrc;
    int live;
    struct worker *w;
    struct flow_engine_ops ops;  /* the workers' flow engine callbacks */
    struct dns_cache *dns_cache; /* address -> name from DNS answers; NULL if unused */
    int nworkers;
    int workers_running;
    uint64_t dispatch_seed;
    struct pkt pkt;          /* capture thread's scratch */
    uint64_t packets;        /* read from all sources */
    long flow_skip;          /* packets to skip before the next one sampled for flows */
    long layer_skip;         /* the same for packet-layer records */
    uint64_t now_us;         /* capture clock: latest packet time */
    uint64_t next_stats_us;  /* interface_stats/endpoints, packet time */
    uint64_t next_tick_us;   /* workers: packet-time ticks (threads > 1) */
    uint64_t next_status_ms; /* agent_status, wall clock */
    uint64_t start_ms;
    char hostname[256];
};

static uint64_t wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- flow engine callbacks: run in the thread that owns the engine ---- */

/* The name DNS gave the flow's other side, into the result the flow event
 * carries (a result of its own when there is no detection). */
static struct flow_app *with_dns_name(struct worker *w, const struct flow *f)
{
    char name[DNS_NAME_MAX];
    struct flow_app *app = w->app;
    const uint8_t *other = f->key.addr[!f->local];

    if (!dns_cache_get(w->a->dns_cache, f->key.ip_version, other, w->eng.now_us, name))
        return app; /* dpi.c resets its result: dns_host is "" */
    if (app == NULL) {
        app = w->hint;
        app_reset(app);
    }
    app->dns_host = app_put(app, name, APP_HOST_MAX);
    return app;
}

static void cb_report(void *ctx, struct flow *f)
{
    struct worker *w = ctx;

    ev_flow_queue(&w->a->sink, &w->batch, EV_FLOW, f, with_dns_name(w, f), 0, w->eng.now_us);
    if (w->app && w->app->has_tls)
        tls_emit(&w->a->sink, f, w->app, w->eng.now_us);
    w->app = NULL; /* the event has its copy */
}

static void cb_stats(void *ctx, struct flow *f)
{
    struct worker *w = ctx;

    ev_flow_queue(&w->a->sink, &w->batch, EV_FLOW_STATS, f, NULL, 0, w->eng.now_us);
}

static void cb_purge(void *ctx, struct flow *f, int reason)
{
    struct worker *w = ctx;

    if (w->http)
        http_flow_end(w->http, f);
    ev_flow_queue(&w->a->sink, &w->batch, EV_FLOW_PURGE, f, NULL, reason, w->eng.now_us);
}

static int cb_inspect(void *ctx, struct flow *f, const struct pkt *p)
{
    struct worker *w = ctx;

    return dpi_packet(w->dpi, f, p, &w->app);
}

static void cb_conclude(void *ctx, struct flow *f)
{
    struct worker *w = ctx;

    dpi_conclude(w->dpi, f, &w->app);
}

static void cb_payload(void *ctx, struct flow *f, const struct pkt *p, int side)
{
    struct worker *w = ctx;

    if (w->dns && dns_port(&w->a->sink, p->sport, p->dport))
        dns_packet(w->dns, f, p, side);
    else if (w->http && p->ip_proto == 6)
        http_packet(w->http, f, p, side);
    else if (w->dhcp && p->ip_proto == 17 && dhcp_port(p->sport, p->dport))
        dhcp_packet(w->dhcp, f, p);
}

static void cb_tick(void *ctx, uint64_t now_us)
{
    struct worker *w = ctx;

    if (w->dns)
        dns_expire(w->dns, now_us);
    if (w->dhcp)
        dhcp_expire(w->dhcp, now_us);
}

/* Only what is in use is called: a flow-only agent pays for no hooks. */
static void setup_ops(struct agent *a)
{
    a->ops.report = cb_report;
    a->ops.stats = cb_stats;
    a->ops.purge = cb_purge;
    if (a->cfg->no_dpi)
        return;
    a->ops.inspect = cb_inspect;
    a->ops.conclude = cb_conclude;
    if (a->dns_cache || ev_enabled(&a->sink, EV_DNS) || ev_enabled(&a->sink, EV_HTTP) ||
        ev_enabled(&a->sink, EV_DHCP)) {
        a->ops.payload = cb_payload;
        a->ops.tick = cb_tick;
    }
}

/* ---- workers (threads > 1) ---- */

static void worker_idle(unsigned *spins)
{
    struct timespec ts = {0, 50000};

    if (++*spins < 64) {
        sched_yield();
        return;
    }
    if (*spins > 1024)
        ts.tv_nsec = 1000000;
    nanosleep(&ts, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct agent *a = w->a;
    unsigned spins = 0;

    for (;;) {
        struct pring_rec *r = pring_peek(&w->ring);

        if (r == NULL) {
            ev_batch_flush(&a->sink, &w->batch); /* nothing to do: publish */
            worker_idle(&spins);
            continue;
        }
        spins = 0;
        if (r->kind == PRING_END) {
            pring_release(&w->ring, r);
            break;
        }
        if (r->kind == PRING_PACKET) {
            w->pkt.data = r->data;
            w->pkt.caplen = r->caplen;
            w->pkt.len = r->len;
            w->pkt.ts_us = r->ts_us;
            if (decode_packet(&w->pkt, a->src[r->source].dlt) == DECODE_OK && w->pkt.ip_version)
                flow_engine_packet(&w->eng, &w->pkt, r->source);
        } else if (r->kind == PRING_TICK) {
            flow_engine_advance(&w->eng, r->ts_us);
        }
        pring_release(&w->ring, r);
        atomic_fetch_add_explicit(&w->taken, 1, memory_order_relaxed);
    }
    flow_engine_finish(&w->eng);
    dns_finish(w->dns);
    dhcp_finish(w->dhcp);
    ev_batch_flush(&a->sink, &w->batch);
    return NULL;
}

/*
 * Which worker gets a packet: a hash of the two addresses (ordered, so it
 * is symmetric) and the protocol. Ports are left out on purpose: later IP
 * fragments have none, and they must reach the worker that saw the first.
 */
static int pick_worker(const struct agent *a, const struct pkt *p)
{
    uint8_t k[33];
    size_t alen = p->ip_version == 4 ? 4 : 16;
    const uint8_t *s = p->data + p->src_off, *d = p->data + p->dst_off;

    /* A DHCP transaction spans flows (the client broadcasts from 0.0.0.0,
     * the server answers from its address): one worker sees all of DHCP,
     * in capture order. */
    if (p->ip_proto == 17 && dhcp_port(p->sport, p->dport))
        return 0;
    if (memcmp(s, d, alen) > 0) {
        const uint8_t *t = s;
        s = d;
        d = t;
    }
    memcpy(k, s, alen);
    memcpy(k + alen, d, alen);
    k[2 * alen] = p->ip_proto;
    return (int)(hash_bytes(k, 2 * alen + 1, a->dispatch_seed) % (uint64_t)a->nworkers);
}

/* Put a record on a worker's ring. Files wait for room (no loss); live
 * capture drops and counts, so the kernel ring never stalls. */
static struct pring_rec *ring_reserve(struct worker *w, uint32_t n, int wait)
{
    unsigned spins = 0;
    struct pring_rec *r;

    while ((r = pring_reserve(&w->ring, n)) == NULL) {
        if (!wait)
            return NULL;
        worker_idle(&spins);
    }
    return r;
}

static void send_control(struct agent *a, int kind, uint64_t ts_us)
{
    int i;

    for (i = 0; i < a->nworkers; i++) {
        /* Reading a file, every tick is delivered (results must not depend
         * on timing); live, a tick may be skipped: the next carries the time. */
        struct pring_rec *r = ring_reserve(&a->w[i], 0, kind == PRING_END || !a->live);

        if (r == NULL)
            continue;
        r->kind = (uint16_t)kind;
        r->ts_us = ts_us;
        r->caplen = r->len = 0;
        r->source = 0;
        pring_commit(&a->w[i].ring, r);
        a->w[i].enqueued++;
    }
}

static void dispatch(struct agent *a, struct source *src, const struct pkt *p)
{
    struct worker *w;
    struct pring_rec *r;

    if (a->nworkers == 1) {
        flow_engine_packet(&a->w[0].eng, p, src->index);
        return;
    }
    w = &a->w[pick_worker(a, p)];
    r = ring_reserve(w, p->caplen, !a->live);
    if (r == NULL) {
        src->c.queue_dropped++;
        return;
    }
    r->kind = PRING_PACKET;
    r->source = src->index;
    r->caplen = p->caplen;
    r->len = p->len;
    r->ts_us = p->ts_us;
    memcpy(r->data, p->data, p->caplen);
    pring_commit(&w->ring, r);
    w->enqueued++;
}

/* ---- periodic inventory events (capture thread) ---- */

/* With one inline worker, hand its batched flow events over before the
 * capture thread emits anything itself, so the output keeps packet order. */
static void flush_inline(struct agent *a)
{
    if (a->nworkers == 1)
        ev_batch_flush(&a->sink, &a->w[0].batch);
}

static void collect_flow_counters(struct agent *a, int source, struct flow_source_counters *out)
{
    int i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < a->nworkers; i++) {
        /* Read while workers run: these are monotonic counters and a
         * slightly stale value is acceptable in a periodic report. */
        out->tcp_seq_errors += a->w[i].eng.src[source].tcp_seq_errors;
        out->flow_dropped += a->w[i].eng.src[source].flow_dropped;
    }
}

static void emit_endpoints(struct agent *a, struct source *s, uint64_t now_ms)
{
    size_t i;

    for (i = 0; i < s->ep.count; i++) {
        struct endpoint *e = &s->ep.slot[s->ep.used[i]];

        if (e->dirty) {
            ev_endpoint(&a->sink, s, e, now_ms);
            e->dirty = 0;
        }
    }
}

static void emit_source_stats(struct agent *a, uint64_t now_ms)
{
    struct flow_source_counters fc;
    int i;

    flush_inline(a);
    for (i = 0; i < a->nsrc; i++) {
        source_read_stats(&a->src[i]);
        collect_flow_counters(a, i, &fc);
        ev_interface_stats(&a->sink, &a->src[i], &fc, now_ms);
        emit_endpoints(a, &a->src[i], now_ms);
    }
}

static uint64_t rusage_fill(struct agent_status_vals *v)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    v->cpu_user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    v->cpu_system = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
#if defined(__APPLE__)
    v->maxrss_kb = (uint64_t)ru.ru_maxrss / 1024; /* bytes there */
#else
    v->maxrss_kb = (uint64_t)ru.ru_maxrss;
#endif
    return 1;
}

static void emit_status(struct agent *a)
{
    struct agent_status_vals v;
    struct rpcout_stats rpc;
    uint64_t now = wall_ms();
    int i;

    flush_inline(a);
    memset(&v, 0, sizeof(v));
    rusage_fill(&v);
    v.uptime_s = (now - a->start_ms) / 1000;
    v.cpu_cores = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
    v.packets = a->packets;
    for (i = 0; i < a->nsrc; i++) {
        v.capture_dropped += a->src[i].c.capture_dropped;
        v.queue_dropped += a->src[i].c.queue_dropped;
        v.discarded += a->src[i].c.discarded;
    }
    v.nworkers = (uint32_t)a->nworkers;
    for (i = 0; i < a->nworkers; i++) {
        const struct flow_engine_counters *c = &a->w[i].eng.c;

        v.flows.expired += c->expired;
        v.flows.purged += c->purged;
        v.flows.evicted += c->evicted;
        v.flows.closed += c->closed;
        v.flows_active += a->w[i].eng.table.count;
        v.dns_malformed += dns_malformed(a->w[i].dns); /* read while workers run, as above */
        v.worker_queue_depth[i] =
            (uint32_t)(a->w[i].enqueued -
                       atomic_load_explicit(&a->w[i].taken, memory_order_relaxed));
    }
    v.dhcp_malformed = dhcp_malformed(a->w[0].dhcp);
    v.flow_table_size = (uint64_t)a->cfg->max_flows;
    v.flow_bytes = v.flows_active * sizeof(struct flow);
    v.event_queue_depth = (uint32_t)evq_depth(&a->evq);
    if (a->rpc) {
        rpcout_stats(a->rpc, &rpc);
        v.rpc = &rpc;
    }
    ev_agent_status(&a->sink, &v, now);
}

/* interface_stats and endpoints, every --stats-interval of packet time. */
static void stats_timer(struct agent *a)
{
    uint64_t iv = (uint64_t)a->cfg->stats_interval * US_PER_S;

    if (iv == 0 || a->now_us == 0)
        return;
    if (a->next_stats_us == 0)
        a->next_stats_us = a->now_us + iv;
    if (a->now_us >= a->next_stats_us) {
        emit_source_stats(a, a->now_us / 1000);
        while (a->next_stats_us <= a->now_us)
            a->next_stats_us += iv;
    }
}

/* agent_status, every --status-interval of wall-clock time. */
static void status_timer(struct agent *a)
{
    uint64_t now;

    if (a->cfg->status_interval == 0)
        return;
    now = wall_ms();
    if (now >= a->next_status_ms) {
        emit_status(a);
        a->next_status_ms = now + (uint64_t)a->cfg->status_interval * 1000;
    }
}

/* ---- the per-packet path of the capture thread ---- */

static void learn_endpoint(struct agent *a, struct source *s, const struct pkt *p)
{
    static const uint8_t zero_mac[6];
    const uint8_t *smac, *addr = NULL;
    struct endpoint *e;
    int v = p->ip_version, is_new;

    if (p->eth_off < 0)
        return;
    smac = p->data + p->eth_off + 6;
    if ((smac[0] & 1) || memcmp(smac, zero_mac, sizeof(zero_mac)) == 0)
        return; /* a group address, or loopback's zero address: not a device */
    if (v && p->tunnel_depth == 0 && netset_contains(&a->local, v, p->data + p->src_off))
        addr = p->data + p->src_off;
    if (addr == NULL)
        return;
    e = endpoint_note(&s->ep, smac, v, addr, p->len, p->ts_us, &is_new);
    if (e && is_new) {
        ev_endpoint(&a->sink, s, e, p->ts_us / 1000);
        e->dirty = 0;
    }
}

/* DHCP names a device and gives it its address: the inventory learns the
 * name from the client's messages and the address from the server's ACK. */
static void learn_dhcp(struct agent *a, struct source *s, const struct pkt *p)
{
    static const uint8_t zero[4];
    struct dhcp_msg m;
    struct endpoint *e = NULL;
    int changed = 0;

    if (dhcp_of_packet(p, &m) < 0 || m.htype != 1 || m.hlen != 6 || (m.chaddr[0] & 1))
        return;
    if (m.op == 1 && m.hostname[0])
        e = endpoint_learn(&s->ep, m.chaddr, NULL, m.hostname, p->ts_us, &changed);
    else if (m.op == 2 && m.type == DHCP_ACK && memcmp(m.yiaddr, zero, 4) != 0)
        e = endpoint_learn(&s->ep, m.chaddr, m.yiaddr, NULL, p->ts_us, &changed);
    if (e && changed) {
        ev_endpoint(&a->sink, s, e, p->ts_us / 1000);
        e->dirty = 0;
    }
}

/* 1-in-n sampling by countdown: packets 1, n+1, 2n+1, ... (no division
 * on the packet path). */
static int sampled(long *skip, long n)
{
    if (*skip > 0) {
        (*skip)--;
        return 0;
    }
    *skip = n - 1;
    return 1;
}

struct capture_ctx {
    struct agent *a;
    struct source *s;
};

static void on_packet(unsigned char *user, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
    struct capture_ctx *cc = (struct capture_ctx *)user;
    struct agent *a = cc->a;
    struct source *s = cc->s;
    struct pkt *p = &a->pkt;

    p->data = bytes;
    p->caplen = h->caplen;
    p->len = h->len < h->caplen ? h->caplen : h->len;
    p->ts_us = (uint64_t)h->ts.tv_sec * US_PER_S + (uint64_t)h->ts.tv_usec;
    decode_packet(p, s->dlt);
    source_count(&s->c, p, s->dlt);
    a->packets++;
    if (p->ts_us > a->now_us)
        a->now_us = p->ts_us;
    if ((a->sink.mask & EV_PACKET_MASK) && sampled(&a->layer_skip, a->cfg->packet_sample))
        ev_packet_layers(&a->sink, p, s->name, a->packets);
    if (p->reason != DECODE_OK || p->ip_version == 0)
        goto timers;
    if (ev_enabled(&a->sink, EV_ENDPOINT)) {
        learn_endpoint(a, s, p);
        if (p->ip_proto == 17 && dhcp_port(p->sport, p->dport))
            learn_dhcp(a, s, p);
    }
    if (sampled(&a->flow_skip, a->cfg->sample))
        dispatch(a, s, p);
timers:
    /* A worker's clock moves with its own packets only; every second of
     * packet time all of them hear the time, in order with their packets,
     * so idle flows expire on schedule and the result does not depend on
     * thread timing. */
    if (a->nworkers > 1 && a->now_us >= a->next_tick_us) {
        if (a->next_tick_us)
            send_control(a, PRING_TICK, a->now_us);
        a->next_tick_us = a->now_us + US_PER_S;
    }
    if (a->now_us >= a->next_stats_us)
        stats_timer(a);
    if ((a->packets & (AGENT_CLOCK_EVERY - 1)) == 0)
        status_timer(a);
}

/* ---- reading the sources ---- */

static int read_file(struct agent *a, struct source *s)
{
    struct capture_ctx cc = {a, s};
    /* a pipe may deliver slowly (tcpdump -w - | sonde-agent -r -): a
     * dispatch of one packet returns to look at the clock after each */
    int n, cnt = strcmp(s->name, "-") == 0 ? 1 : AGENT_DISPATCH_CNT;

    while (!*a->stop) {
        n = source_dispatch(s, cnt, on_packet, (unsigned char *)&cc);
        if (cnt == 1)
            status_timer(a);
        flush_inline(a);
        if (n == 0 || n == PCAP_ERROR_BREAK)
            return 0; /* end of file */
        if (n < 0 && *a->stop)
            return 0; /* a signal interrupted a read from a pipe: a normal stop */
        if (n < 0) {
            /* A truncated or corrupt file: keep what was read, say where it stopped. */
            log_error("%s: read error after %llu packets: %s", s->name,
                      (unsigned long long)s->c.raw, source_geterr(s));
            return -1;
        }
    }
    return 0;
}

static void tick(struct agent *a, uint64_t now_us)
{
    if (now_us > a->now_us)
        a->now_us = now_us;
    if (a->nworkers == 1)
        flow_engine_advance(&a->w[0].eng, a->now_us);
    else
        send_control(a, PRING_TICK, a->now_us);
    stats_timer(a);
    status_timer(a);
}

static int read_live(struct agent *a)
{
    struct pollfd pfd[AGENT_MAX_SOURCES];
    struct capture_ctx cc[AGENT_MAX_SOURCES];
    int i, rc = 0;

    for (i = 0; i < a->nsrc; i++) {
        pfd[i].fd = a->src[i].fd;
        pfd[i].events = POLLIN;
        cc[i].a = a;
        cc[i].s = &a->src[i];
    }
    while (!*a->stop) {
        int n = poll(pfd, (nfds_t)a->nsrc, AGENT_POLL_MS);

        if (n < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        for (i = 0; i < a->nsrc && n > 0; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            if (pcap_dispatch(a->src[i].pcap, AGENT_DISPATCH_CNT, on_packet,
                              (unsigned char *)&cc[i]) == PCAP_ERROR) {
                log_error("%s: %s", a->src[i].name, pcap_geterr(a->src[i].pcap));
                rc = -1;
                *a->stop = 1;
            }
        }
        tick(a, wall_ms() * 1000);
        flush_inline(a);
    }
    return rc;
}

/* ---- setup ---- */

static int parse_events(struct agent *a, const char *list)
{
    char buf[1024], *tok, *save = NULL;

    a->sink.mask = EV_DEFAULT_MASK;
    if (list == NULL)
        return 0;
    if (strlen(list) >= sizeof(buf)) {
        log_error("--events: list too long");
        return -1;
    }
    strcpy(buf, list);
    a->sink.mask = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int tag;

        if (strcmp(tok, "default") == 0) {
            a->sink.mask |= EV_DEFAULT_MASK;
        } else if (strcmp(tok, "all") == 0) {
            a->sink.mask |= EV_DEFAULT_MASK | EV_PACKET_MASK;
        } else if ((tag = schema_event_tag_by_name(tok)) > 0 && tag <= EV_TAG_MAX) {
            a->sink.mask |= EV_MASK(tag);
        } else {
            log_error("--events: unknown event type '%s' (see docs/events.md)", tok);
            return -1;
        }
    }
    return 0;
}

static int open_sources(struct agent *a)
{
    const struct agent_settings *c = a->cfg;
    struct capture_opts o = {(int)c->snaplen,   !c->no_promisc, c->immediate,
                             (int)c->buffer_mb, AGENT_POLL_MS,  c->filter};
    char err[SOURCE_ERR_MAX];
    size_t i;

    a->live = c->interfaces.n > 0;
    for (i = 0; i < c->interfaces.n + c->files.n; i++) {
        struct source *s = &a->src[a->nsrc];
        int rc = a->live ? source_open_live(s, c->interfaces.v[i], &o, err)
                         : source_open_file(s, c->files.v[i], &o, err);

        if (rc < 0) {
            log_error("%s", err);
            a->nsrc++; /* so it is closed */
            return -1;
        }
        s->index = (uint16_t)a->nsrc;
        a->sink.iface[a->nsrc] = s->name;
        a->nsrc++;
        source_add_local_nets(s, &a->local);
    }
    return 0;
}

static int setup_local(struct agent *a)
{
    size_t i;

    netset_init(&a->local);
    if (!a->cfg->no_default_local_nets && netset_add_defaults(&a->local) < 0)
        return -1;
    for (i = 0; i < a->cfg->local_nets.n; i++) {
        if (netset_add(&a->local, a->cfg->local_nets.v[i]) < 0) {
            log_error("--local-net: bad network '%s'", a->cfg->local_nets.v[i]);
            return -1;
        }
    }
    return 0;
}

static int setup_workers(struct agent *a)
{
    const struct agent_settings *c = a->cfg;
    struct flow_settings fs;
    int i;

    a->nworkers = c->threads > 0 ? (int)c->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (a->nworkers < 1)
        a->nworkers = 1;
    if (a->nworkers > FLOW_MAX_SOURCES)
        a->nworkers = FLOW_MAX_SOURCES;
    memset(&fs, 0, sizeof(fs));
    fs.timeout_us[FLOW_LIST_SHORT] = (uint64_t)c->udp_timeout * US_PER_S;
    fs.timeout_us[FLOW_LIST_LONG] = (uint64_t)c->tcp_timeout * US_PER_S;
    fs.timeout_us[FLOW_LIST_CLOSED] = (uint64_t)c->closed_timeout * US_PER_S;
    fs.stats_interval_us = (uint64_t)c->flow_stats_interval * US_PER_S;
    fs.max_flows = (size_t)c->max_flows / (size_t)a->nworkers;
    if (fs.max_flows < 16)
        fs.max_flows = 16;
    fs.local = &a->local;
    /* Flow events name the other side from DNS answers: keep the cache
     * only when they are wanted. Like nDPI, DNS is application-layer work,
     * which --no-dpi leaves out altogether. */
    if (!c->no_dpi && ev_enabled(&a->sink, EV_FLOW) &&
        (a->dns_cache = dns_cache_new(DNS_CACHE_SLOTS)) == NULL)
        return -1;
    setup_ops(a);
    a->w = calloc((size_t)a->nworkers, sizeof(*a->w));
    if (a->w == NULL)
        return -1;
    for (i = 0; i < a->nworkers; i++) {
        struct worker *w = &a->w[i];

        w->a = a;
        w->index = i;
        if (!c->no_dpi && (w->dpi = dpi_new((unsigned)c->dpi_packets)) == NULL) {
            log_error("cannot start nDPI");
            return -1;
        }
        if (!c->no_dpi && (a->dns_cache || ev_enabled(&a->sink, EV_DNS)) &&
            (w->dns = dns_tracker_new(&a->sink, a->dns_cache)) == NULL)
            return -1;
        if (!c->no_dpi && ev_enabled(&a->sink, EV_HTTP) &&
            (w->http = http_tracker_new(&a->sink)) == NULL)
            return -1;
        if (!c->no_dpi && i == 0 && ev_enabled(&a->sink, EV_DHCP) &&
            (w->dhcp = dhcp_tracker_new(&a->sink)) == NULL)
            return -1;
        if (a->dns_cache && (w->hint = calloc(1, sizeof(*w->hint))) == NULL)
            return -1;
        if (flow_engine_init(&w->eng, &fs, &a->ops, w) < 0)
            return -1;
        if (a->nworkers > 1 && pring_init(&w->ring, AGENT_RING_BYTES) < 0)
            return -1;
    }
    /* Live, a random seed keeps crafted traffic from piling onto one
     * worker; reading a file, a fixed one makes reruns identical. */
    a->dispatch_seed = a->live ? hash_random_seed() : AGENT_FILE_SEED;
    return 0;
}

static int start_workers(struct agent *a)
{
    int i;

    if (a->nworkers == 1)
        return 0;
    for (i = 0; i < a->nworkers; i++) {
        if (pthread_create(&a->w[i].thread, NULL, worker_main, &a->w[i]) != 0) {
            log_error("cannot start worker thread %d", i);
            return -1;
        }
        a->w[i].started = 1;
        a->workers_running = 1;
    }
    return 0;
}

static void stop_workers(struct agent *a)
{
    int i;

    if (a->w == NULL)
        return;
    if (a->nworkers == 1) {
        flow_engine_finish(&a->w[0].eng);
        dns_finish(a->w[0].dns);
        dhcp_finish(a->w[0].dhcp);
        flush_inline(a);
        return;
    }
    if (!a->workers_running)
        return;
    send_control(a, PRING_END, a->now_us);
    for (i = 0; i < a->nworkers; i++)
        if (a->w[i].started)
            pthread_join(a->w[i].thread, NULL);
    a->workers_running = 0;
}

static void free_workers(struct agent *a)
{
    int i;

    if (a->w == NULL)
        return;
    for (i = 0; i < a->nworkers; i++) {
        flow_engine_destroy(&a->w[i].eng);
        dpi_free(a->w[i].dpi);
        dns_tracker_free(a->w[i].dns);
        http_tracker_free(a->w[i].http);
        dhcp_tracker_free(a->w[i].dhcp);
        free(a->w[i].hint);
        pring_destroy(&a->w[i].ring);
        ev_batch_free(&a->w[i].batch);
    }
    free(a->w);
    a->w = NULL;
    dns_cache_free(a->dns_cache);
    a->dns_cache = NULL;
}

static int drop_privileges(const char *user)
{
    struct passwd *pw;

    if (user == NULL)
        return 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        log_error("--user: no such user '%s'", user);
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_error("--user %s: cannot drop privileges: %s", user, strerror(errno));
        return -1;
    }
    log_info("running as %s", user);
    return 0;
}

static int parse_dns_ports(struct agent *a)
{
    const struct config_list *l = &a->cfg->dns_ports;
    size_t i;

    if (l->n > EV_MAX_DNS_PORTS) {
        log_error("--dns-port: at most %d ports", EV_MAX_DNS_PORTS);
        return -1;
    }
    for (i = 0; i < l->n; i++) {
        char *end;
        long v = strtol(l->v[i], &end, 10);

        if (*l->v[i] == '\0' || *end != '\0' || v < 1 || v > 65535) {
            log_error("--dns-port: '%s' is not a port number", l->v[i]);
            return -1;
        }
        a->sink.dns_port[a->sink.n_dns_ports++] = (uint16_t)v;
    }
    return 0;
}

static int setup_sink(struct agent *a)
{
    const struct agent_settings *c = a->cfg;

    if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
        strcpy(a->hostname, "unknown");
    a->sink.agent_id = c->agent_id ? c->agent_id : a->hostname;
    a->sink.sampling_rate = (uint32_t)c->sample;
    a->sink.cid_seed = (uint16_t)c->cid_seed;
    a->sink.q = &a->evq;
    if (parse_dns_ports(a) < 0)
        return -1;
    atomic_init(&a->sink.events, 0);
    atomic_init(&a->sink.dropped, 0);
    if (evq_init(&a->evq, (size_t)c->queue_size) < 0)
        return -1;
    return parse_events(a, c->events);
}

/* --push, --listen and their TLS settings -> a->rpc_cfg, checked. */
static int rpc_settings(struct agent *a)
{
    const struct agent_settings *c = a->cfg;
    struct rpcout_cfg *r = &a->rpc_cfg;
    char err[RPC_ERR_MAX];
    size_t i;

    memset(r, 0, sizeof(*r));
    if (c->push.n > RPCOUT_MAX_PUSH) {
        log_error("at most %d --push collectors", RPCOUT_MAX_PUSH);
        return -1;
    }
    for (i = 0; i < c->push.n; i++)
        r->push[r->npush++] = c->push.v[i];
    r->listen = c->listen;
    r->tls = (struct rpc_tls){c->tls_cert, c->tls_key, c->tls_ca, c->cleartext};
    r->queue_bytes = (size_t)c->push_queue_mb << 20;
    r->spool_dir = c->spool_dir;
    r->spool_bytes = (uint64_t)c->spool_mb << 20;
    r->drain_ms = (uint32_t)c->push_drain * 1000;
    r->sub_queue_events = (uint32_t)c->subscriber_queue;
    r->stop = a->stop;
    if (c->cleartext && !c->listen) {
        log_error("--insecure-cleartext is for --listen; for --push use a grpc:// URL");
        return -1;
    }
    if (rpcout_check(r, c->cleartext_anywhere, err) < 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* Everything a user can get wrong on the command line, checked before
 * anything is opened: these exit with 2, runtime failures with 1. */
static int check_usage(struct agent *a)
{
    const struct agent_settings *c = a->cfg;
    char err[EXPORT_ERR_MAX];
    size_t i;

    if (c->interfaces.n && c->files.n) {
        log_error("use either -i or -r, not both: live and file time cannot share one clock");
        return -1;
    }
    if (c->interfaces.n + c->files.n == 0) {
        log_error("nothing to capture: give -i IFACE or -r FILE (see --help)");
        return -1;
    }
    if (c->interfaces.n + c->files.n > AGENT_MAX_SOURCES) {
        log_error("at most %d sources", AGENT_MAX_SOURCES);
        return -1;
    }
    for (i = 0; i < c->outputs.n; i++) {
        if (export_check(c->outputs.v[i], err) < 0) {
            log_error("%s", err);
            return -1;
        }
    }
    return rpc_settings(a);
}

static int setup_outputs(struct agent *a)
{
    char err[EXPORT_ERR_MAX];
    size_t i;

    if (a->rpc_cfg.npush || a->rpc_cfg.listen) {
        a->rpc_cfg.wait = !a->live; /* a file is replayed without loss */
        a->rpc = rpcout_start(&a->rpc_cfg, err);
        if (a->rpc == NULL) {
            log_error("%s", err);
            return -1;
        }
        a->exp.rpc = a->rpc;
        if (a->cfg->outputs.n == 0)
            return 0; /* gRPC only */
    }
    if (a->cfg->outputs.n == 0)
        return export_add(&a->exp, "json:-", err);
    for (i = 0; i < a->cfg->outputs.n; i++) {
        if (export_add(&a->exp, a->cfg->outputs.v[i], err) < 0) {
            log_error("%s", err);
            return -1;
        }
    }
    return 0;
}

static int run_capture(struct agent *a)
{
    int i, rc = 0;

    if (a->live)
        return read_live(a);
    for (i = 0; i < a->nsrc && !*a->stop; i++) {
        log_info("reading %s", a->src[i].name);
        if (read_file(a, &a->src[i]) < 0)
            rc = -1;
    }
    return rc;
}

static void finish(struct agent *a)
{
    stop_workers(a);
    emit_source_stats(a, a->now_us ? a->now_us / 1000 : wall_ms());
    emit_status(a);
}

static void log_summary(struct agent *a)
{
    uint64_t flows = 0, disc = 0;
    int i;

    for (i = 0; i < a->nworkers; i++)
        flows += a->w[i].eng.c.created;
    for (i = 0; i < a->nsrc; i++)
        disc += a->src[i].c.discarded;
    log_info("%llu packets, %llu discarded, %llu flows, %llu events, %llu events dropped",
             (unsigned long long)a->packets, (unsigned long long)disc, (unsigned long long)flows,
             (unsigned long long)atomic_load(&a->sink.events),
             (unsigned long long)atomic_load(&a->sink.dropped));
}

int agent_run(const struct agent_settings *cfg, volatile sig_atomic_t *stop)
{
    struct agent *a = calloc(1, sizeof(*a));
    int rc = 1, i, capture_rc = 0;

    if (a == NULL) {
        log_error("out of memory");
        return 1;
    }
    a->cfg = cfg;
    a->stop = stop;
    a->start_ms = wall_ms();
    a->next_status_ms = a->start_ms + (uint64_t)cfg->status_interval * 1000;
    if (setup_sink(a) < 0 || setup_local(a) < 0 || check_usage(a) < 0) {
        rc = 2;
        goto out;
    }
    if (open_sources(a) < 0 || setup_outputs(a) < 0)
        goto out;
    a->sink.wait = !a->live;
    if (drop_privileges(cfg->user) < 0 || setup_workers(a) < 0)
        goto out;
    if (export_start(&a->exp, &a->evq, &a->sink) < 0) {
        log_error("cannot start the exporter thread");
        goto out;
    }
    ev_agent_hello(&a->sink, a->hostname, a->start_ms, (uint32_t)a->nworkers, !a->cfg->no_dpi,
                   wall_ms());
    for (i = 0; i < a->nsrc; i++)
        ev_interface(&a->sink, &a->src[i], wall_ms());
    if (start_workers(a) < 0)
        goto out;
    capture_rc = run_capture(a);
    finish(a);
    log_summary(a);
    rc = capture_rc < 0 ? 1 : 0;
out:
    if (a->workers_running)
        stop_workers(a); /* error path: no worker may outlive us */
    evq_close(&a->evq);
    if (export_join(&a->exp) < 0)
        rc = 1;
    if (rpcout_stop(a->rpc) < 0)
        rc = 1;
    free_workers(a);
    for (i = 0; i < a->nsrc; i++)
        source_close(&a->src[i]);
    evq_destroy(&a->evq);
    free(a);
    return rc;
}
