/*
 * hash.h - a fast, seeded 64-bit hash for fixed-size keys (flow keys,
 * fragment keys, MAC addresses). Not cryptographic: the seed is random per
 * process so that crafted traffic cannot aim at one hash chain.
 */
#ifndef SONDE_HASH_H
#define SONDE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *p, size_t n, uint64_t seed);
/* The 64-bit finalizer alone: spreads every input bit over the output.
 * Inline: the flow lookup calls it for every packet. */
static inline uint64_t hash_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
/* A seed from the system's randomness (falls back to time and pid). */
uint64_t hash_random_seed(void);

#endif
