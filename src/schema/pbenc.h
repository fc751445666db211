/*
 * pbenc.h - protobuf encoding of event messages, one pass, no allocation.
 *
 * protobuf_c_message_pack() needs protobuf_c_message_get_packed_size()
 * first, so every event would be walked twice, each time by a general
 * descriptor interpreter. Events are built and packed on the packet path,
 * so the encoder is C generated for each message of events.proto at build
 * time (pbgen.c), writing into a buffer whose size the caller bounds. The
 * output is byte for byte what protobuf-c produces (same field order,
 * proto3 zero values omitted, repeated scalars packed); tests/unit/
 * test_pbenc.c checks that.
 */
#ifndef SONDE_PBENC_H
#define SONDE_PBENC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/*
 * Encode m into buf; returns the length, or -1 when cap may be too small
 * (the encoder checks room per message, so it wants some slack above the
 * exact size) or m is not an events.proto message. On -1, pack with
 * protobuf-c into a buffer of protobuf_c_message_get_packed_size() bytes.
 */
long schema_pb_encode(const ProtobufCMessage *m, uint8_t *buf, size_t cap);

#endif
