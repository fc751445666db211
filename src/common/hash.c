/*
 * hash.c - word-at-a-time multiply/rotate hash with a 64-bit finalizer.
 * Keys are short (up to ~48 bytes), so a simple loop over 8-byte words with
 * a strong final mix is both fast and well distributed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"

#define HASH_K1 0x9e3779b97f4a7c15ULL

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = seed ^ (n * HASH_K1);
    uint64_t w;

    /* Per word a multiply and a rotate; the full mix only once, at the end.
     * This runs on every packet (flow lookup), so it is kept cheap. */
    while (n >= 8) {
        memcpy(&w, b, 8);
        h = rotl64((h ^ w) * HASH_K1, 31);
        b += 8;
        n -= 8;
    }
    if (n) {
        w = 0;
        memcpy(&w, b, n);
        h = rotl64((h ^ w) * HASH_K1, 31);
    }
    return hash_mix64(h);
}

uint64_t hash_random_seed(void)
{
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (f) {
        if (fread(&seed, sizeof(seed), 1, f) != 1)
            seed = 0;
        fclose(f);
    }
    if (seed == 0)
        seed = hash_mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    return seed;
}
