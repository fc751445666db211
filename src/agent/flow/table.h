/*
 * table.h - the flow table of one worker: a chained hash table for lookup
 * plus one LRU list per timeout class for expiry and eviction.
 *
 * Within a list every flow has the same idle timeout and flows are moved to
 * the tail when they see a packet, so the head is always the first to
 * expire: expiry costs O(expired), never a scan. The oldest idle flow of
 * the whole table is the oldest of the (three) list heads.
 *
 * Moving a flow touches its neighbours, three cache misses on a large
 * table, so the engine moves a flow at most once per FLOW_TOUCH_US of
 * packet time (list_us records when): the lists stay ordered to within
 * that granularity, which is also how often expiry is checked.
 */
#ifndef SONDE_FLOW_TABLE_H
#define SONDE_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

#define FLOW_KEY_WORDS (sizeof(struct flow_key) / 8)
_Static_assert(FLOW_KEY_WORDS == 6, "flow_table_hash reads four address words and two of fields");

struct flow_table {
    uint64_t hkey[FLOW_KEY_WORDS]; /* random odd multipliers: the key hash */
    struct flow **buckets;
    size_t mask; /* nbuckets - 1 */
    struct flow *head[FLOW_LIST__COUNT], *tail[FLOW_LIST__COUNT];
    struct flow *pool; /* free flows, linked by hnext */
    void *slabs;       /* every slab, linked through its first block */
    size_t count, max;
};

int flow_table_init(struct flow_table *t, size_t max_flows);
/* Frees every flow still in the table. */
void flow_table_destroy(struct flow_table *t);
/* The key's hash in this table (seeded per table, see table.c). */
uint64_t flow_table_hash(const struct flow_table *t, const struct flow_key *k);
int flow_key_equal(const struct flow_key *a, const struct flow_key *b);
struct flow *flow_table_lookup(struct flow_table *t, const struct flow_key *k, uint64_t hash);
/* Insert a zeroed flow with this key at the tail of list; NULL when full or
 * out of memory (make room first with flow_table_oldest + remove). */
struct flow *flow_table_insert(struct flow_table *t, const struct flow_key *k, uint64_t hash,
                               int list);
#define FLOW_TOUCH_US 1000000ULL

/* Move to the tail of list (the flow just saw a packet). */
void flow_table_touch(struct flow_table *t, struct flow *f, int list);
/* The least recently seen flow of all lists, or NULL when empty. */
struct flow *flow_table_oldest(struct flow_table *t);
/* Unlink and free. */
void flow_table_remove(struct flow_table *t, struct flow *f);

#endif
