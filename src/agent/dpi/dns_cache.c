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

#include "common/hash.h"
#include "dns.h"

#define US_PER_S 1000000ULL

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
