/*
 * sha1.c - SHA-1 through OpenSSL's block function.
 *
 * The one-shot SHA1() of OpenSSL 3 looks its algorithm up in the provider
 * store, under a lock, on every call (~1 us). SHA1_Init/Update/Final go
 * straight to the assembly block function (~0.1 us for one block, with the
 * CPU's SHA extensions where present). OpenSSL 3 marks them deprecated;
 * they remain part of its API, and this file asks for that API explicitly.
 */
#define OPENSSL_API_COMPAT 0x10101000L

#include <openssl/sha.h>

#include "sha1.h"

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
    SHA_CTX c;

    SHA1_Init(&c);
    SHA1_Update(&c, data, len);
    SHA1_Final(out, &c);
}
