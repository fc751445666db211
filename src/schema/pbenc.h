/*
 * pbenc.h - one-pass protobuf encoding of proto3 messages; see pbenc.c.
 */
#ifndef SONDE_PBENC_H
#define SONDE_PBENC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Encode m into buf; returns the length, or -1 when cap is too small. */
long schema_pb_encode(const ProtobufCMessage *m, uint8_t *buf, size_t cap);

#endif
