/*
 * flow_events.c - the three flow events.
 *
 * Counters are kept by key side in the flow record; here they are turned
 * into the Netify view: local_* is the side classified local when the flow
 * was created, other_* the opposite side.
 */
#include <stdlib.h>
#include <string.h>

#include "flow_events.h"
#include "pbenc.h"
#include "common/hash.h"
#include "common/sha1.h"
#include "detection.h"
#include "flow/community_id.h"

#define US_PER_MS             1000
#define EV_DIGEST_IFNAME_SEED 0x6966ULL /* "if" */
#define EV_ENCODE_GUESS       2048      /* bytes; a flow event is ~300 */

/*
 * The digest: SHA-1 of the canonical key, the first-seen time and the
 * interface name: the same for both directions, any thread count and any
 * rerun of a capture, yet distinct for two flows of one 5-tuple at
 * different times (community_id is the per-5-tuple hash). The name enters
 * as a hash so the input fits one SHA-1 block. Computed by the exporter,
 * for each event, from the snapshot: the flow thread never pays for it.
 */
void ev_flow_digest(const struct ev_sink *s, const struct flow *f, char hex[EV_DIGEST_HEXLEN])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t md[SHA1_LEN];
    int i;
    const char *ifname = ev_iface_name(s, f->key.source);
    const struct flow_key *k = &f->key;
    uint8_t buf[2 * 16 + 2 * 2 + 2 + 1 + 1 + 8 + 4]; /* 52: one block */
    uint32_t ifhash = (uint32_t)hash_bytes(ifname, strlen(ifname), EV_DIGEST_IFNAME_SEED);
    size_t n = 0;

    memcpy(buf + n, k->addr, sizeof(k->addr));
    n += sizeof(k->addr);
    memcpy(buf + n, k->port, sizeof(k->port));
    n += sizeof(k->port);
    memcpy(buf + n, &k->vlan, sizeof(k->vlan));
    n += sizeof(k->vlan);
    buf[n++] = k->ip_version;
    buf[n++] = k->proto;
    memcpy(buf + n, &f->first_us, sizeof(f->first_us));
    n += sizeof(f->first_us);
    memcpy(buf + n, &ifhash, sizeof(ifhash));
    sha1(buf, sizeof(buf), md);
    for (i = 0; i < SHA1_LEN; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * SHA1_LEN] = '\0';
}

/* Pack m at the end of out, leaving room for the seq the exporter adds. */
static long encode(const ProtobufCMessage *m, struct sbuf *out)
{
    uint8_t *p = (uint8_t *)sbuf_reserve(out, EV_ENCODE_GUESS + EV_SEQ_ROOM);
    long n = p ? schema_pb_encode(m, p, EV_ENCODE_GUESS) : -1;

    if (n < 0) { /* larger than the guess: size it exactly */
        size_t len = protobuf_c_message_get_packed_size(m);

        p = (uint8_t *)sbuf_reserve(out, len + EV_SEQ_ROOM);
        if (p == NULL)
            return -1;
        n = (long)protobuf_c_message_pack(m, p);
    }
    out->len += (size_t)n;
    return n;
}

/* A flow's MAC, or "" when none was seen (raw IP, PPP, ... links). */
static void fmt_flow_mac(char *buf, const uint8_t *mac)
{
    static const uint8_t none[6];

    if (memcmp(mac, none, sizeof(none)) == 0)
        buf[0] = '\0';
    else
        ev_fmt_mac(buf, mac);
}

static void fill_tcp(Sonde__V1__TcpInfo *t, const struct flow *f)
{
    int l = f->local, o = !f->local;

    t->state = (Sonde__V1__TcpState)f->tcp_state;
    t->flags_local = f->tcp_flags[l];
    t->flags_other = f->tcp_flags[o];
    t->rtt_us = f->rtt_us;
    t->retransmits = f->retransmits;
    t->resets = f->resets;
    t->seq_errors = f->seq_errors;
    t->mss_local = f->mss[l];
    t->mss_other = f->mss[o];
}

/* The counters every flow event carries, in the Netify view. */
#define FILL_COUNTERS(m, f)                                                                        \
    do {                                                                                           \
        int l_ = (f)->local, o_ = !(f)->local;                                                     \
        (m).local_bytes = (f)->bytes[l_];                                                          \
        (m).other_bytes = (f)->bytes[o_];                                                          \
        (m).local_packets = (f)->pkts[l_];                                                         \
        (m).other_packets = (f)->pkts[o_];                                                         \
        (m).total_bytes = (f)->bytes[0] + (f)->bytes[1];                                           \
        (m).total_packets = (f)->pkts[0] + (f)->pkts[1];                                           \
        (m).last_seen_at = (f)->last_us / US_PER_MS;                                               \
    } while (0)

static void fill_community_id(const struct ev_sink *s, const struct flow *f, char *out)
{
    const struct flow_key *k = &f->key;
    int src = f->origin, dst = !f->origin;
    uint16_t sp = k->port[src], dp = k->port[dst];

    if (k->proto == 1 || k->proto == 58) {
        sp = f->icmp_type;
        dp = f->icmp_code;
    }
    if (community_id_v1(out, s->cid_seed, k->ip_version, k->proto, k->addr[src], k->addr[dst], sp,
                        dp) < 0)
        out[0] = '\0';
}

static long build_flow(const struct ev_sink *s, const struct flow *f, const struct flow_app *app,
                       const char *digest, uint64_t now_us, struct sbuf *out)
{
    Sonde__V1__Flow m = SONDE__V1__FLOW__INIT;
    struct ev_detection det;
    Sonde__V1__TcpInfo tcp = SONDE__V1__TCP_INFO__INIT;
    Sonde__V1__Tunnel tun = SONDE__V1__TUNNEL__INIT;
    char cid[COMMUNITY_ID_LEN];
    char lip[EV_IP_STRLEN], oip[EV_IP_STRLEN], lmac[EV_MAC_STRLEN], omac[EV_MAC_STRLEN];
    char tsrc[EV_IP_STRLEN], tdst[EV_IP_STRLEN];
    const struct flow_key *k = &f->key;
    int l = f->local, o = !f->local;

    EV_STAMP(s, m, now_us / US_PER_MS);
    fill_community_id(s, f, cid);
    ev_fmt_ip(lip, k->ip_version, k->addr[l]);
    ev_fmt_ip(oip, k->ip_version, k->addr[o]);
    fmt_flow_mac(lmac, f->mac[l]);
    fmt_flow_mac(omac, f->mac[o]);
    m.interface = (char *)ev_iface_name(s, k->source);
    m.digest = (char *)digest;
    m.community_id = cid;
    m.ip_version = k->ip_version;
    m.ip_protocol = k->proto;
    m.vlan_id = k->vlan;
    m.vlan_inner = f->vlan_inner;
    m.mpls_label = f->mpls_label;
    m.local_mac = lmac;
    m.other_mac = omac;
    m.local_ip = lip;
    m.other_ip = oip;
    m.local_port = k->port[l];
    m.other_port = k->port[o];
    m.other_type = (Sonde__V1__OtherType)f->other_type;
    m.local_origin = f->origin == f->local;
    m.first_seen_at = f->first_us / US_PER_MS;
    FILL_COUNTERS(m, f);
    m.established = (f->flags & FLOW_F_ESTABLISHED) != 0;
    m.sampling_rate = s->sampling_rate;
    m.fragments = f->fragments;
    if (k->proto == 1 || k->proto == 58) {
        m.icmp_type = f->icmp_type;
        m.icmp_code = f->icmp_code;
    }
    if (k->proto == 6) {
        fill_tcp(&tcp, f);
        m.tcp = &tcp;
    }
    if (f->tunnel) {
        tun.type = (Sonde__V1__TunnelType)f->tunnel->type;
        tun.id = f->tunnel->id;
        tun.depth = f->tunnel->depth;
        tsrc[0] = tdst[0] = '\0';
        if (f->tunnel->ip_version) {
            ev_fmt_ip(tsrc, f->tunnel->ip_version, f->tunnel->src);
            ev_fmt_ip(tdst, f->tunnel->ip_version, f->tunnel->dst);
        }
        tun.outer_src_ip = tsrc;
        tun.outer_dst_ip = tdst;
        m.tunnel = &tun;
    }
    if (app && app->detected)
        m.detection = ev_detection_fill(&det, app);
    if (app && app->dns_host)
        m.dns_host_name = (char *)app_text(app, app->dns_host);
    return encode(&m.base, out);
}

static long build_flow_stats(const struct ev_sink *s, const struct flow *f, const char *digest,
                             uint64_t now_us, struct sbuf *out)
{
    Sonde__V1__FlowStats m = SONDE__V1__FLOW_STATS__INIT;
    Sonde__V1__TcpInfo tcp = SONDE__V1__TCP_INFO__INIT;

    EV_STAMP(s, m, now_us / US_PER_MS);
    m.interface = (char *)ev_iface_name(s, f->key.source);
    m.digest = (char *)digest;
    FILL_COUNTERS(m, f);
    m.delta_bytes = m.total_bytes - f->stats_bytes;
    m.delta_packets = m.total_packets - f->stats_pkts;
    m.sampling_rate = s->sampling_rate;
    if (f->key.proto == 6) {
        fill_tcp(&tcp, f);
        m.tcp = &tcp;
    }
    return encode(&m.base, out);
}

static long build_flow_purge(const struct ev_sink *s, const struct flow *f, const char *digest,
                             int reason, uint64_t now_us, struct sbuf *out)
{
    Sonde__V1__FlowPurge m = SONDE__V1__FLOW_PURGE__INIT;
    Sonde__V1__TcpInfo tcp = SONDE__V1__TCP_INFO__INIT;

    EV_STAMP(s, m, now_us / US_PER_MS);
    m.interface = (char *)ev_iface_name(s, f->key.source);
    m.digest = (char *)digest;
    m.reason = (Sonde__V1__PurgeReason)reason;
    m.first_seen_at = f->first_us / US_PER_MS;
    FILL_COUNTERS(m, f);
    m.sampling_rate = s->sampling_rate;
    m.fragments = f->fragments;
    if (f->key.proto == 6) {
        fill_tcp(&tcp, f);
        m.tcp = &tcp;
    }
    return encode(&m.base, out);
}

/*
 * What the flow thread queues: a copy of the flow as it is now. Building
 * the message (strings, Community ID) and packing it is left to the
 * exporter thread, so the packet path pays for a copy, not an encoding.
 * A flow event that carries detection results has them after the snapshot,
 * in a larger item (EVQ_F_LARGE). Items of both sizes come back from the
 * exporter for reuse (EVQ_F_RECYCLE): a malloc here and a free there would
 * meet on one malloc arena for every flow.
 */
struct flow_snap {
    struct flow f; /* its pointers are not followed, except tunnel below */
    struct flow_tunnel tunnel;
    uint64_t now_us;
    int32_t reason;
};

size_t ev_flow_item_size(void)
{
    return sizeof(struct evq_item) + sizeof(struct flow_snap);
}

static struct evq_item *flow_item(struct ev_batch *b, const struct flow_app *app)
{
    int c = app ? EVQ_SPARE_LARGE : EVQ_SPARE_SMALL;
    size_t extra = app ? sizeof(struct flow_app) : 0;
    struct evq_item *it = b->spare[c];

    if (it)
        b->spare[c] = it->next;
    else
        it = malloc(ev_flow_item_size() + extra);
    if (it == NULL)
        return NULL;
    it->flags = EVQ_F_FLOW_SNAPSHOT | EVQ_F_RECYCLE | (app ? EVQ_F_LARGE : 0);
    it->len = (uint32_t)sizeof(struct flow_snap);
    if (app) { /* only the part in use: the strings are packed */
        memcpy(it->data + sizeof(struct flow_snap), app, app_size(app));
        it->len += (uint32_t)app_size(app);
    }
    return it;
}

void ev_flow_queue(struct ev_sink *s, struct ev_batch *b, int tag, const struct flow *f,
                   const struct flow_app *app, int reason, uint64_t now_us)
{
    struct evq_item *it;
    struct flow_snap *snap;

    if (!ev_enabled(s, tag))
        return;
    it = flow_item(b, tag == EV_FLOW ? app : NULL);
    if (it == NULL) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return;
    }
    it->tag = (uint32_t)tag;
    snap = (struct flow_snap *)it->data;
    snap->f = *f;
    if (f->tunnel)
        snap->tunnel = *f->tunnel;
    snap->now_us = now_us;
    snap->reason = reason;
    ev_batch_add(s, b, it);
}

long ev_flow_encode(const struct ev_sink *s, const struct evq_item *it, struct sbuf *out)
{
    struct flow_snap snap;
    const struct flow_app *app = NULL;
    char digest[EV_DIGEST_HEXLEN];

    if (it->len > sizeof(snap) + offsetof(struct flow_app, text) && it->tag == EV_FLOW) {
        app = (const struct flow_app *)(const void *)(it->data + sizeof(snap));
        if (it->len != sizeof(snap) + app_size(app) || app->used > sizeof(app->text))
            return -1;
    } else if (it->len != sizeof(snap)) {
        return -1;
    }
    memcpy(&snap, it->data, sizeof(snap));
    if (snap.f.tunnel)
        snap.f.tunnel = &snap.tunnel;
    ev_flow_digest(s, &snap.f, digest);
    switch (it->tag) {
    case EV_FLOW:
        return build_flow(s, &snap.f, app, digest, snap.now_us, out);
    case EV_FLOW_STATS:
        return build_flow_stats(s, &snap.f, digest, snap.now_us, out);
    case EV_FLOW_PURGE:
        return build_flow_purge(s, &snap.f, digest, snap.reason, snap.now_us, out);
    default:
        return -1;
    }
}
