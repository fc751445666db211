/*
 * test_flow.c - the flow engine: keys, table, timeouts, eviction, TCP
 * state, local/other classification, fragments, Community ID, netsets.
 *
 * Packets are built directly as struct pkt (the decoder has its own
 * tests): a small buffer holds the addresses and the offsets point at it.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/sha1.h"
#include "flow/community_id.h"
#include "flow/engine.h"
#include "flow/netset.h"

#define S(x) ((uint64_t)(x)*1000000ULL)

struct recorder {
    int reports, stats, purges;
    uint8_t stats_seen[256]; /* by the flow's side-0 port (test_flow_stats_rounds) */
    int last_reason;
    uint64_t last_bytes[2], last_pkts[2];
    uint8_t last_local, last_other_type, last_origin, last_state;
    uint32_t retransmits, seq_errors;
    uint64_t rtt_us;
};

static void rec_report(void *ctx, struct flow *f)
{
    struct recorder *r = ctx;

    r->reports++;
    r->last_local = f->local;
    r->last_other_type = f->other_type;
    r->last_origin = f->origin;
}

static void rec_stats(void *ctx, struct flow *f)
{
    struct recorder *r = ctx;

    r->stats++;
    if (f->key.port[0] < sizeof(r->stats_seen))
        r->stats_seen[f->key.port[0]]++;
}

static void rec_purge(void *ctx, struct flow *f, int reason)
{
    struct recorder *r = ctx;

    r->purges++;
    r->last_reason = reason;
    memcpy(r->last_bytes, f->bytes, sizeof(r->last_bytes));
    memcpy(r->last_pkts, f->pkts, sizeof(r->last_pkts));
    r->last_state = f->tcp_state;
    r->retransmits = f->retransmits;
    r->seq_errors = f->seq_errors;
    r->rtt_us = f->rtt_us;
}

static const struct flow_engine_ops rec_ops = {rec_report, rec_stats, rec_purge, NULL, NULL,
                                               NULL, NULL};

/* A stand-in detector: detection ends at a flow's third packet. */
static int inspected, concluded;

static int rec_inspect(void *ctx, struct flow *f, const struct pkt *p)
{
    (void)ctx;
    (void)p;
    inspected++;
    return f->pkts[0] + f->pkts[1] >= 3;
}

static void rec_conclude(void *ctx, struct flow *f)
{
    (void)ctx;
    (void)f;
    concluded++;
}

static const struct flow_engine_ops dpi_ops = {rec_report, rec_stats, rec_purge, rec_inspect,
                                               rec_conclude, NULL, NULL};

struct fixture {
    struct flow_engine e;
    struct netset local;
    struct recorder r;
    uint8_t buf[64];
    struct pkt p;
};

static void setup_engine(struct fixture *fx, size_t max_flows)
{
    struct flow_settings fs;

    memset(fx, 0, sizeof(*fx));
    netset_init(&fx->local);
    assert_int_equal(netset_add_defaults(&fx->local), 0);
    memset(&fs, 0, sizeof(fs));
    fs.timeout_us[FLOW_LIST_SHORT] = S(30);
    fs.timeout_us[FLOW_LIST_LONG] = S(300);
    fs.timeout_us[FLOW_LIST_CLOSED] = S(10);
    fs.stats_interval_us = S(15);
    fs.max_flows = max_flows;
    fs.local = &fx->local;
    assert_int_equal(flow_engine_init(&fx->e, &fs, &rec_ops, &fx->r), 0);
}

/* An IPv4 packet from src:sport to dst:dport at time t (seconds). */
static struct pkt *mk(struct fixture *fx, const char *src, uint16_t sport, const char *dst,
                      uint16_t dport, uint8_t proto, double t, uint32_t len)
{
    struct pkt *p = &fx->p;

    memset(p, 0, sizeof(*p));
    memset(fx->buf, 0, sizeof(fx->buf));
    assert_int_equal(inet_pton(AF_INET, src, fx->buf), 1);
    assert_int_equal(inet_pton(AF_INET, dst, fx->buf + 16), 1);
    p->data = fx->buf;
    p->caplen = sizeof(fx->buf);
    p->len = len;
    p->ts_us = (uint64_t)(t * 1e6 + 0.5);
    p->eth_off = -1;
    p->ip_version = 4;
    p->ip_proto = proto;
    p->src_off = 0;
    p->dst_off = 16;
    p->l4_off = 40;
    p->sport = sport;
    p->dport = dport;
    return p;
}

static void tcp(struct fixture *fx, const char *src, uint16_t sport, const char *dst,
                uint16_t dport, uint8_t flags, uint32_t seq, uint32_t paylen, double t)
{
    struct pkt *p = mk(fx, src, sport, dst, dport, 6, t, 54 + paylen);

    p->tcp_flags = flags;
    p->tcp_seq = seq;
    p->payload_len = paylen;
    flow_engine_packet(&fx->e, p, 0);
}

static void udp(struct fixture *fx, const char *src, uint16_t sport, const char *dst,
                uint16_t dport, double t, uint32_t len)
{
    flow_engine_packet(&fx->e, mk(fx, src, sport, dst, dport, 17, t, len), 0);
}

static void test_key_symmetric(void **state)
{
    struct fixture fx;
    struct flow_key a, b;
    int sa, sb;

    (void)state;
    mk(&fx, "10.0.0.1", 1234, "8.8.8.8", 53, 17, 0, 60);
    sa = flow_key_from_pkt(&a, &fx.p, 0, 1234, 53);
    mk(&fx, "8.8.8.8", 53, "10.0.0.1", 1234, 17, 0, 60);
    sb = flow_key_from_pkt(&b, &fx.p, 0, 53, 1234);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_not_equal(sa, sb);
}

static void test_udp_counters_and_reply(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    udp(&fx, "192.168.1.10", 5000, "8.8.8.8", 53, 1.0, 80);
    assert_int_equal(fx.r.reports, 0); /* not established before a reply */
    udp(&fx, "8.8.8.8", 53, "192.168.1.10", 5000, 1.1, 120);
    assert_int_equal(fx.r.reports, 1);
    assert_int_equal(fx.r.last_other_type, 2); /* remote */
    udp(&fx, "192.168.1.10", 5000, "8.8.8.8", 53, 1.2, 80);
    assert_int_equal(fx.e.table.count, 1);
    flow_engine_finish(&fx.e);
    assert_int_equal(fx.r.purges, 1);
    assert_int_equal(fx.r.last_reason, FLOW_PURGE_TERMINATED);
    /* 8.8.8.8 < 192.168.1.10, so key side 0 is the server. */
    assert_int_equal(fx.r.last_bytes[0], 120);
    assert_int_equal(fx.r.last_bytes[1], 160);
    assert_int_equal(fx.r.last_pkts[1], 2);
    flow_engine_destroy(&fx.e);
}

static void test_local_classification(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    /* Remote host speaks first to a local one: local is still the RFC 1918 side. */
    udp(&fx, "1.2.3.4", 999, "10.1.1.1", 53, 1, 60);
    udp(&fx, "10.1.1.1", 53, "1.2.3.4", 999, 1, 60);
    assert_int_equal(fx.r.reports, 1);
    assert_int_equal(fx.r.last_origin, 0); /* 1.2.3.4 is key side 0 and spoke first */
    assert_int_equal(fx.r.last_local, 1);  /* 10.1.1.1 */
    assert_int_equal(fx.r.last_other_type, 2);
    /* Both local: other_type local, local = originator. */
    udp(&fx, "192.168.0.9", 1000, "192.168.0.2", 2000, 2, 60);
    udp(&fx, "192.168.0.2", 2000, "192.168.0.9", 1000, 2, 60);
    assert_int_equal(fx.r.last_other_type, 1);
    assert_int_equal(fx.r.last_local, fx.r.last_origin);
    /* Multicast destination. */
    udp(&fx, "192.168.0.9", 5353, "224.0.0.251", 5353, 3, 60);
    flow_engine_finish(&fx.e);
    assert_int_equal(fx.r.last_other_type, 3);
    flow_engine_destroy(&fx.e);
}

static void test_broadcast(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    udp(&fx, "192.168.0.9", 68, "255.255.255.255", 67, 1, 342);
    flow_engine_finish(&fx.e);
    assert_int_equal(fx.r.reports, 1); /* reported at purge, never established */
    assert_int_equal(fx.r.last_other_type, 4);
    flow_engine_destroy(&fx.e);
}

static void test_udp_idle_timeout(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    udp(&fx, "10.0.0.1", 1111, "10.0.0.2", 2222, 100.0, 60);
    udp(&fx, "10.0.0.3", 1111, "10.0.0.4", 2222, 129.0, 60);
    assert_int_equal(fx.r.purges, 0);
    udp(&fx, "10.0.0.3", 1111, "10.0.0.4", 2222, 131.0, 60);
    assert_int_equal(fx.r.purges, 1); /* first flow idle for 31 s > 30 s */
    assert_int_equal(fx.r.last_reason, FLOW_PURGE_EXPIRED);
    assert_int_equal(fx.e.c.expired, 1);
    /* An idle link: time advances by tick alone. */
    flow_engine_advance(&fx.e, S(200));
    assert_int_equal(fx.r.purges, 2);
    assert_int_equal(fx.e.table.count, 0);
    flow_engine_destroy(&fx.e);
}

/* A full handshake, data both ways, FIN both ways. */
static void handshake(struct fixture *fx, double t0)
{
    tcp(fx, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_SYN, 100, 0, t0);
    tcp(fx, "10.0.0.2", 80, "10.0.0.1", 40000, TCP_SYN | TCP_ACK, 500, 0, t0 + 0.010);
    tcp(fx, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_ACK, 101, 0, t0 + 0.020);
}

static void test_tcp_lifecycle(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    handshake(&fx, 1.0);
    assert_int_equal(fx.r.reports, 1);
    tcp(&fx, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_ACK | TCP_PSH, 101, 100, 1.1);
    tcp(&fx, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_ACK | TCP_PSH, 101, 100, 1.2); /* again */
    tcp(&fx, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_ACK | TCP_PSH, 401, 100, 1.3); /* gap */
    /* Established TCP outlives the UDP timeout. */
    flow_engine_advance(&fx.e, S(100));
    assert_int_equal(fx.r.purges, 0);
    tcp(&fx, "10.0.0.1", 40000, "10.0.0.2", 80, TCP_FIN | TCP_ACK, 501, 0, 101);
    tcp(&fx, "10.0.0.2", 80, "10.0.0.1", 40000, TCP_FIN | TCP_ACK, 501, 0, 101.1);
    flow_engine_advance(&fx.e, S(105));
    assert_int_equal(fx.r.purges, 0);
    flow_engine_advance(&fx.e, S(112)); /* closed timeout 10 s */
    assert_int_equal(fx.r.purges, 1);
    assert_int_equal(fx.r.last_reason, FLOW_PURGE_CLOSED);
    assert_int_equal(fx.r.last_state, 5); /* TCP_STATE_CLOSED */
    assert_int_equal(fx.r.retransmits, 1);
    assert_int_equal(fx.r.seq_errors, 1);
    assert_int_equal(fx.r.rtt_us, 20000);
    assert_int_equal(fx.e.src[0].tcp_seq_errors, 1);
    flow_engine_destroy(&fx.e);
}

static void test_tcp_established_timeout(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    handshake(&fx, 1.0);
    flow_engine_advance(&fx.e, S(299));
    assert_int_equal(fx.r.purges, 0);
    flow_engine_advance(&fx.e, S(302));
    assert_int_equal(fx.r.purges, 1);
    assert_int_equal(fx.r.last_reason, FLOW_PURGE_EXPIRED);
    flow_engine_destroy(&fx.e);
}

static void test_tcp_syn_only_and_reset(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    tcp(&fx, "10.0.0.1", 40001, "10.0.0.2", 81, TCP_SYN, 1, 0, 1.0);
    tcp(&fx, "10.0.0.2", 81, "10.0.0.1", 40001, TCP_RST | TCP_ACK, 0, 0, 1.001);
    assert_int_equal(fx.r.reports, 0); /* a refused connection never establishes */
    flow_engine_advance(&fx.e, S(12));
    assert_int_equal(fx.r.reports, 1); /* reported at purge */
    assert_int_equal(fx.r.last_reason, FLOW_PURGE_CLOSED);
    assert_int_equal(fx.r.last_state, 6); /* TCP_STATE_RESET */
    flow_engine_destroy(&fx.e);
}

static void test_tcp_midstream(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    tcp(&fx, "10.0.0.1", 40002, "10.0.0.2", 22, TCP_ACK, 1000, 50, 1.0);
    assert_int_equal(fx.r.reports, 0);
    tcp(&fx, "10.0.0.2", 22, "10.0.0.1", 40002, TCP_ACK, 9000, 50, 1.1);
    assert_int_equal(fx.r.reports, 1);
    flow_engine_destroy(&fx.e);
}

static void test_eviction(void **state)
{
    struct fixture fx;
    char ip[32];
    int i;

    (void)state;
    setup_engine(&fx, 16);
    for (i = 0; i < 20; i++) {
        snprintf(ip, sizeof(ip), "10.0.1.%d", i + 1);
        udp(&fx, ip, 1000, "10.0.0.1", 53, 1.0 + i * 0.001, 60);
    }
    assert_int_equal(fx.e.table.count, 16);
    assert_int_equal(fx.e.c.evicted, 4);
    assert_int_equal(fx.r.purges, 4);
    assert_int_equal(fx.r.last_reason, FLOW_PURGE_EVICTED);
    flow_engine_finish(&fx.e);
    assert_int_equal(fx.r.purges, 20);
    flow_engine_destroy(&fx.e);
}

/* The bucket array grows with the table; every flow stays findable. */
static void test_table_growth(void **state)
{
    struct flow_table t;
    struct flow_key k;
    uint32_t i;

    (void)state;
    assert_int_equal(flow_table_init(&t, 100000), 0);
    for (i = 0; i < 20000; i++) {
        memset(&k, 0, sizeof(k));
        memcpy(k.addr[0], &i, sizeof(i));
        k.ip_version = 4;
        assert_non_null(flow_table_insert(&t, &k, flow_table_hash(&t, &k), FLOW_LIST_SHORT));
    }
    assert_true(t.mask + 1 >= 16384);
    for (i = 0; i < 20000; i++) {
        memset(&k, 0, sizeof(k));
        memcpy(k.addr[0], &i, sizeof(i));
        k.ip_version = 4;
        assert_non_null(flow_table_lookup(&t, &k, flow_table_hash(&t, &k)));
    }
    k.proto = 6; /* differs in one byte */
    assert_null(flow_table_lookup(&t, &k, flow_table_hash(&t, &k)));
    flow_table_destroy(&t);
}

static void test_flow_stats(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    udp(&fx, "10.0.0.1", 1, "10.0.0.2", 2, 0.5, 60);
    udp(&fx, "10.0.0.2", 2, "10.0.0.1", 1, 1.0, 60);
    udp(&fx, "10.0.0.1", 1, "10.0.0.2", 2, 16.0, 60);
    assert_int_equal(fx.r.stats, 1);
    /* No packets in the next interval: no stats for it. */
    udp(&fx, "10.0.0.5", 1, "10.0.0.6", 2, 31.0, 60);
    assert_int_equal(fx.r.stats, 2); /* only the new flow (reported early) */
    flow_engine_destroy(&fx.e);
}

/*
 * Each stats round must cover exactly the flows that saw a packet since the
 * previous round, however the flows are spread over the timeout lists and
 * whatever their order there (the engine only walks the recently used tail
 * of each list). Checked against a plain "dirty since last round" set.
 */
static void test_flow_stats_rounds(void **state)
{
    struct fixture fx;
    uint8_t dirty[200];
    uint32_t rounds = 0, rng = 12345;
    double t = 0;
    int i, n, checked = 0;

    (void)state;
    setup_engine(&fx, 1024);
    for (i = 0; i < FLOW_LIST__COUNT; i++)
        fx.e.cfg.timeout_us[i] = S(100000); /* nothing expires: every flow stays */
    memset(dirty, 0, sizeof(dirty));
    for (n = 0; n < 20000; n++) {
        int id, port;

        rng = rng * 1103515245u + 12345u;
        id = (int)((rng >> 8) % 200);
        port = id + 1; /* < 1000: always key side 0 against port 1000 */
        t += (double)((rng >> 20) % 100) / 1000.0;
        if (id % 3 == 0) /* some TCP flows: they move to the long and closed lists */
            tcp(&fx, "10.0.0.1", (uint16_t)port, "10.0.0.2", 1000,
                (uint8_t)(id % 2 ? TCP_SYN : TCP_ACK | TCP_FIN), (uint32_t)n, 0, t);
        else
            udp(&fx, "10.0.0.1", (uint16_t)port, "10.0.0.2", 1000, t, 60);
        if (fx.e.stats_round != rounds) {
            /* the round ran at the end of this packet: it counts as dirty */
            dirty[id] = 1;
            for (i = 0; i < 200; i++) {
                assert_int_equal(fx.r.stats_seen[i + 1], dirty[i]);
                fx.r.stats_seen[i + 1] = 0;
            }
            memset(dirty, 0, sizeof(dirty));
            rounds = fx.e.stats_round;
            checked++;
            continue;
        }
        dirty[id] = 1;
    }
    assert_true(checked > 50);
    flow_engine_destroy(&fx.e);
}

/*
 * With a detector, the flow event waits for detection to end (not for the
 * handshake), packets after that are not inspected, stats wait for the flow
 * event, and a flow purged mid-inspection is concluded first.
 */
static void test_detection_reporting(void **state)
{
    struct fixture fx;

    (void)state;
    setup_engine(&fx, 1024);
    fx.e.ops = &dpi_ops;
    inspected = concluded = 0;
    udp(&fx, "10.0.0.1", 1000, "10.0.0.2", 53, 1.0, 80);
    udp(&fx, "10.0.0.2", 53, "10.0.0.1", 1000, 1.1, 120); /* a reply: established */
    assert_int_equal(fx.r.reports, 0);
    udp(&fx, "10.0.0.1", 1000, "10.0.0.2", 53, 1.2, 80);
    assert_int_equal(fx.r.reports, 1);
    udp(&fx, "10.0.0.1", 1000, "10.0.0.2", 53, 1.3, 80);
    assert_int_equal(inspected, 3);
    /* a second flow, still under inspection at a stats round: no stats yet */
    udp(&fx, "10.0.0.1", 2000, "10.0.0.3", 53, 10.0, 80);
    udp(&fx, "10.0.0.1", 1000, "10.0.0.2", 53, 17.0, 80); /* round at 16.0 */
    assert_int_equal(fx.r.stats, 1);
    assert_int_equal(fx.r.reports, 1);
    /* at the end, the second flow is concluded, then reported and purged */
    flow_engine_finish(&fx.e);
    assert_int_equal(concluded, 1);
    assert_int_equal(fx.r.reports, 2);
    assert_int_equal(fx.r.purges, 2);
    flow_engine_destroy(&fx.e);
}

static void test_fragments(void **state)
{
    struct fixture fx;
    struct pkt *p;

    (void)state;
    setup_engine(&fx, 1024);
    p = mk(&fx, "10.0.0.1", 5000, "10.0.0.2", 6000, 17, 1.0, 1514);
    p->frag = PKT_FRAG_FIRST;
    p->frag_id = 77;
    flow_engine_packet(&fx.e, p, 0);
    p = mk(&fx, "10.0.0.1", 0, "10.0.0.2", 0, 17, 1.0, 600);
    p->frag = PKT_FRAG_LATER;
    p->frag_id = 77;
    p->l4_off = 0;
    flow_engine_packet(&fx.e, p, 0);
    assert_int_equal(fx.e.table.count, 1); /* counted to the same flow */
    assert_int_equal(fx.e.c.frag_orphans, 0);
    p = mk(&fx, "10.0.0.1", 0, "10.0.0.2", 0, 17, 1.0, 600);
    p->frag = PKT_FRAG_LATER;
    p->frag_id = 78; /* first fragment never seen */
    flow_engine_packet(&fx.e, p, 0);
    assert_int_equal(fx.e.c.frag_orphans, 1);
    flow_engine_finish(&fx.e);
    flow_engine_destroy(&fx.e);
}

static void test_community_id_vectors(void **state)
{
    /* The specification's published test vectors. */
    uint8_t a[16], b[16], c[16], d[16];
    char out[COMMUNITY_ID_LEN];

    (void)state;
    inet_pton(AF_INET, "1.2.3.4", a);
    inet_pton(AF_INET, "5.6.7.8", b);
    inet_pton(AF_INET6, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", c);
    inet_pton(AF_INET6, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", d);
    community_id_v1(out, 0, 4, 6, a, b, 1122, 3344);
    assert_string_equal(out, "1:wCb3OG7yAFWelaUydu0D+125CLM=");
    community_id_v1(out, 0, 4, 6, b, a, 3344, 1122);
    assert_string_equal(out, "1:wCb3OG7yAFWelaUydu0D+125CLM=");
    community_id_v1(out, 0, 4, 17, a, b, 1122, 3344);
    assert_string_equal(out, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=");
    community_id_v1(out, 0, 4, 1, a, b, 8, 0);
    assert_string_equal(out, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=");
    community_id_v1(out, 0, 4, 1, b, a, 0, 0); /* the echo reply */
    assert_string_equal(out, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=");
    community_id_v1(out, 0, 6, 58, c, d, 128, 0);
    assert_string_equal(out, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=");
    community_id_v1(out, 1, 4, 6, a, b, 1122, 3344);
    assert_string_equal(out, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=");
    community_id_v1(out, 1, 4, 17, a, b, 1122, 3344);
    assert_string_equal(out, "1:OShq+iKDAMVouh/4bMxB9Sz4amw=");
    community_id_v1(out, 1, 4, 1, a, b, 8, 0);
    assert_string_equal(out, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=");
    community_id_v1(out, 1, 6, 58, c, d, 128, 0);
    assert_string_equal(out, "1:IO27GQzPuCtNnwFvjWALMHu5tJE=");
    assert_int_equal(community_id_v1(out, 0, 5, 6, a, b, 1, 2), -1);
}

/* FIPS 180 example vectors: empty, one block, two blocks of padding. */
static void test_sha1(void **state)
{
    static const char two[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t out[SHA1_LEN];

    (void)state;
    sha1("", 0, out);
    assert_memory_equal(
        out, "\xda\x39\xa3\xee\x5e\x6b\x4b\x0d\x32\x55\xbf\xef\x95\x60\x18\x90\xaf\xd8\x07\x09",
        SHA1_LEN);
    sha1("abc", 3, out);
    assert_memory_equal(
        out, "\xa9\x99\x3e\x36\x47\x06\x81\x6a\xba\x3e\x25\x71\x78\x50\xc2\x6c\x9c\xd0\xd8\x9d",
        SHA1_LEN);
    sha1(two, sizeof(two) - 1, out);
    assert_memory_equal(
        out, "\x84\x98\x3e\x44\x1c\x3b\xd2\x6e\xba\xae\x4a\xa1\xf9\x51\x29\xe5\xe5\x46\x70\xf1",
        SHA1_LEN);
}

static void test_netset(void **state)
{
    struct netset s;
    uint8_t a[16];

    (void)state;
    netset_init(&s);
    assert_int_equal(netset_add(&s, "10.0.0.0/8"), 0);
    assert_int_equal(netset_add(&s, "2001:db8::/32"), 0);
    assert_int_equal(netset_add(&s, "192.0.2.7"), 0);
    assert_int_equal(netset_add(&s, "10.0.0.0/33"), -1);
    assert_int_equal(netset_add(&s, "nonsense"), -1);
    assert_int_equal(netset_add(&s, "10.0.0.0/"), -1);
    assert_int_equal(netset_add(&s, "/8"), -1);
    inet_pton(AF_INET, "10.200.1.1", a);
    assert_true(netset_contains(&s, 4, a));
    inet_pton(AF_INET, "11.0.0.1", a);
    assert_false(netset_contains(&s, 4, a));
    inet_pton(AF_INET, "192.0.2.7", a);
    assert_true(netset_contains(&s, 4, a));
    inet_pton(AF_INET, "192.0.2.8", a);
    assert_false(netset_contains(&s, 4, a));
    inet_pton(AF_INET6, "2001:db8:ffff::1", a);
    assert_true(netset_contains(&s, 6, a));
    inet_pton(AF_INET6, "2001:db9::1", a);
    assert_false(netset_contains(&s, 6, a));
    netset_init(&s);
    assert_int_equal(netset_add_defaults(&s), 0);
    inet_pton(AF_INET, "100.127.255.255", a);
    assert_true(netset_contains(&s, 4, a));
    inet_pton(AF_INET, "100.128.0.0", a);
    assert_false(netset_contains(&s, 4, a));
    inet_pton(AF_INET6, "fd12::1", a);
    assert_true(netset_contains(&s, 6, a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_symmetric),
        cmocka_unit_test(test_udp_counters_and_reply),
        cmocka_unit_test(test_local_classification),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_udp_idle_timeout),
        cmocka_unit_test(test_tcp_lifecycle),
        cmocka_unit_test(test_tcp_established_timeout),
        cmocka_unit_test(test_tcp_syn_only_and_reset),
        cmocka_unit_test(test_tcp_midstream),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_table_growth),
        cmocka_unit_test(test_flow_stats),
        cmocka_unit_test(test_flow_stats_rounds),
        cmocka_unit_test(test_detection_reporting),
        cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_community_id_vectors),
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_netset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
