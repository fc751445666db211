/*
 * frag.c - fragment port memory; see frag.h.
 */
#include <stddef.h>
#include <string.h>

#include "frag.h"
#include "common/hash.h"

#define FRAG_HASH_SEED 0x66726167ULL /* "frag" */

static void make_key(struct frag_entry *e, const struct pkt *p)
{
    size_t alen = p->ip_version == 4 ? 4 : 16;

    memset(e, 0, sizeof(*e));
    memcpy(e->src, p->data + p->src_off, alen);
    memcpy(e->dst, p->data + p->dst_off, alen);
    e->id = p->frag_id;
    e->ip_version = p->ip_version;
    e->proto = p->ip_proto;
}

static size_t slot_of(const struct frag_entry *k)
{
    /* Hash only the key part: addresses, id, version and protocol. */
    return hash_bytes(k, offsetof(struct frag_entry, sport), FRAG_HASH_SEED) & (FRAG_SLOTS - 1);
}

void frag_init(struct frag_table *t)
{
    memset(t, 0, sizeof(*t));
}

void frag_note(struct frag_table *t, const struct pkt *p)
{
    struct frag_entry k;
    struct frag_entry *e;

    make_key(&k, p);
    e = &t->slot[slot_of(&k)];
    *e = k;
    e->sport = p->sport;
    e->dport = p->dport;
    e->ts_us = p->ts_us ? p->ts_us : 1;
}

int frag_lookup(const struct frag_table *t, const struct pkt *p, uint16_t *sport, uint16_t *dport)
{
    struct frag_entry k;
    const struct frag_entry *e;

    make_key(&k, p);
    e = &t->slot[slot_of(&k)];
    if (e->ts_us == 0 || memcmp(e, &k, offsetof(struct frag_entry, sport)) != 0 ||
        p->ts_us > e->ts_us + FRAG_TIMEOUT_US)
        return 0;
    *sport = e->sport;
    *dport = e->dport;
    return 1;
}
