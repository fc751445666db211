/*
 * dns.c - DNS and mDNS transactions, parsed with ldns; see dns.h.
 *
 * ldns turns a message into lists of records and renders every record in
 * its presentation form, so no DNS wire format is decoded by hand here
 * beyond the fixed 12-byte header (whose raw flags word ldns does not
 * keep) and the two-byte length in front of a message over TCP. The one
 * exception is the hint cache alone (no dns events): it needs only the
 * A and AAAA answers of each response, which dns_cache.c reads itself.
 */
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/hash.h"
#include "dns.h"
#include "events/flow_events.h"

#define DNS_HEADER_LEN 12
#define DNS_FLAG_QR    0x8000
#define DNS_MDNS_QU    0x8000 /* class top bit: mDNS unicast response / cache flush */
#define DNS_ARENA      (64 * 1024)

/* A query waiting for its response. The flow pointer and first-seen time
 * only identify the flow; they are never followed (it may be gone). */
struct dns_query {
    const struct flow *f;
    uint64_t first_us, ts_us;
    uint16_t id;
    uint8_t used, client_side, tcp;
    struct flow_key key;
    char digest[EV_DIGEST_HEXLEN];
    ldns_pkt *msg;
    uint16_t flags;
};

struct dns_tracker {
    struct ev_sink *sink;
    struct dns_cache *cache;
    uint64_t malformed;
    struct dns_query q[DNS_PENDING];
    /* scratch for one event: its answers and their strings */
    Sonde__V1__DnsAnswer ans[DNS_MAX_ANSWERS];
    Sonde__V1__DnsAnswer *ansp[DNS_MAX_ANSWERS];
    size_t used;
    char arena[DNS_ARENA];
};

struct dns_tracker *dns_tracker_new(struct ev_sink *s, struct dns_cache *cache)
{
    struct dns_tracker *t = calloc(1, sizeof(*t));

    if (t) {
        t->sink = s;
        t->cache = cache;
    }
    return t;
}

static void query_clear(struct dns_query *q)
{
    ldns_pkt_free(q->msg);
    memset(q, 0, sizeof(*q));
}

void dns_tracker_free(struct dns_tracker *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < DNS_PENDING; i++)
        if (t->q[i].used)
            query_clear(&t->q[i]);
    free(t);
}

uint64_t dns_malformed(const struct dns_tracker *t)
{
    return t ? t->malformed : 0;
}

/* ---- strings ---- */

/* Copy n bytes of s into the event's arena; "" when it is full. */
static char *arena_put(struct dns_tracker *t, const char *s, size_t n)
{
    char *p;

    if (t->used + n + 1 > sizeof(t->arena))
        return (char *)"";
    p = t->arena + t->used;
    memcpy(p, s, n);
    p[n] = '\0';
    t->used += n + 1;
    return p;
}

/*
 * A domain name in presentation form, as ldns_rdf2str writes it ('.',
 * ';', '(', ')' and '\\' escaped, bytes outside printable ASCII as \DDD)
 * but without the trailing dot and without printf, which ldns calls per
 * character: every response the hint cache learns from passes here.
 * Returns the length written; cut at a whole character.
 */
size_t dns_name_text(const uint8_t *d, size_t len, char *out, size_t size)
{
    size_t i = 0, n = 0;

    if (len <= 1 || d[0] == 0) {
        if (size > 1)
            out[n++] = '.';
        out[n] = '\0';
        return n;
    }
    while (i < len && d[i] != 0) {
        size_t l = d[i++], j;

        if (n && n + 1 < size)
            out[n++] = '.';
        for (j = 0; j < l && i + j < len; j++) {
            uint8_t c = d[i + j];

            if (c == '.' || c == ';' || c == '(' || c == ')' || c == '\\') {
                if (n + 2 >= size)
                    goto cut;
                out[n++] = '\\';
                out[n++] = (char)c;
            } else if (c < 0x21 || c > 0x7e) {
                if (n + 4 >= size)
                    goto cut;
                out[n++] = '\\';
                out[n++] = (char)('0' + c / 100);
                out[n++] = (char)('0' + c / 10 % 10);
                out[n++] = (char)('0' + c % 10);
            } else {
                if (n + 1 >= size)
                    goto cut;
                out[n++] = (char)c;
            }
        }
        i += l;
    }
cut:
    out[n] = '\0';
    return n;
}

/*
 * The presentation form of one rdata field, as tshark shows it: names
 * without the root's trailing dot, character strings without quotes.
 */
static size_t rdf_text(const ldns_rdf *rdf, char *out, size_t size)
{
    char *s;

    if (rdf && size && ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME)
        return dns_name_text(ldns_rdf_data(rdf), ldns_rdf_size(rdf), out, size);
    s = rdf ? ldns_rdf2str(rdf) : NULL;
    size_t n;
    const char *b;

    if (s == NULL || size == 0)
        return 0;
    b = s;
    n = strlen(s);
    if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME && n > 1 && s[n - 1] == '.')
        n--;
    else if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_STR && n >= 2 && s[0] == '"' &&
             s[n - 1] == '"') {
        b++;
        n -= 2;
    }
    if (n >= size)
        n = size - 1;
    memcpy(out, b, n);
    out[n] = '\0';
    free(s);
    return n;
}

static char *name_of(struct dns_tracker *t, const ldns_rdf *rdf)
{
    char buf[DNS_NAME_MAX];
    size_t n = rdf_text(rdf, buf, sizeof(buf));

    return arena_put(t, buf, n);
}

static char *type_name(struct dns_tracker *t, ldns_rr_type type)
{
    char *s = ldns_rr_type2str(type);
    char *r = s ? arena_put(t, s, strlen(s)) : (char *)"";

    free(s);
    return r;
}

/* All rdata fields of rr, space separated ("10 mx.example"), into buf. */
static size_t rr_text(const ldns_rr *rr, char *buf, size_t size)
{
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < ldns_rr_rd_count(rr) && n + 2 < size; i++) {
        if (i)
            buf[n++] = ' ';
        n += rdf_text(ldns_rr_rdf(rr, i), buf + n, size - n);
    }
    return n;
}

static char *rr_data(struct dns_tracker *t, const ldns_rr *rr)
{
    char buf[1024];
    size_t n = rr_text(rr, buf, sizeof(buf));

    return arena_put(t, buf, n);
}

/* ---- the hint cache ---- */

/*
 * An A or AAAA answer gives its address the name first asked for, so the
 * end of a CNAME chain still carries the name the client wanted.
 */
static void learn_names(struct dns_tracker *t, const ldns_pkt *m, const char *qname, uint64_t ts_us)
{
    const ldns_rr_list *an = ldns_pkt_answer(m);
    size_t i;

    if (t->cache == NULL || qname[0] == '\0' || ldns_pkt_get_rcode(m) != LDNS_RCODE_NOERROR)
        return;
    for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(an, i);
        const ldns_rdf *rd = ldns_rr_rdf(rr, 0);
        ldns_rr_type type = ldns_rr_get_type(rr);

        if (rd == NULL)
            continue;
        if (type == LDNS_RR_TYPE_A && ldns_rdf_size(rd) == 4)
            dns_cache_put(t->cache, 4, ldns_rdf_data(rd), qname, ts_us, ldns_rr_ttl(rr));
        else if (type == LDNS_RR_TYPE_AAAA && ldns_rdf_size(rd) == 16)
            dns_cache_put(t->cache, 6, ldns_rdf_data(rd), qname, ts_us, ldns_rr_ttl(rr));
    }
}

/* ---- events ---- */

/*
 * One Dns event. q is the query (NULL when only the response was seen),
 * r the response (NULL when unanswered). The message with the question is
 * the response when there is one: it repeats the question.
 */
static void emit(struct dns_tracker *t, const struct dns_query *q, const ldns_pkt *r,
                 const uint8_t *r_wire, uint64_t r_ts, const struct flow_key *key, int client_side,
                 const char *digest, int tcp)
{
    Sonde__V1__Dns m = SONDE__V1__DNS__INIT;
    const ldns_pkt *msg = r ? r : q->msg;
    const ldns_rr_list *qd = ldns_pkt_question(msg), *an = ldns_pkt_answer(msg);
    const ldns_rr *q0 = ldns_rr_list_rr_count(qd) ? ldns_rr_list_rr(qd, 0) : NULL;
    const ldns_lookup_table *rc;
    char cip[EV_IP_STRLEN], sip[EV_IP_STRLEN];
    size_t i, n;
    int server_side = !client_side;

    t->used = 0;
    EV_STAMP(t->sink, m, (r ? r_ts : q->ts_us) / 1000);
    m.interface = (char *)ev_iface_name(t->sink, key->source);
    m.digest = (char *)digest;
    ev_fmt_ip(cip, key->ip_version, key->addr[client_side]);
    ev_fmt_ip(sip, key->ip_version, key->addr[server_side]);
    m.client_ip = cip;
    m.server_ip = sip;
    m.client_port = key->port[client_side];
    m.server_port = key->port[server_side];
    m.transport = (char *)(tcp ? "tcp" : "udp");
    m.mdns = key->port[server_side] == MDNS_PORT || key->port[client_side] == MDNS_PORT;
    m.transaction_id = ldns_pkt_id(msg);
    m.opcode = ldns_pkt_get_opcode(msg);
    m.flags = r ? rd16(r_wire + 2) : q->flags;
    if (q0) {
        m.query_name = name_of(t, ldns_rr_owner(q0));
        m.query_type = ldns_rr_get_type(q0);
        m.query_type_name = type_name(t, ldns_rr_get_type(q0));
        m.query_class = ldns_rr_get_class(q0) & ~DNS_MDNS_QU;
    }
    m.answered = r != NULL;
    if (r) {
        m.rcode = ldns_pkt_get_rcode(r);
        rc = ldns_lookup_by_id(ldns_rcodes, (int)m.rcode);
        m.rcode_name = (char *)(rc ? rc->name : "");
        n = ldns_rr_list_rr_count(an);
        for (i = 0; i < n && i < DNS_MAX_ANSWERS; i++) {
            const ldns_rr *rr = ldns_rr_list_rr(an, i);
            Sonde__V1__DnsAnswer *a = &t->ans[i];

            sonde__v1__dns_answer__init(a);
            a->name = name_of(t, ldns_rr_owner(rr));
            a->rr_type = ldns_rr_get_type(rr);
            a->rr_type_name = type_name(t, ldns_rr_get_type(rr));
            a->ttl = ldns_rr_ttl(rr);
            a->data = rr_data(t, rr);
            t->ansp[i] = a;
        }
        m.n_answers = i;
        m.answers = t->ansp;
        /* from the header: ldns takes an EDNS OPT record out of the count */
        m.authority_count = rd16(r_wire + 8);
        m.additional_count = rd16(r_wire + 10);
        if (q && r_ts >= q->ts_us)
            m.response_time_us = r_ts - q->ts_us;
        if (!m.mdns)
            learn_names(t, r, m.query_name ? m.query_name : "", r_ts);
    }
    ev_emit(t->sink, EV_DNS, &m.base);
}

static void emit_unanswered(struct dns_tracker *t, struct dns_query *q)
{
    if (ev_enabled(t->sink, EV_DNS))
        emit(t, q, NULL, NULL, 0, &q->key, q->client_side, q->digest, q->tcp);
    query_clear(q);
}

static void emit_mdns(struct dns_tracker *t, const struct flow *f, const struct pkt *p, int side,
                      ldns_pkt *m, const uint8_t *wire, int tcp)
{
    char digest[EV_DIGEST_HEXLEN];
    struct dns_query one;

    ev_flow_digest(t->sink, f, digest);
    if (rd16(wire + 2) & DNS_FLAG_QR) {
        emit(t, NULL, m, wire, p->ts_us, &f->key, !side, digest, tcp);
        return;
    }
    memset(&one, 0, sizeof(one));
    one.msg = m;
    one.ts_us = p->ts_us;
    one.flags = rd16(wire + 2);
    emit(t, &one, NULL, NULL, 0, &f->key, side, digest, tcp);
}

static size_t slot_of(const struct flow *f, uint16_t id)
{
    uint64_t h = hash_mix64((uint64_t)(uintptr_t)f ^ f->first_us * 0x9e3779b97f4a7c15ULL ^ id);

    return (size_t)h & (DNS_PENDING - 1);
}

/* Whether q is the query of flow f with transaction id `id`. */
static int is_query_of(const struct dns_query *q, const struct flow *f, uint16_t id)
{
    return q->used && q->f == f && q->first_us == f->first_us && q->id == id;
}

/* One whole message of flow f from key side `side`. */
static void message(struct dns_tracker *t, const struct flow *f, const struct pkt *p, int side,
                    const uint8_t *data, size_t len, int tcp)
{
    ldns_pkt *m = NULL;
    uint16_t flags;
    struct dns_query *q;
    int mdns = p->sport == MDNS_PORT || p->dport == MDNS_PORT;
    int events = ev_enabled(t->sink, EV_DNS);

    if (len < DNS_HEADER_LEN) {
        t->malformed++;
        return;
    }
    flags = rd16(data + 2);
    /* Without dns events only responses matter, for the hint cache, and
     * not mDNS ones (link-local, unasked): only their answers are read. */
    if (!events) {
        if (!mdns && (flags & DNS_FLAG_QR) && dns_cache_learn(t->cache, data, len, p->ts_us) < 0)
            t->malformed++;
        return;
    }
    if (ldns_wire2pkt(&m, data, len) != LDNS_STATUS_OK) {
        t->malformed++;
        return;
    }
    q = &t->q[slot_of(f, ldns_pkt_id(m))];
    if (mdns) { /* mostly unsolicited: each message is its own record */
        emit_mdns(t, f, p, side, m, data, tcp);
        ldns_pkt_free(m); /* mDNS names stay out of the hint cache: link-local, unasked */
        return;
    }
    if (!(flags & DNS_FLAG_QR)) { /* a query: wait for its response */
        if (is_query_of(q, f, ldns_pkt_id(m))) {
            ldns_pkt_free(m); /* a retransmission: keep the first one's time */
            return;
        }
        if (q->used)
            emit_unanswered(t, q); /* its slot is needed: report it now */
        q->used = 1;
        q->f = f;
        q->first_us = f->first_us;
        q->ts_us = p->ts_us;
        q->id = ldns_pkt_id(m);
        q->client_side = (uint8_t)side;
        q->tcp = (uint8_t)tcp;
        q->key = f->key;
        q->msg = m;
        q->flags = flags;
        ev_flow_digest(t->sink, f, q->digest);
        return;
    }
    if (is_query_of(q, f, ldns_pkt_id(m))) {
        emit(t, q, m, data, p->ts_us, &q->key, q->client_side, q->digest, tcp);
        query_clear(q);
    } else { /* the query was not seen */
        char digest[EV_DIGEST_HEXLEN];

        ev_flow_digest(t->sink, f, digest);
        emit(t, NULL, m, data, p->ts_us, &f->key, !side, digest, tcp);
    }
    ldns_pkt_free(m);
}

void dns_packet(struct dns_tracker *t, const struct flow *f, const struct pkt *p, int side)
{
    const uint8_t *data = p->data + p->payload_off;
    size_t len = p->payload_len, have;

    if (p->payload_off >= p->caplen)
        return;
    have = p->caplen - p->payload_off;
    if (len > have) {
        t->malformed++; /* cut by the snap length */
        return;
    }
    if (p->ip_proto != 6) {
        message(t, f, p, side, data, len, 0);
        return;
    }
    /* TCP: each message has its length in front; a message split across
     * segments is not reassembled, and counted. */
    while (len >= DNS_TCP_LEN_PREFIX) {
        size_t n = rd16(data);

        if (n + DNS_TCP_LEN_PREFIX > len) {
            t->malformed++;
            return;
        }
        message(t, f, p, side, data + DNS_TCP_LEN_PREFIX, n, 1);
        data += n + DNS_TCP_LEN_PREFIX;
        len -= n + DNS_TCP_LEN_PREFIX;
    }
}

void dns_expire(struct dns_tracker *t, uint64_t now_us)
{
    size_t i;

    for (i = 0; i < DNS_PENDING; i++)
        if (t->q[i].used && t->q[i].ts_us + DNS_TIMEOUT_US <= now_us)
            emit_unanswered(t, &t->q[i]);
}

void dns_finish(struct dns_tracker *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < DNS_PENDING; i++)
        if (t->q[i].used)
            emit_unanswered(t, &t->q[i]);
}

/* ---- packet layer ---- */

int dns_header_parse(const uint8_t *data, size_t len, struct dns_header *h)
{
    ldns_pkt *m = NULL;
    const ldns_rr_list *qd;

    memset(h, 0, sizeof(*h));
    if (len < DNS_HEADER_LEN || ldns_wire2pkt(&m, data, len) != LDNS_STATUS_OK)
        return -1;
    h->id = rd16(data);
    h->flags = rd16(data + 2);
    h->qdcount = rd16(data + 4);
    h->ancount = rd16(data + 6);
    h->nscount = rd16(data + 8);
    h->arcount = rd16(data + 10);
    qd = ldns_pkt_question(m);
    if (ldns_rr_list_rr_count(qd))
        rdf_text(ldns_rr_owner(ldns_rr_list_rr(qd, 0)), h->qname, sizeof(h->qname));
    ldns_pkt_free(m);
    return 0;
}

int dns_first_answer(const uint8_t *data, size_t len, char *out, size_t size)
{
    ldns_pkt *m = NULL;
    const ldns_rr_list *an;
    int found = 0;

    if (size == 0 || len < DNS_HEADER_LEN || rd16(data + 6) == 0 ||
        ldns_wire2pkt(&m, data, len) != LDNS_STATUS_OK)
        return 0;
    an = ldns_pkt_answer(m);
    if (ldns_rr_list_rr_count(an)) {
        rr_text(ldns_rr_list_rr(an, 0), out, size);
        found = 1;
    }
    ldns_pkt_free(m);
    return found;
}
