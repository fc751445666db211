/*
 * pbcheck.h - validate a packed protobuf message against its descriptor
 * without unpacking it.
 *
 * The collector receives hundreds of thousands of events a second and, to
 * store them as protobuf, needs only to know that each one is what it
 * claims: a well-formed message of its type, strings within a bound, and
 * its agent_id and seq. protobuf_c_message_unpack would allocate and copy
 * every field to find that out; this walks the bytes once. Whatever it
 * accepts, protobuf-c's unpack accepts too (tests/unit/test_pbcheck.c
 * checks that on mutated messages), so a stored event can always be read
 * back. Strings must be UTF-8, as proto3 says and the reference protobuf
 * enforces (protobuf-c does not check). It is stricter in a few other
 * corners protobuf-c lets pass: a bool
 * written with a non-varint wire type, field number 0 written in two or
 * more bytes, a packed run ending inside a varint, nesting deeper than
 * PBCHECK_MAX_DEPTH - none of which an encoder produces.
 */
#ifndef SONDE_SCHEMA_PBCHECK_H
#define SONDE_SCHEMA_PBCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define PBCHECK_MAX_DEPTH 16
#define PBCHECK_WHY_MAX   128

/* The common event header, pointing into the checked bytes. */
struct pbcheck_header {
    const char *agent_id; /* not NUL-terminated */
    size_t agent_id_len;
    uint64_t seq;
};

/*
 * 0 when p[0..len) is a valid d; -1 with a reason in why otherwise, naming
 * the field by its path ("detection.ssl.client_sni: 300 bytes, over the
 * limit of 200"). Strings
 * and bytes over max_string are invalid. When h is given, the top-level
 * fields 1 (string) and 2 (uint64) are stored there (last one wins, as in
 * protobuf).
 */
int schema_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                    size_t max_string, struct pbcheck_header *h, char why[PBCHECK_WHY_MAX]);

/*
 * The two walkers schema_pb_check is made of, which accept exactly the
 * same messages. The fast one is generated for every message of
 * events.proto (pbgen.c) and says only yes (0) or no (-1), or -2 for a
 * descriptor it was not generated for. The reflective one works for any
 * descriptor and says why.
 */
int schema_pb_check_fast(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         size_t max_string, struct pbcheck_header *h);
int schema_pb_check_reflect(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                            size_t max_string, struct pbcheck_header *h, char why[PBCHECK_WHY_MAX]);

#endif
