/*
 * frag.c - fragment port memory; see frag.h.
 */
#include <string.h>

#include "frag.h"
#include "common/hash.h"

#define FRAG_HASH_SEED 0x66726167ULL /* "frag" */

/*
 * The slot comes from the packet's own fields, read at their natural
 * widths: building a key struct first and hashing it as bytes costs a
 * store-forwarding stall per word, on every fragment.
 */
static size_t slot_of(const struct pkt *p)
{
    const uint8_t *s = p->data + p->src_off, *d = p->data + p->dst_off;
    size_t alen = p->ip_version == 4 ? 4 : 16, i;
    uint64_t h =
        FRAG_HASH_SEED ^ ((uint64_t)p->frag_id << 16 | (uint64_t)p->ip_version << 8 | p->ip_proto);

    for (i = 0; i < alen; i += 4) {
        uint32_t a, b;

        memcpy(&a, s + i, 4);
        memcpy(&b, d + i, 4);
        h = hash_mix64(h ^ ((uint64_t)a << 32 | b));
    }
    return (size_t)hash_mix64(h) & (FRAG_SLOTS - 1);
}

static int same_datagram(const struct frag_entry *e, const struct pkt *p)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;

    return e->ts_us != 0 && e->id == p->frag_id && e->ip_version == p->ip_version &&
           e->proto == p->ip_proto && memcmp(e->src, p->data + p->src_off, alen) == 0 &&
           memcmp(e->dst, p->data + p->dst_off, alen) == 0;
}

void frag_init(struct frag_table *t)
{
    memset(t, 0, sizeof(*t));
}

void frag_note(struct frag_table *t, const struct pkt *p)
{
    struct frag_entry *e = &t->slot[slot_of(p)];
    size_t alen = p->ip_version == 4 ? 4 : 16;

    memcpy(e->src, p->data + p->src_off, alen); /* only alen bytes are compared */
    memcpy(e->dst, p->data + p->dst_off, alen);
    e->id = p->frag_id;
    e->ip_version = p->ip_version;
    e->proto = p->ip_proto;
    e->sport = p->sport;
    e->dport = p->dport;
    e->ts_us = p->ts_us ? p->ts_us : 1;
}

int frag_lookup(const struct frag_table *t, const struct pkt *p, uint16_t *sport, uint16_t *dport)
{
    const struct frag_entry *e = &t->slot[slot_of(p)];

    if (!same_datagram(e, p) || p->ts_us > e->ts_us + FRAG_TIMEOUT_US)
        return 0;
    *sport = e->sport;
    *dport = e->dport;
    return 1;
}
