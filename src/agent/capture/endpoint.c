/*
 * endpoint.c - local device inventory; see endpoint.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "common/hash.h"

#define ENDPOINT_HASH_SEED 0x656e6470ULL /* "endp" */

int endpoint_table_init(struct endpoint_table *t, size_t max_endpoints)
{
    size_t cap = 64;

    memset(t, 0, sizeof(*t));
    while (cap * 3 / 4 < max_endpoints)
        cap <<= 1;
    t->slot = calloc(cap, sizeof(*t->slot));
    t->used = calloc(cap * 3 / 4 + 1, sizeof(*t->used));
    if (t->slot == NULL || t->used == NULL) {
        endpoint_table_destroy(t);
        return -1;
    }
    t->cap = cap;
    return 0;
}

void endpoint_table_destroy(struct endpoint_table *t)
{
    free(t->slot);
    free(t->used);
    t->slot = NULL;
    t->used = NULL;
}

static int add_ip(struct endpoint *e, int ip_version, const uint8_t *addr)
{
    size_t alen = ip_version == 4 ? 4 : 16;
    int i;

    for (i = 0; i < e->nip; i++)
        if (e->ip[i].ip_version == ip_version && memcmp(e->ip[i].addr, addr, alen) == 0)
            return 0;
    if (e->nip >= ENDPOINT_MAX_IPS)
        return 0;
    memset(&e->ip[e->nip], 0, sizeof(e->ip[0]));
    e->ip[e->nip].ip_version = (uint8_t)ip_version;
    memcpy(e->ip[e->nip].addr, addr, alen);
    e->nip++;
    return 1;
}

/* The endpoint of mac, added if new (*is_new set); NULL when the table is full. */
static struct endpoint *find_or_add(struct endpoint_table *t, const uint8_t *mac, uint64_t ts_us,
                                    int *is_new)
{
    size_t i = hash_bytes(mac, 6, ENDPOINT_HASH_SEED) & (t->cap - 1);
    struct endpoint *e;

    *is_new = 0;
    for (;;) {
        e = &t->slot[i];
        if (!e->used || memcmp(e->mac, mac, 6) == 0)
            break;
        i = (i + 1) & (t->cap - 1);
    }
    if (!e->used) {
        if (t->count >= t->cap * 3 / 4) {
            t->dropped++;
            return NULL;
        }
        e->used = 1;
        memcpy(e->mac, mac, 6);
        e->first_us = ts_us;
        t->used[t->count++] = (uint32_t)i;
        *is_new = 1;
    }
    if (ts_us > e->last_us)
        e->last_us = ts_us;
    e->dirty = 1;
    return e;
}

struct endpoint *endpoint_note(struct endpoint_table *t, const uint8_t *mac, int ip_version,
                               const uint8_t *addr, uint32_t len, uint64_t ts_us, int *is_new)
{
    struct endpoint *e = find_or_add(t, mac, ts_us, is_new);

    if (e == NULL)
        return NULL;
    if (addr && add_ip(e, ip_version, addr))
        *is_new = 1;
    e->packets++;
    e->bytes += len;
    return e;
}

struct endpoint *endpoint_learn(struct endpoint_table *t, const uint8_t *mac, const uint8_t *ip4,
                                const char *hostname, uint64_t ts_us, int *changed)
{
    struct endpoint *e = find_or_add(t, mac, ts_us, changed);

    if (e == NULL)
        return NULL;
    if (ip4 && add_ip(e, 4, ip4))
        *changed = 1;
    if (hostname && hostname[0] && strncmp(e->hostname, hostname, sizeof(e->hostname)) != 0) {
        snprintf(e->hostname, sizeof(e->hostname), "%s", hostname);
        *changed = 1;
    }
    return e;
}
