/*
 * dedup.c - see dedup.h. A plain array searched linearly: a site has tens
 * or hundreds of agents, and each publish stream looks its agent up once.
 */
#include <stdlib.h>
#include <string.h>

#include "dedup.h"

void dedup_init(struct dedup *d)
{
    memset(d, 0, sizeof(*d));
}

void dedup_free(struct dedup *d)
{
    free(d->v);
    dedup_init(d);
}

long dedup_agent(struct dedup *d, const char *id)
{
    size_t i;

    if (strlen(id) >= DEDUP_AGENT_MAX)
        return -1;
    for (i = 0; i < d->n; i++)
        if (strcmp(d->v[i].id, id) == 0)
            return (long)i;
    if (d->n == DEDUP_MAX_AGENTS)
        return -1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct dedup_agent *v = realloc(d->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    memset(&d->v[d->n], 0, sizeof(d->v[d->n]));
    strcpy(d->v[d->n].id, id);
    return (long)d->n++;
}

void dedup_store(struct dedup *d, long agent, int tag, uint64_t seq)
{
    if (agent < 0 || (size_t)agent >= d->n || tag < 0 || tag >= DEDUP_TAGS)
        return;
    if (seq > d->v[agent].max[tag])
        d->v[agent].max[tag] = seq;
}

uint64_t dedup_max(const struct dedup *d, long agent, int tag)
{
    if (agent < 0 || (size_t)agent >= d->n || tag < 0 || tag >= DEDUP_TAGS)
        return 0;
    return d->v[agent].max[tag];
}
