/*
 * table.c - flow hash table and timeout lists; see table.h.
 */
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "common/hash.h"

/*
 * Multilinear hashing: each 8-byte word of the key times its own random odd
 * multiplier, summed, then one strong mix. The multiplications are
 * independent, so this costs a few cycles per packet, and with multipliers
 * drawn at random per table, crafted traffic cannot aim at one chain.
 *
 * The small fields are read one by one and packed by arithmetic, not loaded
 * as words: the key was just written field by field (flow_key_from_pkt),
 * and a wide load over narrow stores still in the store buffer stalls.
 */
uint64_t flow_table_hash(const struct flow_table *t, const struct flow_key *k)
{
    uint64_t a[4], meta, h;

    memcpy(&a[0], k->addr[0], 8);
    memcpy(&a[1], k->addr[0] + 8, 8);
    memcpy(&a[2], k->addr[1], 8);
    memcpy(&a[3], k->addr[1] + 8, 8);
    meta = (uint64_t)k->port[0] << 48 | (uint64_t)k->port[1] << 32 | (uint64_t)k->vlan << 16 |
           k->source;
    h = a[0] * t->hkey[0] + a[1] * t->hkey[1] + a[2] * t->hkey[2] + a[3] * t->hkey[3] +
        meta * t->hkey[4] + ((uint64_t)k->ip_version << 8 | k->proto) * t->hkey[5];
    return hash_mix64(h);
}

int flow_key_equal(const struct flow_key *a, const struct flow_key *b)
{
    /* Word by word: the key is 48 bytes of plain integers, padding zeroed.
     * Loaded straight into registers, not copied to the stack first. */
    const uint8_t *pa = (const uint8_t *)a, *pb = (const uint8_t *)b;
    uint64_t d = 0;
    size_t i;

    for (i = 0; i < sizeof(*a); i += 8) {
        uint64_t x, y;

        memcpy(&x, pa + i, 8);
        memcpy(&y, pb + i, 8);
        d |= x ^ y;
    }
    return d == 0;
}

/*
 * The bucket array follows the number of live flows (load factor <= 1)
 * instead of being sized for --max-flows up front: a small array stays in
 * the CPU caches, and every packet looks into it.
 */
#define FLOW_BUCKETS_MIN 1024

int flow_table_init(struct flow_table *t, size_t max_flows)
{
    size_t n = FLOW_BUCKETS_MIN, i;
    uint64_t seed;

    memset(t, 0, sizeof(*t));
    seed = hash_random_seed();
    for (i = 0; i < FLOW_KEY_WORDS; i++)
        t->hkey[i] = hash_mix64(seed + i) | 1;
    t->buckets = calloc(n, sizeof(*t->buckets));
    if (t->buckets == NULL)
        return -1;
    t->mask = n - 1;
    t->max = max_flows;
    return 0;
}

void flow_table_destroy(struct flow_table *t)
{
    int l;

    for (l = 0; l < FLOW_LIST__COUNT; l++) {
        while (t->head[l])
            flow_table_remove(t, t->head[l]);
    }
    while (t->slabs) {
        void *slab = t->slabs;

        memcpy(&t->slabs, slab, sizeof(t->slabs));
        free(slab);
    }
    t->pool = NULL;
    free(t->buckets);
    t->buckets = NULL;
}

struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint64_t hash)
{
    struct flow *f = t->buckets[hash & t->mask];

    for (; f; f = f->hnext)
        if (flow_key_equal(&f->key, k))
            return f;
    return NULL;
}

/* Double the bucket array; on failure keep the old one (longer chains). */
static void grow(struct flow_table *t)
{
    size_t n = (t->mask + 1) * 2, i;
    struct flow **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;
    for (i = 0; i <= t->mask; i++) {
        struct flow *f = t->buckets[i], *next;

        for (; f; f = next) {
            size_t j = flow_table_hash(t, &f->key) & (n - 1);

            next = f->hnext;
            f->hnext = b[j];
            b[j] = f;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = n - 1;
}

/*
 * Flows start on a cache line (see struct flow) and come from slabs of
 * FLOW_SLAB lines' worth: one allocation per slab, no per-flow malloc
 * header or alignment slack. A removed flow goes back to the table's pool;
 * slabs are freed with the table, so memory follows the table's peak.
 */
#define FLOW_ALIGN 64
#define FLOW_ALLOC (((sizeof(struct flow) + FLOW_ALIGN - 1) / FLOW_ALIGN) * FLOW_ALIGN)
#define FLOW_SLAB  64 /* blocks per slab; the first holds the slab link */

static int flow_slab_new(struct flow_table *t)
{
    uint8_t *slab = aligned_alloc(FLOW_ALIGN, FLOW_SLAB * FLOW_ALLOC);
    size_t i;

    if (slab == NULL)
        return -1;
    memcpy(slab, &t->slabs, sizeof(t->slabs));
    t->slabs = slab;
    for (i = FLOW_SLAB - 1; i >= 1; i--) {
        struct flow *f = (struct flow *)(void *)(slab + i * FLOW_ALLOC);

        f->hnext = t->pool;
        t->pool = f;
    }
    return 0;
}

static struct flow *flow_alloc(struct flow_table *t)
{
    struct flow *f;

    if (t->pool == NULL && flow_slab_new(t) < 0)
        return NULL;
    f = t->pool;
    t->pool = f->hnext;
    memset(f, 0, sizeof(*f));
    return f;
}

static void list_unlink(struct flow_table *t, struct flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        t->head[f->list] = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        t->tail[f->list] = f->prev;
    f->prev = f->next = NULL;
}

static void list_append(struct flow_table *t, struct flow *f, int list)
{
    f->list = (uint8_t)list;
    f->next = NULL;
    f->prev = t->tail[list];
    if (f->prev)
        f->prev->next = f;
    else
        t->head[list] = f;
    t->tail[list] = f;
}

struct flow *flow_table_insert(struct flow_table *t, const struct flow_key *k, uint64_t hash,
                               int list)
{
    struct flow *f;
    size_t b = hash & t->mask;

    if (t->count >= t->max)
        return NULL;
    f = flow_alloc(t);
    if (f == NULL)
        return NULL;
    if (t->count > t->mask) {
        grow(t);
        b = hash & t->mask;
    }
    f->key = *k;
    f->hnext = t->buckets[b];
    t->buckets[b] = f;
    list_append(t, f, list);
    t->count++;
    return f;
}

void flow_table_touch(struct flow_table *t, struct flow *f, int list)
{
    if (t->tail[f->list] == f && f->list == list)
        return;
    list_unlink(t, f);
    list_append(t, f, list);
}

struct flow *flow_table_oldest(struct flow_table *t)
{
    struct flow *best = NULL;
    int l;

    for (l = 0; l < FLOW_LIST__COUNT; l++)
        if (t->head[l] && (best == NULL || t->head[l]->list_us < best->list_us))
            best = t->head[l];
    return best;
}

void flow_table_remove(struct flow_table *t, struct flow *f)
{
    struct flow **pp = &t->buckets[flow_table_hash(t, &f->key) & t->mask];

    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    list_unlink(t, f);
    t->count--;
    free(f->tunnel);
    f->hnext = t->pool;
    t->pool = f;
}
