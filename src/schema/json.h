/*
 * json.h - JSON for any protobuf-c message, by walking its descriptor.
 *
 * The rules are those of the header comment of proto/sonde/v1/events.proto:
 * "type" first (the message name in snake_case), then every field in
 * descriptor order under its proto name. Scalars are always written (zero,
 * false and "" included) so every object of a type has the same shape;
 * oneof members only when their case is set; sub-messages only when present.
 * Enums are their value name, lower case, without the enum's prefix; bytes
 * are lower-case hex; 64-bit integers are plain JSON numbers; NaN and
 * infinities are null. Strings are valid UTF-8 JSON whatever their bytes.
 *
 * Numbers are formatted with the C library: the process must keep the "C"
 * LC_NUMERIC locale (the default; sonde never calls setlocale for it).
 */
#ifndef SONDE_SCHEMA_JSON_H
#define SONDE_SCHEMA_JSON_H

#include <protobuf-c/protobuf-c.h>

#include "sbuf.h"
#include "sonde/v1/events.pb-c.h"

/* Deepest nesting of sub-messages written; deeper messages are refused. */
#define SCHEMA_JSON_MAX_DEPTH 32

/*
 * Append one JSON object (no newline) for msg to out. Returns 0, or -1 if
 * msg is malformed (NULL, a repeated field with a count but no array, a field
 * type this protobuf-c version does not know, too deep) or out failed; out
 * is then left as it was before the call unless it failed.
 */
int schema_json_encode(struct sbuf *out, const ProtobufCMessage *msg);

/*
 * Append the object of the member set in ev: {"type":"flow",...}.
 * Returns -1 if no member is set (or one unknown to this build), else as above.
 */
int schema_json_encode_event(struct sbuf *out, const Sonde__V1__Event *ev);

#endif
