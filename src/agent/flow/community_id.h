/*
 * community_id.h - Community ID v1 (corelight/community-id-spec): the flow
 * hash other tools (Zeek, Suricata, Elastic) print, so our flows join theirs.
 */
#ifndef SONDE_COMMUNITY_ID_H
#define SONDE_COMMUNITY_ID_H

#include <stddef.h>
#include <stdint.h>

#define COMMUNITY_ID_LEN 31 /* "1:" + 28 base64 chars + NUL */

/*
 * Compute the ID of a flow seen from src to dst. For ICMP/ICMPv6 pass the
 * type as sport and the code as dport. Protocols without ports pass 0.
 * Writes a NUL-terminated string; returns 0, or -1 for a bad ip_version.
 */
int community_id_v1(char out[COMMUNITY_ID_LEN], uint16_t seed, int ip_version, uint8_t proto,
                    const uint8_t *src, const uint8_t *dst, uint16_t sport, uint16_t dport);

/* Standard base64 with padding; out must hold 4 * ((n + 2) / 3) + 1 bytes. */
void base64_encode(char *out, const uint8_t *in, size_t n);

#endif
