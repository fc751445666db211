/*
 * dns_cache.c - the DNS hint cache: address -> name, until the TTL runs out.
 *
 * Direct-mapped by a hash of the address: a new answer for an address
 * replaces the old one, and so does, rarely, an answer for another address
 * that hashes to the same slot (the name is then missing, never wrong).
 * Workers write it as they see answers and read it when they report a
 * flow, so one mutex guards it; both happen once per DNS answer or flow,
 * not per packet.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/hash.h"
#include "dns.h"

#define US_PER_S      1000000ULL
#define WIRE_HDR_LEN  12  /* the fixed header */
#define WIRE_NAME_MAX 255 /* a name in wire form, root label included */
#define WIRE_PTR_HOPS 16  /* compression pointers followed in one name */
#define WIRE_RR_FIXED 10  /* type, class, TTL, rdata length */
#define WIRE_Q_FIXED  4   /* a question's type and class */
#define TYPE_A        1
#define TYPE_AAAA     28
#define RCODE_MASK    0x000f

struct dns_hint {
    uint8_t ip_version;
    uint8_t addr[16];
    uint64_t seen_us, expire_us;
    char name[DNS_NAME_MAX];
};

struct dns_cache {
    pthread_mutex_t lock;
    size_t mask;
    struct dns_hint slot[];
};

struct dns_cache *dns_cache_new(size_t slots)
{
    struct dns_cache *c;

    if (slots == 0 || (slots & (slots - 1)) != 0)
        return NULL;
    c = calloc(1, sizeof(*c) + slots * sizeof(c->slot[0]));
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->mask = slots - 1;
    return c;
}

void dns_cache_free(struct dns_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static size_t alen_of(int ip_version)
{
    return ip_version == 4 ? 4 : 16;
}

static struct dns_hint *slot_of(struct dns_cache *c, int ip_version, const uint8_t *addr)
{
    uint64_t w[2] = {0, 0};

    memcpy(w, addr, alen_of(ip_version));
    return &c->slot[hash_mix64(w[0] ^ hash_mix64(w[1] + (uint64_t)ip_version)) & c->mask];
}

void dns_cache_put(struct dns_cache *c, int ip_version, const uint8_t *addr, const char *name,
                   uint64_t seen_us, uint32_t ttl)
{
    struct dns_hint *h;
    size_t n = strlen(name);

    if (n >= DNS_NAME_MAX)
        n = DNS_NAME_MAX - 1;
    pthread_mutex_lock(&c->lock);
    h = slot_of(c, ip_version, addr);
    h->ip_version = (uint8_t)ip_version;
    memset(h->addr, 0, sizeof(h->addr));
    memcpy(h->addr, addr, alen_of(ip_version));
    h->seen_us = seen_us;
    h->expire_us = seen_us + (uint64_t)ttl * US_PER_S;
    memcpy(h->name, name, n);
    h->name[n] = '\0';
    pthread_mutex_unlock(&c->lock);
}

int dns_cache_get(struct dns_cache *c, int ip_version, const uint8_t *addr, uint64_t at_us,
                  char name[DNS_NAME_MAX])
{
    struct dns_hint *h;
    int found = 0;

    name[0] = '\0';
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    h = slot_of(c, ip_version, addr);
    if (h->ip_version == ip_version && memcmp(h->addr, addr, alen_of(ip_version)) == 0 &&
        h->seen_us <= at_us && at_us < h->expire_us) {
        memcpy(name, h->name, DNS_NAME_MAX);
        found = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* ---- learning from responses ---- */

/*
 * The name at *off, uncompressed into out (wire form, root label included);
 * *off moves past the name where it stands. Returns its length, 0 if it
 * runs out of the message, is too long, or loops.
 */
static size_t wire_name(const uint8_t *m, size_t len, size_t *off, uint8_t out[WIRE_NAME_MAX])
{
    size_t p = *off, n = 0, after = 0;
    int hops = 0;

    for (;;) {
        uint8_t l;

        if (p >= len)
            return 0;
        l = m[p];
        if ((l & 0xc0) == 0xc0) { /* a pointer to an earlier name */
            if (p + 1 >= len || ++hops > WIRE_PTR_HOPS)
                return 0;
            if (after == 0)
                after = p + 2;
            p = (size_t)(l & 0x3f) << 8 | m[p + 1];
            continue;
        }
        if (l & 0xc0) /* extended label types: never in use */
            return 0;
        if (n + 1 + l > WIRE_NAME_MAX || p + 1 + l > len)
            return 0;
        memcpy(out + n, m + p, 1 + (size_t)l);
        n += 1 + (size_t)l;
        p += 1 + (size_t)l;
        if (l == 0)
            break;
    }
    *off = after ? after : p;
    return n;
}

/* The an answers from off: with c NULL only checked, else learned. */
static int answers(struct dns_cache *c, const uint8_t *m, size_t len, size_t off, unsigned an,
                   const char *qname, uint64_t ts_us)
{
    uint8_t name[WIRE_NAME_MAX];
    unsigned i;

    for (i = 0; i < an; i++) {
        uint16_t type, rdlen;

        if (wire_name(m, len, &off, name) == 0 || off + WIRE_RR_FIXED > len)
            return -1;
        type = rd16(m + off);
        rdlen = rd16(m + off + 8);
        if (off + WIRE_RR_FIXED + rdlen > len)
            return -1;
        if (c && type == TYPE_A && rdlen == 4)
            dns_cache_put(c, 4, m + off + WIRE_RR_FIXED, qname, ts_us, rd32(m + off + 4));
        else if (c && type == TYPE_AAAA && rdlen == 16)
            dns_cache_put(c, 6, m + off + WIRE_RR_FIXED, qname, ts_us, rd32(m + off + 4));
        off += WIRE_RR_FIXED + rdlen;
    }
    return 0;
}

/*
 * ldns would build the whole message, an allocation per record, to give
 * the cache a few addresses; a walk to the answers is a tenth of that.
 * They are checked before any is learned: a malformed message teaches
 * nothing, as with ldns. An A or AAAA answer gives its address the name
 * first asked for, so the end of a CNAME chain still carries the name the
 * client wanted.
 */
int dns_cache_learn(struct dns_cache *c, const uint8_t *m, size_t len, uint64_t ts_us)
{
    uint8_t name[WIRE_NAME_MAX];
    char qname[DNS_NAME_MAX];
    size_t off = WIRE_HDR_LEN, n;
    unsigned i, qd, an;

    if (len < WIRE_HDR_LEN)
        return -1;
    qd = rd16(m + 4);
    an = rd16(m + 6);
    if (c == NULL || (rd16(m + 2) & RCODE_MASK) != 0 || qd == 0 || an == 0)
        return 0;
    n = wire_name(m, len, &off, name);
    if (n == 0 || off + WIRE_Q_FIXED > len)
        return -1;
    dns_name_text(name, n, qname, sizeof(qname));
    off += WIRE_Q_FIXED;
    for (i = 1; i < qd; i++) {
        if (wire_name(m, len, &off, name) == 0 || off + WIRE_Q_FIXED > len)
            return -1;
        off += WIRE_Q_FIXED;
    }
    if (answers(NULL, m, len, off, an, qname, ts_us) < 0)
        return -1;
    return answers(c, m, len, off, an, qname, ts_us);
}
