/*
 * table.c - flow hash table and timeout lists; see table.h.
 */
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "common/hash.h"

/* Fixed so a flow's hash is the same in every worker and every run; the
 * worker is chosen by a different, seeded hash (see agent.c). */
#define FLOW_HASH_SEED 0x736f6e6465ULL /* "sonde" */

uint64_t flow_key_hash(const struct flow_key *k)
{
    return hash_bytes(k, sizeof(*k), FLOW_HASH_SEED);
}

int flow_table_init(struct flow_table *t, size_t max_flows)
{
    size_t n = 1024;

    memset(t, 0, sizeof(*t));
    while (n < max_flows && n < ((size_t)1 << 40))
        n <<= 1;
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
    free(t->buckets);
    t->buckets = NULL;
}

struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint64_t hash)
{
    struct flow *f = t->buckets[hash & t->mask];

    for (; f; f = f->hnext)
        if (f->hash == hash && memcmp(&f->key, k, sizeof(*k)) == 0)
            return f;
    return NULL;
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
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->key = *k;
    f->hash = hash;
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
    struct flow **pp = &t->buckets[f->hash & t->mask];

    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    list_unlink(t, f);
    t->count--;
    free(f->tunnel);
    free(f);
}
