/*
 * dhcp.c - DHCPv4 messages and transactions; see dhcp.h.
 *
 * The message is BOOTP's fixed 236 bytes, the magic cookie, then options
 * as type-length-value (RFC 2131, 2132). Option overload (52) is not
 * followed: clients and servers in practice keep options in the options
 * field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/hash.h"
#include "dhcp.h"
#include "events/flow_events.h"

#define DHCP_FIXED_LEN 236
#define DHCP_MAGIC_LEN 4
#define DHCP_HTYPE_ETH 1
#define DHCP_MAC_LEN   6

#define OPT_PAD       0
#define OPT_HOSTNAME  12
#define OPT_DOMAIN    15
#define OPT_REQUESTED 50
#define OPT_LEASE     51
#define OPT_TYPE      53
#define OPT_SERVER_ID 54
#define OPT_PRL       55
#define OPT_VENDOR    60
#define OPT_CLIENT_ID 61
#define OPT_END       255

static const uint8_t magic[DHCP_MAGIC_LEN] = {99, 130, 83, 99};

/* ---- parsing ---- */

static void text(char *dst, size_t size, const uint8_t *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    /* some clients count the terminating NUL in the option's length */
    while (n && dst[n - 1] == '\0')
        n--;
}

static void hex(char *dst, size_t size, const uint8_t *v, size_t n)
{
    if (2 * n + 1 > size)
        n = (size - 1) / 2;
    ev_fmt_hex(dst, v, n);
}

static void prl(char *dst, size_t size, const uint8_t *v, size_t n)
{
    size_t i, used = 0;
    int w;

    dst[0] = '\0';
    for (i = 0; i < n; i++) {
        w = snprintf(dst + used, size - used, i ? ",%u" : "%u", v[i]);
        if (w < 0 || (size_t)w >= size - used) {
            dst[used] = '\0'; /* cut at a whole number */
            return;
        }
        used += (size_t)w;
    }
}

static void option(struct dhcp_msg *m, uint8_t code, const uint8_t *v, size_t n)
{
    switch (code) {
    case OPT_TYPE:
        if (n >= 1)
            m->type = v[0];
        break;
    case OPT_REQUESTED:
        if (n == 4) {
            memcpy(m->requested, v, 4);
            m->has_requested = 1;
        }
        break;
    case OPT_SERVER_ID:
        if (n == 4) {
            memcpy(m->server_id, v, 4);
            m->has_server_id = 1;
        }
        break;
    case OPT_LEASE:
        if (n == 4) {
            m->lease_time = rd32(v);
            m->has_lease = 1;
        }
        break;
    case OPT_HOSTNAME:
        text(m->hostname, sizeof(m->hostname), v, n);
        break;
    case OPT_DOMAIN:
        text(m->domain, sizeof(m->domain), v, n);
        break;
    case OPT_VENDOR:
        text(m->vendor_class, sizeof(m->vendor_class), v, n);
        break;
    case OPT_CLIENT_ID:
        hex(m->client_id, sizeof(m->client_id), v, n);
        break;
    case OPT_PRL:
        prl(m->fingerprint, sizeof(m->fingerprint), v, n);
        break;
    default:
        break;
    }
}

int dhcp_parse(const uint8_t *data, size_t len, struct dhcp_msg *m)
{
    const uint8_t *p, *end = data + len;

    memset(m, 0, sizeof(*m));
    if (len < DHCP_FIXED_LEN + DHCP_MAGIC_LEN ||
        memcmp(data + DHCP_FIXED_LEN, magic, DHCP_MAGIC_LEN) != 0)
        return -1;
    m->op = data[0];
    m->htype = data[1];
    m->hlen = data[2];
    m->hops = data[3];
    m->xid = rd32(data + 4);
    m->secs = rd16(data + 8);
    m->flags = rd16(data + 10);
    memcpy(m->ciaddr, data + 12, 4);
    memcpy(m->yiaddr, data + 16, 4);
    memcpy(m->siaddr, data + 20, 4);
    memcpy(m->giaddr, data + 24, 4);
    memcpy(m->chaddr, data + 28, DHCP_CHADDR_LEN);
    for (p = data + DHCP_FIXED_LEN + DHCP_MAGIC_LEN; p < end && *p != OPT_END;) {
        if (*p == OPT_PAD) {
            p++;
            continue;
        }
        if (end - p < 2 || end - p - 2 < p[1])
            break; /* cut short */
        option(m, p[0], p + 2, p[1]);
        p += 2 + p[1];
    }
    return 0;
}

int dhcp_of_packet(const struct pkt *p, struct dhcp_msg *m)
{
    if (p->ip_proto != 17 || !dhcp_port(p->sport, p->dport))
        return -1;
    return dhcp_parse(p->data + p->payload_off, pkt_payload_captured(p), m);
}

const char *dhcp_type_name(unsigned type)
{
    static const char *const names[] = {"",    "DISCOVER", "OFFER",   "REQUEST", "DECLINE",
                                        "ACK", "NAK",      "RELEASE", "INFORM"};

    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "";
}

void dhcp_fmt_chaddr(char *buf, size_t size, const struct dhcp_msg *m)
{
    if (m->htype == DHCP_HTYPE_ETH && m->hlen == DHCP_MAC_LEN && size >= EV_MAC_STRLEN)
        ev_fmt_mac(buf, m->chaddr);
    else
        hex(buf, size, m->chaddr, m->hlen < DHCP_CHADDR_LEN ? m->hlen : DHCP_CHADDR_LEN);
}

/* ---- transactions ---- */

struct dhcp_txn {
    uint8_t used, ntypes;
    uint8_t types[DHCP_MAX_TYPES];
    uint16_t source;
    uint32_t xid;
    uint64_t first_us, last_us;
    char digest[EV_DIGEST_HEXLEN];
    struct dhcp_msg client, server; /* the last message of each side */
    uint8_t has_client, has_server;
};

struct dhcp_tracker {
    struct ev_sink *sink;
    uint64_t malformed;
    struct dhcp_txn t[DHCP_PENDING];
};

struct dhcp_tracker *dhcp_tracker_new(struct ev_sink *s)
{
    struct dhcp_tracker *t = calloc(1, sizeof(*t));

    if (t)
        t->sink = s;
    return t;
}

void dhcp_tracker_free(struct dhcp_tracker *t)
{
    free(t);
}

uint64_t dhcp_malformed(const struct dhcp_tracker *t)
{
    return t ? t->malformed : 0;
}

static char *ip_or_empty(char *buf, const uint8_t *a, int has)
{
    static const uint8_t zero[4];

    buf[0] = '\0';
    if (has && memcmp(a, zero, 4) != 0)
        ev_fmt_ip(buf, 4, a);
    return buf;
}

/* The client's last message speaks for the client, the server's for the server. */
static void emit(struct dhcp_tracker *t, struct dhcp_txn *x)
{
    Sonde__V1__Dhcp m = SONDE__V1__DHCP__INIT;
    const struct dhcp_msg *c = x->has_client ? &x->client : &x->server;
    const struct dhcp_msg *s = x->has_server ? &x->server : NULL;
    char mac[2 * DHCP_CHADDR_LEN + 1], ci[EV_IP_STRLEN], req[EV_IP_STRLEN], yi[EV_IP_STRLEN];
    char sid[EV_IP_STRLEN], gi[EV_IP_STRLEN];
    char *types[DHCP_MAX_TYPES];
    uint8_t last = x->types[x->ntypes - 1];
    int i;

    EV_STAMP(t->sink, m, x->last_us / 1000);
    m.interface = (char *)ev_iface_name(t->sink, x->source);
    m.digest = x->digest;
    dhcp_fmt_chaddr(mac, sizeof(mac), c);
    m.client_mac = mac;
    m.transaction_id = x->xid;
    m.message_type = (char *)dhcp_type_name(last);
    for (i = 0; i < x->ntypes; i++)
        types[i] = (char *)dhcp_type_name(x->types[i]);
    m.n_message_types = x->ntypes;
    m.message_types = types;
    m.relay_ip = ip_or_empty(gi, c->giaddr, 1);
    if (s) {
        if (s->type == DHCP_OFFER || s->type == DHCP_ACK)
            m.assigned_ip = ip_or_empty(yi, s->yiaddr, 1);
        m.server_id = ip_or_empty(sid, s->server_id, s->has_server_id);
        m.lease_time = s->lease_time;
        m.domain_name = (char *)s->domain;
    }
    if (x->has_client) {
        m.client_ip = ip_or_empty(ci, c->ciaddr, 1);
        m.requested_ip = ip_or_empty(req, c->requested, c->has_requested);
        m.hostname = (char *)c->hostname;
        m.vendor_class = (char *)c->vendor_class;
        m.fingerprint = (char *)c->fingerprint;
        m.client_id = (char *)c->client_id;
        if (m.server_id[0] == '\0') /* a REQUEST names the server it chose */
            m.server_id = ip_or_empty(sid, c->server_id, c->has_server_id);
    }
    m.duration_us = x->last_us - x->first_us;
    ev_emit(t->sink, EV_DHCP, &m.base);
    x->used = 0;
}

static size_t slot_of(uint32_t xid, const uint8_t *chaddr)
{
    uint64_t h = xid;
    int i;

    for (i = 0; i < DHCP_MAC_LEN; i++)
        h = h * 131 + chaddr[i];
    return (size_t)hash_mix64(h) & (DHCP_PENDING - 1);
}

static int ends(uint8_t type)
{
    return type == DHCP_ACK || type == DHCP_NAK || type == DHCP_DECLINE || type == DHCP_RELEASE;
}

static void note(struct dhcp_tracker *t, const struct flow *f, const struct pkt *p,
                 const struct dhcp_msg *m)
{
    struct dhcp_txn *x = &t->t[slot_of(m->xid, m->chaddr)];
    const struct dhcp_msg *same = x->has_client ? &x->client : &x->server;

    if (x->used && (x->xid != m->xid || memcmp(same->chaddr, m->chaddr, DHCP_CHADDR_LEN) != 0))
        emit(t, x); /* another transaction had the slot: report it now */
    if (!x->used) {
        memset(x, 0, sizeof(*x));
        x->used = 1;
        x->xid = m->xid;
        x->source = f->key.source;
        x->first_us = p->ts_us;
        ev_flow_digest(t->sink, f, x->digest);
    }
    x->last_us = p->ts_us;
    if (x->ntypes < DHCP_MAX_TYPES)
        x->types[x->ntypes++] = m->type;
    if (m->op == 1) {
        x->client = *m;
        x->has_client = 1;
    } else {
        x->server = *m;
        x->has_server = 1;
    }
    if (ends(m->type))
        emit(t, x);
}

void dhcp_packet(struct dhcp_tracker *t, const struct flow *f, const struct pkt *p)
{
    struct dhcp_msg m;

    if (dhcp_of_packet(p, &m) < 0) {
        t->malformed++;
        return;
    }
    if (m.type == 0)
        return; /* plain BOOTP: no transaction to speak of */
    note(t, f, p, &m);
}

void dhcp_expire(struct dhcp_tracker *t, uint64_t now_us)
{
    size_t i;

    for (i = 0; i < DHCP_PENDING; i++)
        if (t->t[i].used && t->t[i].last_us + DHCP_TIMEOUT_US <= now_us)
            emit(t, &t->t[i]);
}

void dhcp_finish(struct dhcp_tracker *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < DHCP_PENDING; i++)
        if (t->t[i].used)
            emit(t, &t->t[i]);
}
