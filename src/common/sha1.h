/*
 * sha1.h - SHA-1 (FIPS 180-4), for identifiers, not for security: flow
 * digests and Community IDs are defined as SHA-1 of a few dozen bytes, and
 * OpenSSL 3's one-shot SHA1() spends ~1 us per call fetching its provider
 * under a lock. This plain implementation does one flow in ~0.2 us.
 */
#ifndef SONDE_SHA1_H
#define SONDE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);

#endif
