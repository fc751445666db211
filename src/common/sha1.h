/*
 * sha1.h - SHA-1 (FIPS 180-4), for identifiers, not for security: flow
 * digests and Community IDs are SHA-1 of a few dozen bytes, computed for
 * every flow, so the call has to be cheap (see sha1.c).
 */
#ifndef SONDE_SHA1_H
#define SONDE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN]);

#endif
