/*
 * engine.c - per-worker flow accounting; see engine.h.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define EXPIRE_CHECK_US FLOW_TOUCH_US /* look for idle flows once per second of packet time */

/* OtherType values in the proto. */
#define OTHER_LOCAL     1
#define OTHER_REMOTE    2
#define OTHER_MULTICAST 3
#define OTHER_BROADCAST 4

/*
 * The addresses go in with 8-byte stores and the small fields one by one,
 * the same widths flow_table_hash reads them back with: a wide load over
 * narrower, still-buffered stores would stall the packet path. An IPv4
 * address is therefore widened in a register, never copied into a zeroed
 * word in memory; where its four bytes go in that word depends on the
 * byte order (the test folds to a constant).
 */
static uint64_t v4_word(const uint8_t *a)
{
    const uint16_t one = 1;
    uint8_t little;
    uint32_t v;

    memcpy(&little, &one, 1);
    memcpy(&v, a, 4);
    return little ? (uint64_t)v : (uint64_t)v << 32;
}

static void key_put_addr(uint8_t *dst, const uint8_t *a, size_t alen)
{
    uint64_t w[2] = {0, 0};

    if (alen == 4)
        w[0] = v4_word(a);
    else
        memcpy(w, a, 16);
    memcpy(dst, &w[0], 8);
    memcpy(dst + 8, &w[1], 8);
}

int flow_key_from_pkt(struct flow_key *k, const struct pkt *p, uint16_t source, uint16_t sport,
                      uint16_t dport)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;
    const uint8_t *s = p->data + p->src_off, *d = p->data + p->dst_off;
    int c, side;

    if (alen == 4) { /* the common case: compare as numbers, not with memcmp */
        uint32_t sa = (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
        uint32_t da = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        c = sa < da ? -1 : sa > da;
    } else {
        c = memcmp(s, d, alen);
    }
    side = c < 0 || (c == 0 && sport <= dport) ? 0 : 1;
    key_put_addr(k->addr[side], s, alen);
    key_put_addr(k->addr[!side], d, alen);
    k->port[side] = sport;
    k->port[!side] = dport;
    k->vlan = p->nvlan ? p->vlan[0] : 0;
    k->source = source;
    k->ip_version = p->ip_version;
    k->proto = p->ip_proto;
    memset(k->pad, 0, sizeof(k->pad));
    return side;
}

int flow_engine_init(struct flow_engine *e, const struct flow_settings *cfg,
                     const struct flow_engine_ops *ops, void *ctx)
{
    memset(e, 0, sizeof(*e));
    e->cfg = *cfg;
    e->ops = ops;
    e->ctx = ctx;
    frag_init(&e->frag);
    return flow_table_init(&e->table, cfg->max_flows);
}

void flow_engine_destroy(struct flow_engine *e)
{
    flow_table_destroy(&e->table);
}

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/*
 * Decide, once, which side is "local" and what the other side is. A
 * multicast or broadcast destination is never the local side; otherwise
 * the side inside the local networks is local, and when both or neither
 * are, the side that spoke first is.
 */
static void classify(struct flow_engine *e, struct flow *f, const struct pkt *p, int side)
{
    const struct flow_key *k = &f->key;
    int v = k->ip_version;
    int dst = !side;
    int l0, l1;

    f->origin = (uint8_t)side;
    if (addr_is_broadcast(v, k->addr[dst]) ||
        (p->eth_off >= 0 && memcmp(p->data + p->eth_off, bcast_mac, 6) == 0)) {
        f->local = (uint8_t)side;
        f->other_type = OTHER_BROADCAST;
        return;
    }
    if (addr_is_multicast(v, k->addr[dst])) {
        f->local = (uint8_t)side;
        f->other_type = OTHER_MULTICAST;
        return;
    }
    l0 = e->cfg.local ? netset_contains(e->cfg.local, v, k->addr[0]) : 0;
    l1 = e->cfg.local ? netset_contains(e->cfg.local, v, k->addr[1]) : 0;
    if (l0 != l1) {
        f->local = l0 ? 0 : 1;
        f->other_type = OTHER_REMOTE;
    } else {
        f->local = (uint8_t)side;
        f->other_type = l0 ? OTHER_LOCAL : OTHER_REMOTE;
    }
}

static void note_tunnel(struct flow *f, const struct pkt *p)
{
    size_t alen = p->outer_ip_version == 4 ? 4 : 16;
    struct flow_tunnel *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return; /* the flow is still counted; only the tunnel detail is lost */
    t->type = p->tunnel_type;
    t->depth = p->tunnel_depth;
    t->ip_version = p->outer_ip_version;
    t->id = p->tunnel_id;
    if (p->outer_ip_version) {
        memcpy(t->src, p->data + p->outer_src_off, alen);
        memcpy(t->dst, p->data + p->outer_dst_off, alen);
    }
    f->tunnel = t;
}

static void report(struct flow_engine *e, struct flow *f)
{
    e->ops->report(e->ctx, f);
    f->flags |= FLOW_F_REPORTED;
}

static void purge(struct flow_engine *e, struct flow *f, int reason)
{
    if (!(f->flags & FLOW_F_DETECTED) && e->ops->inspect) {
        e->ops->conclude(e->ctx, f);
        f->flags |= FLOW_F_DETECTED;
    }
    if (!(f->flags & FLOW_F_REPORTED))
        report(e, f);
    e->ops->purge(e->ctx, f, reason);
    e->c.purged++;
    switch (reason) {
    case FLOW_PURGE_EXPIRED:
        e->c.expired++;
        break;
    case FLOW_PURGE_CLOSED:
        e->c.closed++;
        break;
    case FLOW_PURGE_EVICTED:
        e->c.evicted++;
        break;
    default:
        e->c.terminated++;
        break;
    }
    flow_table_remove(&e->table, f);
}

static void expire(struct flow_engine *e)
{
    int l;

    for (l = 0; l < FLOW_LIST__COUNT; l++) {
        struct flow *f;

        while ((f = e->table.head[l]) != NULL && f->list_us + e->cfg.timeout_us[l] <= e->now_us) {
            /* Seen within the last FLOW_TOUCH_US but not moved: it is due
             * before the next check; so is nothing behind it yet. */
            if (f->last_us + e->cfg.timeout_us[l] > e->now_us)
                break;
            purge(e, f, l == FLOW_LIST_CLOSED ? FLOW_PURGE_CLOSED : FLOW_PURGE_EXPIRED);
        }
    }
}

/*
 * Periodic stats for the flows that saw packets since the last round. A
 * live flow that was never established is reported now, so its stats have
 * a flow event to join to; with detection, a flow still being inspected
 * waits for its flow event, and its first stats count from its start.
 *
 * Only those flows are visited: the first packet a flow sees after a round
 * moves it to its list's tail and stamps it with the round number (see
 * flow_engine_packet), so the flows of this round are the run at the tail
 * of each list stamped with it. Walking the whole table instead would cost
 * a cache miss per live flow every interval, idle or not.
 */
static void stats_round(struct flow_engine *e)
{
    int l;

    for (l = 0; l < FLOW_LIST__COUNT; l++) {
        struct flow *f = e->table.tail[l], *first = NULL;

        for (; f && f->stats_round == e->stats_round; f = f->prev)
            first = f;
        for (f = first; f; f = f->next) {
            uint64_t pk = f->pkts[0] + f->pkts[1];

            if (pk == f->stats_pkts)
                continue;
            if (!(f->flags & FLOW_F_REPORTED)) {
                if (e->ops->inspect)
                    continue;
                report(e, f);
            }
            e->ops->stats(e->ctx, f);
            f->stats_pkts = pk;
            f->stats_bytes = f->bytes[0] + f->bytes[1];
        }
    }
    e->stats_round++;
}

static void clock_advance(struct flow_engine *e, uint64_t ts)
{
    if (ts > e->now_us)
        e->now_us = ts;
    if (e->next_expire_us == 0) {
        e->next_expire_us = e->now_us + EXPIRE_CHECK_US;
        if (e->cfg.stats_interval_us)
            e->next_stats_us = e->now_us + e->cfg.stats_interval_us;
    }
    if (e->now_us >= e->next_expire_us) {
        expire(e);
        if (e->ops->tick)
            e->ops->tick(e->ctx, e->now_us);
        e->next_expire_us = e->now_us + EXPIRE_CHECK_US;
    }
    if (e->next_stats_us && e->now_us >= e->next_stats_us) {
        stats_round(e);
        while (e->next_stats_us <= e->now_us)
            e->next_stats_us += e->cfg.stats_interval_us;
    }
}

void flow_engine_advance(struct flow_engine *e, uint64_t now_us)
{
    clock_advance(e, now_us);
}

static struct flow *create(struct flow_engine *e, const struct flow_key *k, uint64_t hash)
{
    struct flow *f = flow_table_insert(&e->table, k, hash, FLOW_LIST_SHORT);

    if (f == NULL && e->table.count >= e->table.max) {
        struct flow *old = flow_table_oldest(&e->table);

        if (old)
            purge(e, old, FLOW_PURGE_EVICTED);
        f = flow_table_insert(&e->table, k, hash, FLOW_LIST_SHORT);
    }
    if (f)
        e->c.created++;
    return f;
}

static void account(struct flow *f, const struct pkt *p, int side)
{
    f->bytes[side] += p->len;
    f->pkts[side]++;
    if (p->ts_us > f->last_us)
        f->last_us = p->ts_us;
    if (p->frag)
        f->fragments++;
    if (f->pkts[side] == 1 && p->eth_off >= 0)
        memcpy(f->mac[side], p->data + p->eth_off + 6, 6);
}

static void first_packet(struct flow_engine *e, struct flow *f, const struct pkt *p, int side)
{
    f->first_us = p->ts_us;
    f->list_us = p->ts_us;
    classify(e, f, p, side);
    f->icmp_type = p->icmp_type;
    f->icmp_code = p->icmp_code;
    f->vlan_inner = p->nvlan > 1 ? p->vlan[1] : 0;
    f->mpls_label = p->mpls_label;
    if (p->tunnel_type)
        note_tunnel(f, p);
}

void flow_engine_packet(struct flow_engine *e, const struct pkt *p, uint16_t source)
{
    struct flow_key k;
    struct flow *f;
    uint16_t sport = p->sport, dport = p->dport;
    uint64_t hash;
    uint32_t retransmits = 0;
    int side, list, established = 0;

    if (source >= FLOW_MAX_SOURCES)
        source = FLOW_MAX_SOURCES - 1;
    if (p->frag == PKT_FRAG_FIRST) {
        frag_note(&e->frag, p);
    } else if (p->frag == PKT_FRAG_LATER && !frag_lookup(&e->frag, p, &sport, &dport)) {
        e->c.frag_orphans++; /* counted to the port-less flow of the two hosts */
    }
    /* the clock first: events this packet causes carry its time (expiry
     * still runs after it, in clock_advance) */
    if (p->ts_us > e->now_us)
        e->now_us = p->ts_us;
    side = flow_key_from_pkt(&k, p, source, sport, dport);
    hash = flow_table_hash(&e->table, &k);
    f = flow_table_lookup(&e->table, &k, hash);
    if (f == NULL) {
        f = create(e, &k, hash);
        if (f == NULL) {
            e->src[source].flow_dropped++;
            return;
        }
        first_packet(e, f, p, side);
    }
    account(f, p, side);
    if (k.proto == 6 && p->l4_off) {
        retransmits = f->retransmits;
        established = flow_tcp_update(f, p, side, &e->src[source]);
    } else if (k.proto != 6 && f->pkts[!side] > 0) {
        established = 1; /* a reply */
    }
    if (established && !(f->flags & FLOW_F_ESTABLISHED)) {
        f->flags |= FLOW_F_ESTABLISHED;
        if (!(f->flags & FLOW_F_REPORTED) && e->ops->inspect == NULL)
            report(e, f);
    }
    if (!(f->flags & FLOW_F_DETECTED) && e->ops->inspect && e->ops->inspect(e->ctx, f, p)) {
        f->flags |= FLOW_F_DETECTED;
        report(e, f);
    }
    /* a retransmitted segment would repeat its application records */
    if (e->ops->payload && p->payload_len && p->l4_off && f->retransmits == retransmits)
        e->ops->payload(e->ctx, f, p, side);
    list = flow_list_for(f);
    if (list != f->list || f->last_us >= f->list_us + FLOW_TOUCH_US ||
        f->stats_round != e->stats_round) {
        flow_table_touch(&e->table, f, list);
        f->list_us = f->last_us;
        f->stats_round = e->stats_round;
    }
    clock_advance(e, p->ts_us);
}

void flow_engine_finish(struct flow_engine *e)
{
    int l;

    for (l = 0; l < FLOW_LIST__COUNT; l++) {
        while (e->table.head[l])
            purge(e, e->table.head[l],
                  l == FLOW_LIST_CLOSED ? FLOW_PURGE_CLOSED : FLOW_PURGE_TERMINATED);
    }
}
