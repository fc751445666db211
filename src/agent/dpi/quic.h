/*
 * quic.h - the QUIC version of a flow, read from its long-header packets.
 *
 * nDPI 4.2 finds a QUIC flow's SNI but does not keep the version it
 * parsed; the version field sits in the clear in every long-header packet
 * (RFC 8999, the version-independent invariants), and in Google QUIC's
 * public header before that.
 */
#ifndef SONDE_QUIC_H
#define SONDE_QUIC_H

#include <stddef.h>
#include <stdint.h>

/* The version of the QUIC packet in data[0 .. len), or 0 if it carries none. */
uint32_t quic_version(const uint8_t *data, size_t len);
/* A name for version v ("v1", "draft-29", "Q046"), into buf; returns buf. */
const char *quic_version_name(uint32_t v, char *buf, size_t size);

#endif
