/*
 * event.h - the event-type registry and the naming rules, both derived at
 * run time from the protobuf-c descriptors of proto/sonde/v1/events.proto.
 *
 * The set of event types is the oneof of sonde.v1.Event: adding a message
 * there makes it known here (its tag, its "type" name) with no other code.
 */
#ifndef SONDE_SCHEMA_EVENT_H
#define SONDE_SCHEMA_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "sonde/v1/events.pb-c.h"

/* Longest snake_case type name the registry keeps, NUL included. */
#define SCHEMA_MAX_NAME 64
/* Most message types reachable from sonde.v1.Event the registry keeps. */
#define SCHEMA_MAX_TYPES 128

/* Descriptor of the Event member with field number tag, or NULL. */
const ProtobufCMessageDescriptor *schema_event_descriptor(int tag);

/* Event field number of the type named type_name ("flow_purge" -> 8), 0 if none. */
int schema_event_tag_by_name(const char *type_name);

/*
 * snake_case name of a message type ("FlowPurge" -> "flow_purge"). Known for
 * sonde.v1.Event, its members and every message reachable from them; NULL for
 * any other descriptor. The pointer stays valid for the life of the process.
 */
const char *schema_type_name(const ProtobufCMessageDescriptor *d);

/* Number of event types, and the Event field number of the i-th (0 if out of range). */
size_t schema_event_count(void);
int schema_event_tag_at(size_t i);

/*
 * Set the common header (agent_id, seq, timestamp) of any event message by
 * reflection. agent_id is referenced, not copied: it must outlive m (NULL
 * means ""). Returns 0, or -1 if m lacks one of the fields or its type differs.
 */
int schema_set_header(ProtobufCMessage *m, const char *agent_id, uint64_t seq, uint64_t timestamp);
/* Read agent_id and seq back; -1 if m has no such header. */
int schema_get_header(const ProtobufCMessage *m, const char **agent_id, uint64_t *seq);

/*
 * Naming rules shared with the JSON encoder.
 *
 * schema_snake_case writes the snake_case form of a CamelCase name to dst
 * (lower case, or UPPER_SNAKE if upper is set), without a NUL, and returns
 * its length. dst must have room for SCHEMA_SNAKE_MAX(strlen(camel)) bytes.
 */
#define SCHEMA_SNAKE_MAX(n) (2 * (n))
size_t schema_snake_case(char *dst, const char *camel, int upper);

/*
 * The part of an enum value's name after the enum's prefix, which is its
 * type name in UPPER_SNAKE plus "_" (OtherType: "OTHER_TYPE_REMOTE" ->
 * "REMOTE"). The whole name if it does not start with the prefix.
 */
const char *schema_enum_value_suffix(const ProtobufCEnumDescriptor *e, const char *value_name);

#endif
