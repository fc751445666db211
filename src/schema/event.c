/*
 * event.c - event-type registry and naming rules, from the descriptors alone.
 *
 * Everything that needs a name for a type (the JSON "type" key, -o filters,
 * SQL table names) asks here, so there is one rule for turning "FlowPurge"
 * into "flow_purge" and one list of event types: the oneof of sonde.v1.Event.
 *
 * The only state is the registry of snake_case names, built once (pthread_once)
 * and read-only afterwards, so any thread may use it without locking.
 */
#include <pthread.h>
#include <string.h>

#include "event.h"
#include "log.h"

struct schema_type {
    const ProtobufCMessageDescriptor *desc;
    int tag; /* Event field number, 0 if not an Event member */
    char name[SCHEMA_MAX_NAME];
};

/* Event members numbered below this are found by index: the collector
 * looks one up for every event it frames. */
#define SCHEMA_TAG_TABLE 64

struct schema_registry {
    struct schema_type types[SCHEMA_MAX_TYPES];
    size_t n_types;
    int event_tags[SCHEMA_MAX_TYPES]; /* in Event descriptor order */
    size_t n_events;
    const ProtobufCMessageDescriptor *by_tag[SCHEMA_TAG_TABLE];
};

static struct schema_registry registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

/* ASCII only: names in descriptors are identifiers, and locale must not matter. */
static int is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char to_lower(char c)
{
    return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

static char to_upper(char c)
{
    return is_lower(c) ? (char)(c - 'a' + 'A') : c;
}

/*
 * A word starts at an upper-case letter that follows a lower-case letter or
 * a digit ("FlowPurge", "Ip4Flag"), or that ends an acronym ("HTTPRequest":
 * the R). Digits never start a word: "Icmp6" -> "icmp6".
 */
static int word_starts(const char *s, size_t i)
{
    if (i == 0 || !is_upper(s[i]))
        return 0;
    if (is_lower(s[i - 1]) || is_digit(s[i - 1]))
        return 1;
    return is_upper(s[i - 1]) && is_lower(s[i + 1]);
}

size_t schema_snake_case(char *dst, const char *camel, int upper)
{
    size_t i, n = 0;

    for (i = 0; camel[i] != '\0'; i++) {
        if (word_starts(camel, i))
            dst[n++] = '_';
        dst[n++] = upper ? to_upper(camel[i]) : to_lower(camel[i]);
    }
    return n;
}

/* Compare the prefix on the fly: no buffer, so no length limit. */
const char *schema_enum_value_suffix(const ProtobufCEnumDescriptor *e, const char *value_name)
{
    const char *camel = e->short_name;
    const char *p = value_name;
    size_t i;

    for (i = 0; camel[i] != '\0'; i++) {
        if (word_starts(camel, i) && *p++ != '_')
            return value_name;
        if (*p++ != to_upper(camel[i]))
            return value_name;
    }
    if (*p++ != '_' || *p == '\0')
        return value_name;
    return p;
}

static int is_event_member(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->descriptor != NULL;
}

static struct schema_type *registry_find(const ProtobufCMessageDescriptor *d)
{
    size_t i;

    for (i = 0; i < registry.n_types; i++)
        if (registry.types[i].desc == d)
            return &registry.types[i];
    return NULL;
}

static void registry_add(const ProtobufCMessageDescriptor *d, int tag)
{
    struct schema_type *t = registry_find(d);
    size_t len = strlen(d->short_name);

    if (t != NULL) {
        if (t->tag == 0)
            t->tag = tag;
        return;
    }
    if (registry.n_types == SCHEMA_MAX_TYPES) {
        log_error("schema: more than %d message types, %s left out; raise SCHEMA_MAX_TYPES",
                  SCHEMA_MAX_TYPES, d->name);
        return;
    }
    if (SCHEMA_SNAKE_MAX(len) >= SCHEMA_MAX_NAME) {
        log_error("schema: type name %s too long, left out; raise SCHEMA_MAX_NAME", d->name);
        return;
    }
    t = &registry.types[registry.n_types++];
    t->desc = d;
    t->tag = tag;
    t->name[schema_snake_case(t->name, d->short_name, 0)] = '\0';
}

/* Event, its members (with their tags), then every message they contain. */
static void registry_build(void)
{
    const ProtobufCMessageDescriptor *ev = &sonde__v1__event__descriptor;
    size_t i, j;

    registry_add(ev, 0);
    for (i = 0; i < ev->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &ev->fields[i];

        if (!is_event_member(f))
            continue;
        registry_add(f->descriptor, (int)f->id);
        if (registry_find(f->descriptor) != NULL)
            registry.event_tags[registry.n_events++] = (int)f->id;
        if (f->id < SCHEMA_TAG_TABLE)
            registry.by_tag[f->id] = f->descriptor;
    }
    /* Breadth first: n_types grows while we walk. */
    for (i = 0; i < registry.n_types; i++) {
        const ProtobufCMessageDescriptor *d = registry.types[i].desc;

        for (j = 0; j < d->n_fields; j++)
            if (d->fields[j].type == PROTOBUF_C_TYPE_MESSAGE)
                registry_add(d->fields[j].descriptor, 0);
    }
}

static const struct schema_registry *registry_get(void)
{
    pthread_once(&registry_once, registry_build);
    return &registry;
}

const ProtobufCMessageDescriptor *schema_event_descriptor(int tag)
{
    const ProtobufCFieldDescriptor *f;

    if (tag <= 0)
        return NULL;
    if (tag < SCHEMA_TAG_TABLE)
        return registry_get()->by_tag[tag];
    f = protobuf_c_message_descriptor_get_field(&sonde__v1__event__descriptor, (unsigned)tag);
    if (f == NULL || !is_event_member(f))
        return NULL;
    return f->descriptor;
}

int schema_event_tag_by_name(const char *type_name)
{
    const struct schema_registry *r = registry_get();
    size_t i;

    if (type_name == NULL)
        return 0;
    for (i = 0; i < r->n_types; i++)
        if (r->types[i].tag != 0 && strcmp(r->types[i].name, type_name) == 0)
            return r->types[i].tag;
    return 0;
}

const char *schema_type_name(const ProtobufCMessageDescriptor *d)
{
    const struct schema_registry *r = registry_get();
    size_t i;

    for (i = 0; i < r->n_types; i++)
        if (r->types[i].desc == d)
            return r->types[i].name;
    return NULL;
}

size_t schema_event_count(void)
{
    return registry_get()->n_events;
}

int schema_event_tag_at(size_t i)
{
    const struct schema_registry *r = registry_get();

    return i < r->n_events ? r->event_tags[i] : 0;
}

/* The singular, non-oneof field name of type type in d, or NULL. */
static const ProtobufCFieldDescriptor *header_field(const ProtobufCMessageDescriptor *d,
                                                    const char *name, ProtobufCType type)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);

    if (f == NULL || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED ||
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    return f;
}

/* Address of field f in m; marks it present if it is a proto2 optional scalar. */
static void *field_set(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    return (char *)m + f->offset;
}

int schema_set_header(ProtobufCMessage *m, const char *agent_id, uint64_t seq, uint64_t timestamp)
{
    const ProtobufCFieldDescriptor *fid, *fseq, *fts;

    if (m == NULL || m->descriptor == NULL)
        return -1;
    /* Check all three before writing any: on failure m is unchanged. */
    fid = header_field(m->descriptor, "agent_id", PROTOBUF_C_TYPE_STRING);
    fseq = header_field(m->descriptor, "seq", PROTOBUF_C_TYPE_UINT64);
    fts = header_field(m->descriptor, "timestamp", PROTOBUF_C_TYPE_UINT64);
    if (fid == NULL || fseq == NULL || fts == NULL)
        return -1;
    /* Generated structs hold strings as char *; the message never writes through it. */
    *(char **)field_set(m, fid) = (char *)(agent_id != NULL ? agent_id : protobuf_c_empty_string);
    *(uint64_t *)field_set(m, fseq) = seq;
    *(uint64_t *)field_set(m, fts) = timestamp;
    return 0;
}

int schema_get_header(const ProtobufCMessage *m, const char **agent_id, uint64_t *seq)
{
    const ProtobufCFieldDescriptor *fid, *fseq;

    if (m == NULL || m->descriptor == NULL)
        return -1;
    fid = header_field(m->descriptor, "agent_id", PROTOBUF_C_TYPE_STRING);
    fseq = header_field(m->descriptor, "seq", PROTOBUF_C_TYPE_UINT64);
    if (fid == NULL || fseq == NULL)
        return -1;
    *agent_id = *(const char *const *)((const char *)m + fid->offset);
    *seq = *(const uint64_t *)((const char *)m + fseq->offset);
    return 0;
}
