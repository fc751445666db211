/*
 * test_json.c - the schema module: JSON by reflection, the event registry,
 * the pb file format.
 *
 * Expected JSON is written out in full: the exact text is the contract with
 * every consumer of -o json:. Every line produced is also parsed by jansson
 * (rejecting duplicate keys), so "looks right" is backed by "is JSON".
 * A hand-written descriptor (all_types) covers the protobuf-c types and
 * labels that events.proto does not use yet.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "event.h"
#include "json.h"
#include "pbfile.h"
#include "sbuf.h"

/* Iterations of the randomised round-trip tests (fixed seed: reproducible). */
#define RANDOM_ROUNDS 2000
#define RANDOM_SEED   12345u

/* ------------------------------------------------------------ helpers */

/* Parse text as one JSON object with jansson; fail the test if it is not. */
static void assert_parses(const char *text, size_t flags)
{
    json_error_t err;
    json_t *j = json_loads(text, flags | JSON_DECODE_INT_AS_REAL, &err);

    if (j == NULL)
        fail_msg("jansson rejects %s: %s at %d", text, err.text, err.position);
    assert_true(json_is_object(j));
    json_decref(j);
}

/* Encode m, compare with expected exactly, and check it is strict JSON. */
static void assert_json(const ProtobufCMessage *m, const char *expected)
{
    struct sbuf b;

    sbuf_init(&b);
    assert_int_equal(schema_json_encode(&b, m), 0);
    assert_true(sbuf_ok(&b));
    assert_string_equal(b.data, expected);
    assert_int_equal(b.len, strlen(expected));
    assert_parses(b.data, JSON_REJECT_DUPLICATES);
    sbuf_free(&b);
}

/* Decode a JSON object and return a copy of its string member key. */
static char *json_member_string(const char *text, const char *key)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_INT_AS_REAL, &err);
    char *s;

    assert_non_null(j);
    assert_true(json_is_string(json_object_get(j, key)));
    s = strdup(json_string_value(json_object_get(j, key)));
    json_decref(j);
    return s;
}

static double json_member_real(const char *text, const char *key)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_INT_AS_REAL, &err);
    double v;

    assert_non_null(j);
    assert_true(json_is_real(json_object_get(j, key)));
    v = json_real_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

/* Deterministic xorshift: the same "random" inputs on every run. */
static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static FILE *file_with(const void *p, size_t n)
{
    FILE *fp = tmpfile();

    assert_non_null(fp);
    if (n > 0)
        assert_int_equal(fwrite(p, 1, n, fp), n);
    rewind(fp);
    return fp;
}

/* ------------------------------------------------------------ fixtures */

static void fill_flow(Sonde__V1__Flow *f, Sonde__V1__TcpInfo *tcp, Sonde__V1__Tunnel *tun)
{
    sonde__v1__flow__init(f);
    sonde__v1__tcp_info__init(tcp);
    sonde__v1__tunnel__init(tun);
    f->agent_id = "agent-1";
    f->seq = 42;
    f->timestamp = 1700000000123ull;
    f->interface = "eth0";
    f->digest = "0123abcd";
    f->community_id = "1:abc=";
    f->ip_version = 4;
    f->ip_protocol = 6;
    f->vlan_id = 10;
    f->local_mac = "aa:bb:cc:dd:ee:01";
    f->other_mac = "aa:bb:cc:dd:ee:02";
    f->local_ip = "192.168.1.10";
    f->other_ip = "93.184.216.34";
    f->local_port = 51000;
    f->other_port = 443;
    f->other_type = SONDE__V1__OTHER_TYPE__OTHER_TYPE_REMOTE;
    f->local_origin = 1;
    f->first_seen_at = 1700000000000ull;
    f->last_seen_at = 1700000000100ull;
    f->local_bytes = 1000;
    f->other_bytes = 2000;
    f->local_packets = 10;
    f->other_packets = 20;
    f->total_bytes = 3000;
    f->total_packets = 30;
    f->established = 1;
    tcp->state = SONDE__V1__TCP_STATE__TCP_STATE_ESTABLISHED;
    tcp->flags_local = 27;
    tcp->flags_other = 18;
    tcp->rtt_us = 1500;
    tcp->retransmits = 1;
    tcp->seq_errors = 2;
    tcp->mss_local = 1460;
    tcp->mss_other = 1400;
    f->tcp = tcp;
    tun->type = SONDE__V1__TUNNEL_TYPE__TUNNEL_TYPE_VXLAN;
    tun->outer_src_ip = "10.0.0.1";
    tun->outer_dst_ip = "10.0.0.2";
    tun->id = 42;
    tun->depth = 1;
    f->tunnel = tun;
    f->sampling_rate = 1;
    f->vlan_inner = 20;
    f->fragments = 3;
}

static const char flow_json[] =
    "{\"type\":\"flow\",\"agent_id\":\"agent-1\",\"seq\":42,\"timestamp\":1700000000123,"
    "\"interface\":\"eth0\",\"digest\":\"0123abcd\",\"community_id\":\"1:abc=\","
    "\"ip_version\":4,\"ip_protocol\":6,\"vlan_id\":10,\"local_mac\":\"aa:bb:cc:dd:ee:01\","
    "\"other_mac\":\"aa:bb:cc:dd:ee:02\",\"local_ip\":\"192.168.1.10\","
    "\"other_ip\":\"93.184.216.34\",\"local_port\":51000,\"other_port\":443,"
    "\"other_type\":\"remote\",\"local_origin\":true,\"first_seen_at\":1700000000000,"
    "\"last_seen_at\":1700000000100,\"local_bytes\":1000,\"other_bytes\":2000,"
    "\"local_packets\":10,\"other_packets\":20,\"total_bytes\":3000,\"total_packets\":30,"
    "\"established\":true,"
    "\"tcp\":{\"state\":\"established\",\"flags_local\":27,\"flags_other\":18,\"rtt_us\":1500,"
    "\"retransmits\":1,\"resets\":0,\"seq_errors\":2,\"mss_local\":1460,\"mss_other\":1400},"
    "\"tunnel\":{\"type\":\"vxlan\",\"outer_src_ip\":\"10.0.0.1\",\"outer_dst_ip\":\"10.0.0.2\","
    "\"id\":42,\"depth\":1},"
    "\"sampling_rate\":1,\"icmp_type\":0,\"icmp_code\":0,\"vlan_inner\":20,\"fragments\":3,"
    "\"mpls_label\":0,\"dns_host_name\":\"\"}";

/*
 * all_types: one field of every ProtobufCType, repeated fields of the
 * kinds events.proto lacks, a oneof, a proto2 optional, and an enum whose
 * values do not all carry its prefix.
 */
enum { TEST_COLOR_RED = 0, TEST_COLOR_DARK_GREEN = 1, BLUE = 5 };

static const ProtobufCEnumValue color_values[] = {
    {"TEST_COLOR_RED", "TEST_COLOR_RED", TEST_COLOR_RED},
    {"TEST_COLOR_DARK_GREEN", "TEST_COLOR_DARK_GREEN", TEST_COLOR_DARK_GREEN},
    {"BLUE", "BLUE", BLUE},
};
static const ProtobufCIntRange color_ranges[] = {{0, 0}, {5, 2}, {0, 3}};
static const ProtobufCEnumDescriptor color_desc = {
    .magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    .name = "test.TestColor",
    .short_name = "TestColor",
    .c_name = "TestColor",
    .package_name = "test",
    .n_values = 3,
    .values = color_values,
    .n_value_ranges = 2,
    .value_ranges = color_ranges,
};

struct all_types {
    ProtobufCMessage base;
    int32_t i32, s32, sf32;
    int64_t i64, s64, sf64;
    uint32_t u32, f32;
    uint64_t u64, f64;
    float fl;
    double db;
    protobuf_c_boolean b;
    int color;
    char *str;
    ProtobufCBinaryData by;
    Sonde__V1__Counter *sub;
    size_t n_colors;
    int *colors;
    size_t n_flags;
    protobuf_c_boolean *flags;
    size_t n_reals;
    double *reals;
    size_t n_floats;
    float *floats;
    size_t n_i64s;
    int64_t *i64s;
    size_t n_blobs;
    ProtobufCBinaryData *blobs;
    size_t n_strs;
    char **strs;
    size_t n_subs;
    Sonde__V1__Counter **subs;
    uint32_t choice_case;
    union {
        uint32_t pick_u32;
        char *pick_str;
    };
    protobuf_c_boolean has_opt;
    int32_t opt;
};

#define AT(f) offsetof(struct all_types, f)
#define SINGLE(nm, num, ty, f, d)                                                                  \
    {                                                                                              \
        .name = nm, .id = num, .label = PROTOBUF_C_LABEL_NONE, .type = ty, .offset = AT(f),        \
        .descriptor = d                                                                            \
    }
#define REPEATED(nm, num, ty, f, d)                                                                \
    {                                                                                              \
        .name = nm, .id = num, .label = PROTOBUF_C_LABEL_REPEATED, .type = ty,                     \
        .quantifier_offset = AT(n_##f), .offset = AT(f), .descriptor = d                           \
    }
#define ONEOF(nm, num, ty, f)                                                                      \
    {                                                                                              \
        .name = nm, .id = num, .label = PROTOBUF_C_LABEL_NONE, .type = ty,                         \
        .quantifier_offset = AT(choice_case), .offset = AT(f),                                     \
        .flags = PROTOBUF_C_FIELD_FLAG_ONEOF                                                       \
    }

static const ProtobufCFieldDescriptor all_fields[] = {
    SINGLE("i32", 1, PROTOBUF_C_TYPE_INT32, i32, NULL),
    SINGLE("s32", 2, PROTOBUF_C_TYPE_SINT32, s32, NULL),
    SINGLE("sf32", 3, PROTOBUF_C_TYPE_SFIXED32, sf32, NULL),
    SINGLE("i64", 4, PROTOBUF_C_TYPE_INT64, i64, NULL),
    SINGLE("s64", 5, PROTOBUF_C_TYPE_SINT64, s64, NULL),
    SINGLE("sf64", 6, PROTOBUF_C_TYPE_SFIXED64, sf64, NULL),
    SINGLE("u32", 7, PROTOBUF_C_TYPE_UINT32, u32, NULL),
    SINGLE("f32", 8, PROTOBUF_C_TYPE_FIXED32, f32, NULL),
    SINGLE("u64", 9, PROTOBUF_C_TYPE_UINT64, u64, NULL),
    SINGLE("f64", 10, PROTOBUF_C_TYPE_FIXED64, f64, NULL),
    SINGLE("fl", 11, PROTOBUF_C_TYPE_FLOAT, fl, NULL),
    SINGLE("db", 12, PROTOBUF_C_TYPE_DOUBLE, db, NULL),
    SINGLE("b", 13, PROTOBUF_C_TYPE_BOOL, b, NULL),
    SINGLE("color", 14, PROTOBUF_C_TYPE_ENUM, color, &color_desc),
    SINGLE("str", 15, PROTOBUF_C_TYPE_STRING, str, NULL),
    SINGLE("by", 16, PROTOBUF_C_TYPE_BYTES, by, NULL),
    SINGLE("sub", 17, PROTOBUF_C_TYPE_MESSAGE, sub, &sonde__v1__counter__descriptor),
    REPEATED("colors", 18, PROTOBUF_C_TYPE_ENUM, colors, &color_desc),
    REPEATED("flags", 19, PROTOBUF_C_TYPE_BOOL, flags, NULL),
    REPEATED("reals", 20, PROTOBUF_C_TYPE_DOUBLE, reals, NULL),
    REPEATED("floats", 21, PROTOBUF_C_TYPE_FLOAT, floats, NULL),
    REPEATED("i64s", 22, PROTOBUF_C_TYPE_SINT64, i64s, NULL),
    REPEATED("blobs", 23, PROTOBUF_C_TYPE_BYTES, blobs, NULL),
    REPEATED("strs", 24, PROTOBUF_C_TYPE_STRING, strs, NULL),
    REPEATED("subs", 25, PROTOBUF_C_TYPE_MESSAGE, subs, &sonde__v1__counter__descriptor),
    ONEOF("pick_u32", 26, PROTOBUF_C_TYPE_UINT32, pick_u32),
    ONEOF("pick_str", 27, PROTOBUF_C_TYPE_STRING, pick_str),
    {.name = "opt",
     .id = 28,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_INT32,
     .quantifier_offset = AT(has_opt),
     .offset = AT(opt)},
};

/* Enough for the encoder, which only walks fields (no packing, no lookups). */
static const ProtobufCMessageDescriptor all_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.AllTypes",
    .short_name = "AllTypes",
    .c_name = "AllTypes",
    .package_name = "test",
    .sizeof_message = sizeof(struct all_types),
    .n_fields = sizeof(all_fields) / sizeof(all_fields[0]),
    .fields = all_fields,
};

static void all_types_init(struct all_types *m)
{
    memset(m, 0, sizeof(*m));
    m->base.descriptor = &all_desc;
    m->str = (char *)protobuf_c_empty_string;
}

/* ------------------------------------------------------------ JSON: events */

static void test_flow(void **state)
{
    Sonde__V1__Flow f;
    Sonde__V1__TcpInfo tcp;
    Sonde__V1__Tunnel tun;

    (void)state;
    fill_flow(&f, &tcp, &tun);
    assert_json(&f.base, flow_json);
}

/* A fresh message: every scalar written with its zero value, no sub-messages. */
static void test_flow_empty(void **state)
{
    Sonde__V1__Flow f = SONDE__V1__FLOW__INIT;

    (void)state;
    assert_json(&f.base,
                "{\"type\":\"flow\",\"agent_id\":\"\",\"seq\":0,\"timestamp\":0,\"interface\":\"\","
                "\"digest\":\"\",\"community_id\":\"\",\"ip_version\":0,\"ip_protocol\":0,"
                "\"vlan_id\":0,\"local_mac\":\"\",\"other_mac\":\"\",\"local_ip\":\"\","
                "\"other_ip\":\"\",\"local_port\":0,\"other_port\":0,\"other_type\":\"unknown\","
                "\"local_origin\":false,\"first_seen_at\":0,\"last_seen_at\":0,\"local_bytes\":0,"
                "\"other_bytes\":0,\"local_packets\":0,\"other_packets\":0,\"total_bytes\":0,"
                "\"total_packets\":0,\"established\":false,\"sampling_rate\":0,\"icmp_type\":0,"
                "\"icmp_code\":0,\"vlan_inner\":0,\"fragments\":0,\"mpls_label\":0,\"dns_host_"
                "name\":\"\"}");
}

static void test_endpoint(void **state)
{
    Sonde__V1__Endpoint e = SONDE__V1__ENDPOINT__INIT;
    char *ips[] = {"192.168.1.2", "fe80::1"};

    (void)state;
    e.agent_id = "a1";
    e.seq = 7;
    e.timestamp = 1700000000000ull;
    e.interface = "eth0";
    e.mac = "aa:bb:cc:dd:ee:ff";
    e.n_ip = 2;
    e.ip = ips;
    e.first_seen_at = 1;
    e.last_seen_at = 2;
    e.packets = 3;
    e.bytes = 4;
    e.hostname = "printer";
    assert_json(&e.base, "{\"type\":\"endpoint\",\"agent_id\":\"a1\",\"seq\":7,"
                         "\"timestamp\":1700000000000,\"interface\":\"eth0\","
                         "\"mac\":\"aa:bb:cc:dd:ee:ff\",\"ip\":[\"192.168.1.2\",\"fe80::1\"],"
                         "\"first_seen_at\":1,\"last_seen_at\":2,\"packets\":3,\"bytes\":4,"
                         "\"hostname\":\"printer\"}");
    e.hostname = "";
    e.n_ip = 0;
    e.ip = NULL;
    assert_json(&e.base, "{\"type\":\"endpoint\",\"agent_id\":\"a1\",\"seq\":7,"
                         "\"timestamp\":1700000000000,\"interface\":\"eth0\","
                         "\"mac\":\"aa:bb:cc:dd:ee:ff\",\"ip\":[],"
                         "\"first_seen_at\":1,\"last_seen_at\":2,\"packets\":3,\"bytes\":4,"
                         "\"hostname\":\"\"}");
}

static void test_interface_stats(void **state)
{
    Sonde__V1__InterfaceStats s = SONDE__V1__INTERFACE_STATS__INIT;
    Sonde__V1__Counter c1 = SONDE__V1__COUNTER__INIT, c2 = SONDE__V1__COUNTER__INIT;
    Sonde__V1__Counter *reasons[] = {&c1, &c2};

    (void)state;
    s.agent_id = "a";
    s.seq = 1;
    s.timestamp = 2;
    s.interface = "eth0";
    s.raw = 100;
    s.tcp = 50;
    s.discarded = 4;
    c1.name = "truncated";
    c1.value = 3;
    c2.name = "bad_ip_header";
    c2.value = 1;
    s.n_discarded_reasons = 2;
    s.discarded_reasons = reasons;
    s.sampling_rate = 1;
    assert_json(&s.base,
                "{\"type\":\"interface_stats\",\"agent_id\":\"a\",\"seq\":1,\"timestamp\":2,"
                "\"interface\":\"eth0\",\"raw\":100,\"ethernet\":0,\"vlan\":0,\"mpls\":0,"
                "\"pppoe\":0,\"ip\":0,\"ip4\":0,\"ip6\":0,\"ip_bytes\":0,\"wire_bytes\":0,"
                "\"tcp\":50,\"udp\":0,\"icmp\":0,\"igmp\":0,\"fragmented\":0,\"discarded\":4,"
                "\"discarded_bytes\":0,\"largest_bytes\":0,\"tcp_resets\":0,\"tcp_seq_errors\":0,"
                "\"capture_dropped\":0,\"capture_filtered\":0,\"queue_dropped\":0,"
                "\"flow_dropped\":0,\"arp\":0,\"tunnel\":0,\"discarded_reasons\":["
                "{\"name\":\"truncated\",\"value\":3},{\"name\":\"bad_ip_header\",\"value\":1}],"
                "\"sampling_rate\":1}");
}

static void test_agent_status(void **state)
{
    Sonde__V1__AgentStatus s = SONDE__V1__AGENT_STATUS__INIT;
    uint32_t depth[] = {0, 7, UINT32_MAX};

    (void)state;
    s.agent_id = "a";
    s.seq = UINT64_MAX;
    s.timestamp = 3;
    s.uptime = 60;
    s.cpu_user = 1.5;
    s.cpu_system = 0.1;
    s.maxrss_kb = 10240;
    s.cpu_cores = 4;
    s.packets = UINT64_MAX;
    s.n_worker_queue_depth = 3;
    s.worker_queue_depth = depth;
    s.flow_table_size = 65536;
    assert_json(
        &s.base,
        "{\"type\":\"agent_status\",\"agent_id\":\"a\",\"seq\":18446744073709551615,"
        "\"timestamp\":3,\"uptime\":60,\"cpu_user\":1.5,\"cpu_system\":0.1,"
        "\"maxrss_kb\":10240,\"cpu_cores\":4,\"flows_active\":0,\"flows_expired\":0,"
        "\"flows_purged\":0,\"flows_evicted\":0,\"flows_closed\":0,"
        "\"packets\":18446744073709551615,\"capture_dropped\":0,\"queue_dropped\":0,"
        "\"events\":0,\"events_dropped\":0,\"discarded\":0,"
        "\"worker_queue_depth\":[0,7,4294967295],\"event_queue_depth\":0,"
        "\"flow_table_size\":65536,\"flow_bytes\":0,\"dns_malformed\":0,\"dhcp_malformed\":0,"
        "\"push\":[],\"subscribers\":0,\"subscriber_dropped\":0}");
}

static void test_eth_bytes(void **state)
{
    Sonde__V1__Eth e = SONDE__V1__ETH__INIT;
    uint8_t id[] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xff};
    uint32_t vlan[] = {100, 4095};

    (void)state;
    assert_json(&e.base, "{\"type\":\"eth\",\"agent_id\":\"\",\"seq\":0,\"timestamp\":0,"
                         "\"ether_id\":\"\",\"interface\":\"\",\"src\":\"\",\"dst\":\"\","
                         "\"ethertype\":0,\"vlan\":[],\"frame_len\":0,\"cap_len\":0}");
    e.agent_id = "a";
    e.seq = 5;
    e.timestamp = 6;
    e.ether_id.len = sizeof(id);
    e.ether_id.data = id;
    e.interface = "eth0";
    e.src = "aa:bb:cc:dd:ee:01";
    e.dst = "ff:ff:ff:ff:ff:ff";
    e.ethertype = 2048;
    e.n_vlan = 2;
    e.vlan = vlan;
    e.frame_len = 64;
    e.cap_len = 60;
    assert_json(&e.base, "{\"type\":\"eth\",\"agent_id\":\"a\",\"seq\":5,\"timestamp\":6,"
                         "\"ether_id\":\"00112233445566ff\",\"interface\":\"eth0\","
                         "\"src\":\"aa:bb:cc:dd:ee:01\",\"dst\":\"ff:ff:ff:ff:ff:ff\","
                         "\"ethertype\":2048,\"vlan\":[100,4095],\"frame_len\":64,\"cap_len\":60}");
}

static void test_agent_hello_strings(void **state)
{
    Sonde__V1__AgentHello h = SONDE__V1__AGENT_HELLO__INIT;
    char *caps[] = {"flows", "pcap"};

    (void)state;
    h.agent_id = "gw";
    h.agent_version = "0.1.0";
    h.n_capabilities = 2;
    h.capabilities = caps;
    h.json_version = 1;
    assert_json(&h.base, "{\"type\":\"agent_hello\",\"agent_id\":\"gw\",\"seq\":0,\"timestamp\":0,"
                         "\"hostname\":\"\",\"agent_version\":\"0.1.0\",\"build_version\":\"\","
                         "\"capabilities\":[\"flows\",\"pcap\"],\"start_time\":0,"
                         "\"json_version\":1,\"threads\":0,\"sampling_rate\":0}");
    h.hostname = NULL; /* tolerated: written as "" */
    assert_json(&h.base, "{\"type\":\"agent_hello\",\"agent_id\":\"gw\",\"seq\":0,\"timestamp\":0,"
                         "\"hostname\":\"\",\"agent_version\":\"0.1.0\",\"build_version\":\"\","
                         "\"capabilities\":[\"flows\",\"pcap\"],\"start_time\":0,"
                         "\"json_version\":1,\"threads\":0,\"sampling_rate\":0}");
}

/* ------------------------------------------------------------ JSON: values */

static void test_escaping(void **state)
{
    Sonde__V1__Counter c = SONDE__V1__COUNTER__INIT;

    (void)state;
    c.name = "\"q\" back\\slash /\n\t\r\b\f\x01\x1f\x7f";
    assert_json(&c.base, "{\"type\":\"counter\",\"name\":"
                         "\"\\\"q\\\" back\\\\slash /\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\","
                         "\"value\":0}");
    /* Well-formed multibyte UTF-8 passes through unchanged. */
    c.name = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
    assert_json(&c.base, "{\"type\":\"counter\",\"name\":"
                         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\","
                         "\"value\":0}");
}

#define FFFD "\xef\xbf\xbd"

/* Each maximal ill-formed subpart becomes one U+FFFD (Unicode 3.9). */
static void test_invalid_utf8(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\xff", FFFD},
        {"a\xc3", "a" FFFD}, /* truncated at the end */
        {"\xe2\x82"
         "A",
         FFFD "A"},                                /* truncated, then ASCII */
        {"\xc0\xaf", FFFD FFFD},                   /* overlong lead */
        {"\xe0\x80\x80", FFFD FFFD FFFD},          /* overlong 3-byte */
        {"\xed\xa0\x80", FFFD FFFD FFFD},          /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* past U+10FFFF */
        {"\xf0\x9f\x98", FFFD},                    /* truncated 4-byte */
        {"\x80\xbf", FFFD FFFD},                   /* lone continuations */
        {"ok\xfe\xc3\xa9", "ok" FFFD "\xc3\xa9"},
    };
    Sonde__V1__Counter c = SONDE__V1__COUNTER__INIT;
    char expected[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c.name = (char *)cases[i].in;
        snprintf(expected, sizeof(expected), "{\"type\":\"counter\",\"name\":\"%s\",\"value\":0}",
                 cases[i].out);
        assert_json(&c.base, expected);
    }
}

/* Random bytes always give JSON jansson accepts; random ASCII reads back exactly. */
static void test_random_strings(void **state)
{
    Sonde__V1__Counter c = SONDE__V1__COUNTER__INIT;
    uint64_t seed = RANDOM_SEED;
    char in[64];
    struct sbuf b;
    int round;

    (void)state;
    sbuf_init(&b);
    for (round = 0; round < RANDOM_ROUNDS; round++) {
        int ascii = round % 2;
        size_t n = rnd_next(&seed) % (sizeof(in) - 1), i;

        for (i = 0; i < n; i++)
            in[i] = (char)(1 + rnd_next(&seed) % (ascii ? 127 : 255));
        in[n] = '\0';
        c.name = in;
        sbuf_reset(&b);
        assert_int_equal(schema_json_encode(&b, &c.base), 0);
        assert_parses(b.data, JSON_REJECT_DUPLICATES);
        if (ascii) {
            char *back = json_member_string(b.data, "name");

            assert_string_equal(back, in);
            free(back);
        }
    }
    sbuf_free(&b);
}

/* Doubles and floats read back bit for bit, in the shortest form that does. */
static void test_double_round_trip(void **state)
{
    Sonde__V1__AgentStatus s = SONDE__V1__AGENT_STATUS__INIT;
    struct all_types m;
    uint64_t seed = RANDOM_SEED;
    struct sbuf b;
    int round;

    (void)state;
    sbuf_init(&b);
    all_types_init(&m);
    for (round = 0; round < RANDOM_ROUNDS; round++) {
        uint64_t bits = rnd_next(&seed);
        uint32_t fbits = (uint32_t)(bits >> 32);
        double d;
        float f;

        memcpy(&d, &bits, sizeof(d));
        memcpy(&f, &fbits, sizeof(f));
        if (!isfinite(d) || !isfinite(f))
            continue;
        s.cpu_user = d;
        sbuf_reset(&b);
        assert_int_equal(schema_json_encode(&b, &s.base), 0);
        assert_true(json_member_real(b.data, "cpu_user") == d);
        m.fl = f;
        sbuf_reset(&b);
        assert_int_equal(schema_json_encode(&b, &m.base), 0);
        assert_true((float)json_member_real(b.data, "fl") == f);
    }
    sbuf_free(&b);
}

static void test_all_types(void **state)
{
    struct all_types m;
    Sonde__V1__Counter sub = SONDE__V1__COUNTER__INIT, s0 = SONDE__V1__COUNTER__INIT;
    Sonde__V1__Counter *subs[] = {&s0};
    int colors[] = {TEST_COLOR_RED, BLUE, 42, -3};
    protobuf_c_boolean flags[] = {1, 0};
    double reals[] = {NAN, INFINITY, -INFINITY, 1e300, -0.0, 1.0 / 3, DBL_MIN};
    float floats[] = {1.5f, FLT_MAX, 0.1f};
    int64_t i64s[] = {-5, INT64_MIN};
    uint8_t ab = 0xab, by[] = {0x00, 0x01, 0xfe};
    ProtobufCBinaryData blobs[] = {{0, NULL}, {1, &ab}};
    char *strs[] = {"a", "\"b\""};

    (void)state;
    all_types_init(&m);
    m.i32 = INT32_MIN;
    m.s32 = -1;
    m.sf32 = INT32_MAX;
    m.i64 = INT64_MIN;
    m.s64 = -1;
    m.sf64 = INT64_MAX;
    m.u32 = UINT32_MAX;
    m.f32 = 7;
    m.u64 = UINT64_MAX;
    m.fl = 0.1f;
    m.db = -0.25;
    m.b = 1;
    m.color = TEST_COLOR_DARK_GREEN;
    m.str = "x";
    m.by.len = sizeof(by);
    m.by.data = by;
    sub.name = "c";
    sub.value = 5;
    m.sub = &sub;
    m.n_colors = 4;
    m.colors = colors;
    m.n_flags = 2;
    m.flags = flags;
    m.n_reals = 7;
    m.reals = reals;
    m.n_floats = 3;
    m.floats = floats;
    m.n_i64s = 2;
    m.i64s = i64s;
    m.n_blobs = 2;
    m.blobs = blobs;
    m.n_strs = 2;
    m.strs = strs;
    m.n_subs = 1;
    m.subs = subs;
    m.choice_case = 27;
    m.pick_str = "p";
    m.opt = -7; /* proto2 optional without has_: written all the same (fixed shape) */
    assert_json(&m.base,
                "{\"type\":\"all_types\",\"i32\":-2147483648,\"s32\":-1,\"sf32\":2147483647,"
                "\"i64\":-9223372036854775808,\"s64\":-1,\"sf64\":9223372036854775807,"
                "\"u32\":4294967295,\"f32\":7,\"u64\":18446744073709551615,\"f64\":0,"
                "\"fl\":0.1,\"db\":-0.25,\"b\":true,\"color\":\"dark_green\",\"str\":\"x\","
                "\"by\":\"0001fe\",\"sub\":{\"name\":\"c\",\"value\":5},"
                "\"colors\":[\"red\",\"blue\",42,-3],\"flags\":[true,false],"
                "\"reals\":[null,null,null,1e+300,-0,0.3333333333333333,2.2250738585072014e-308],"
                "\"floats\":[1.5,3.4028235e+38,0.1],\"i64s\":[-5,-9223372036854775808],"
                "\"blobs\":[\"\",\"ab\"],\"strs\":[\"a\",\"\\\"b\\\"\"],"
                "\"subs\":[{\"name\":\"\",\"value\":0}],\"pick_str\":\"p\",\"opt\":-7}");

    /* The other oneof member; no sub-message; a NULL array element. */
    m.choice_case = 26;
    m.pick_u32 = 9;
    m.sub = NULL;
    subs[0] = NULL;
    m.n_colors = m.n_flags = m.n_reals = m.n_floats = m.n_i64s = m.n_blobs = m.n_strs = 0;
    assert_json(&m.base,
                "{\"type\":\"all_types\",\"i32\":-2147483648,\"s32\":-1,\"sf32\":2147483647,"
                "\"i64\":-9223372036854775808,\"s64\":-1,\"sf64\":9223372036854775807,"
                "\"u32\":4294967295,\"f32\":7,\"u64\":18446744073709551615,\"f64\":0,"
                "\"fl\":0.1,\"db\":-0.25,\"b\":true,\"color\":\"dark_green\",\"str\":\"x\","
                "\"by\":\"0001fe\",\"colors\":[],\"flags\":[],\"reals\":[],\"floats\":[],"
                "\"i64s\":[],\"blobs\":[],\"strs\":[],\"subs\":[null],\"pick_u32\":9,\"opt\":-7}");

    /* No oneof member set: neither is written. */
    m.choice_case = 0;
    m.n_subs = 0;
    m.db = NAN;
    assert_json(&m.base,
                "{\"type\":\"all_types\",\"i32\":-2147483648,\"s32\":-1,\"sf32\":2147483647,"
                "\"i64\":-9223372036854775808,\"s64\":-1,\"sf64\":9223372036854775807,"
                "\"u32\":4294967295,\"f32\":7,\"u64\":18446744073709551615,\"f64\":0,"
                "\"fl\":0.1,\"db\":null,\"b\":true,\"color\":\"dark_green\",\"str\":\"x\","
                "\"by\":\"0001fe\",\"colors\":[],\"flags\":[],\"reals\":[],\"floats\":[],"
                "\"i64s\":[],\"blobs\":[],\"strs\":[],\"subs\":[],\"opt\":-7}");
}

static void test_enums(void **state)
{
    Sonde__V1__TcpInfo t = SONDE__V1__TCP_INFO__INIT;
    Sonde__V1__FlowPurge p = SONDE__V1__FLOW_PURGE__INIT;
    Sonde__V1__Interface i = SONDE__V1__INTERFACE__INIT;
    struct sbuf b;

    (void)state;
    t.state = SONDE__V1__TCP_STATE__TCP_STATE_SYN_SENT;
    assert_json(&t.base, "{\"type\":\"tcp_info\",\"state\":\"syn_sent\",\"flags_local\":0,"
                         "\"flags_other\":0,\"rtt_us\":0,\"retransmits\":0,\"resets\":0,"
                         "\"seq_errors\":0,\"mss_local\":0,\"mss_other\":0}");
    t.state = (Sonde__V1__TcpState)99;
    assert_json(&t.base, "{\"type\":\"tcp_info\",\"state\":99,\"flags_local\":0,"
                         "\"flags_other\":0,\"rtt_us\":0,\"retransmits\":0,\"resets\":0,"
                         "\"seq_errors\":0,\"mss_local\":0,\"mss_other\":0}");
    t.state = (Sonde__V1__TcpState)-1;
    assert_json(&t.base, "{\"type\":\"tcp_info\",\"state\":-1,\"flags_local\":0,"
                         "\"flags_other\":0,\"rtt_us\":0,\"retransmits\":0,\"resets\":0,"
                         "\"seq_errors\":0,\"mss_local\":0,\"mss_other\":0}");

    sbuf_init(&b);
    p.reason = SONDE__V1__PURGE_REASON__PURGE_REASON_EVICTED;
    assert_int_equal(schema_json_encode(&b, &p.base), 0);
    assert_non_null(strstr(b.data, ",\"reason\":\"evicted\","));
    sbuf_reset(&b);
    i.role = SONDE__V1__INTERFACE_ROLE__INTERFACE_ROLE_WAN;
    i.capture_type = SONDE__V1__CAPTURE_TYPE__CAPTURE_TYPE_FILE;
    assert_int_equal(schema_json_encode(&b, &i.base), 0);
    assert_non_null(strstr(b.data, ",\"role\":\"wan\",\"capture_type\":\"file\","));
    sbuf_free(&b);
}

static void test_names(void **state)
{
    static const struct {
        const char *camel, *snake;
    } cases[] = {
        {"FlowPurge", "flow_purge"},
        {"Ip4", "ip4"},
        {"AgentHello", "agent_hello"},
        {"InterfaceStats", "interface_stats"},
        {"Icmp6", "icmp6"},
        {"TcpInfo", "tcp_info"},
        {"HTTPRequest", "http_request"},
        {"Ip4Flag", "ip4_flag"},
        {"A", "a"},
        {"", ""},
    };
    char buf[64];
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = schema_snake_case(buf, cases[i].camel, 0);
        buf[n] = '\0';
        assert_string_equal(buf, cases[i].snake);
    }
    n = schema_snake_case(buf, "OtherType", 1);
    buf[n] = '\0';
    assert_string_equal(buf, "OTHER_TYPE");

    assert_string_equal(
        schema_enum_value_suffix(&sonde__v1__other_type__descriptor, "OTHER_TYPE_REMOTE"),
        "REMOTE");
    assert_string_equal(
        schema_enum_value_suffix(&sonde__v1__tcp_state__descriptor, "TCP_STATE_SYN_SENT"),
        "SYN_SENT");
    /* No prefix, a partial one, or nothing after it: the whole name. */
    assert_string_equal(schema_enum_value_suffix(&sonde__v1__other_type__descriptor, "REMOTE"),
                        "REMOTE");
    assert_string_equal(schema_enum_value_suffix(&sonde__v1__other_type__descriptor, "OTHER_TYPEX"),
                        "OTHER_TYPEX");
    assert_string_equal(schema_enum_value_suffix(&sonde__v1__other_type__descriptor, "OTHER_TYPE_"),
                        "OTHER_TYPE_");
    assert_string_equal(schema_enum_value_suffix(&sonde__v1__other_type__descriptor, "OTHER"),
                        "OTHER");
    assert_string_equal(schema_enum_value_suffix(&sonde__v1__other_type__descriptor, ""), "");
}

/* ------------------------------------------------------------ JSON: errors */

/* node: a message that contains itself, to go past SCHEMA_JSON_MAX_DEPTH. */
struct node {
    ProtobufCMessage base;
    struct node *child;
};
static const ProtobufCMessageDescriptor node_desc;
static const ProtobufCFieldDescriptor node_fields[] = {
    {.name = "child",
     .id = 1,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .offset = offsetof(struct node, child),
     .descriptor = &node_desc},
};
static const ProtobufCMessageDescriptor node_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.Node",
    .short_name = "Node",
    .c_name = "Node",
    .package_name = "test",
    .sizeof_message = sizeof(struct node),
    .n_fields = 1,
    .fields = node_fields,
};

/* Objects nested n deep: ok up to SCHEMA_JSON_MAX_DEPTH below the top. */
static int encode_chain(struct sbuf *b, size_t n)
{
    struct node chain[SCHEMA_JSON_MAX_DEPTH + 2];
    size_t i;

    assert_true(n <= sizeof(chain) / sizeof(chain[0]));
    for (i = 0; i < n; i++) {
        chain[i].base.descriptor = &node_desc;
        chain[i].child = i + 1 < n ? &chain[i + 1] : NULL;
    }
    return schema_json_encode(b, &chain[0].base);
}

static void test_errors(void **state)
{
    struct sbuf b;
    struct all_types m;
    Sonde__V1__Endpoint e = SONDE__V1__ENDPOINT__INIT;
    Sonde__V1__Event ev = SONDE__V1__EVENT__INIT;

    (void)state;
    sbuf_init(&b);
    sbuf_puts(&b, "keep");

    assert_int_equal(encode_chain(&b, SCHEMA_JSON_MAX_DEPTH + 1), 0);
    assert_parses(b.data + 4, JSON_REJECT_DUPLICATES);
    b.len = 4;
    assert_int_equal(encode_chain(&b, SCHEMA_JSON_MAX_DEPTH + 2), -1);
    assert_string_equal(b.data, "keep"); /* nothing half-written */

    assert_int_equal(schema_json_encode(&b, NULL), -1);
    e.n_ip = 3; /* a count with no array */
    assert_int_equal(schema_json_encode(&b, &e.base), -1);
    assert_string_equal(b.data, "keep");

    /* A type this build does not know. */
    all_types_init(&m);
    m.base.descriptor = &all_desc;
    {
        ProtobufCFieldDescriptor f = all_fields[0];
        ProtobufCMessageDescriptor d = all_desc;

        f.type = (ProtobufCType)99;
        d.fields = &f;
        d.n_fields = 1;
        m.base.descriptor = &d;
        assert_int_equal(schema_json_encode(&b, &m.base), -1);
        assert_string_equal(b.data, "keep");
    }

    /* Event envelope with nothing (or nothing usable) set. */
    assert_int_equal(schema_json_encode_event(&b, &ev), -1);
    assert_int_equal(schema_json_encode_event(&b, NULL), -1);
    ev.event_case = SONDE__V1__EVENT__EVENT_FLOW; /* but flow is NULL */
    assert_int_equal(schema_json_encode_event(&b, &ev), -1);
    ev.event_case = (Sonde__V1__Event__EventCase)9; /* no such member */
    assert_int_equal(schema_json_encode_event(&b, &ev), -1);
    assert_string_equal(b.data, "keep");

    /* A buffer that already failed stays failed. */
    b.failed = 1;
    assert_int_equal(schema_json_encode(&b, &e.base), -1);
    sbuf_free(&b);
}

/* ------------------------------------------------------------ Event envelope and registry */

static void test_event_envelope(void **state)
{
    Sonde__V1__Flow f;
    Sonde__V1__TcpInfo tcp;
    Sonde__V1__Tunnel tun;
    Sonde__V1__Icmp6 icmp = SONDE__V1__ICMP6__INIT;
    Sonde__V1__Event ev = SONDE__V1__EVENT__INIT;
    struct sbuf b;

    (void)state;
    fill_flow(&f, &tcp, &tun);
    ev.event_case = SONDE__V1__EVENT__EVENT_FLOW;
    ev.flow = &f;
    sbuf_init(&b);
    assert_int_equal(schema_json_encode_event(&b, &ev), 0);
    assert_string_equal(b.data, flow_json);

    sbuf_reset(&b);
    ev.event_case = SONDE__V1__EVENT__EVENT_ICMP6;
    ev.icmp6 = &icmp;
    assert_int_equal(schema_json_encode_event(&b, &ev), 0);
    assert_memory_equal(b.data, "{\"type\":\"icmp6\",\"agent_id\":\"\",", 30);
    sbuf_free(&b);
}

/* The Event oneof, by hand: what the registry must find on its own. */
static const struct {
    int tag;
    const char *name;
    const ProtobufCMessageDescriptor *desc;
} members[] = {
    {1, "agent_hello", &sonde__v1__agent_hello__descriptor},
    {2, "agent_status", &sonde__v1__agent_status__descriptor},
    {3, "interface", &sonde__v1__interface__descriptor},
    {4, "interface_stats", &sonde__v1__interface_stats__descriptor},
    {5, "endpoint", &sonde__v1__endpoint__descriptor},
    {6, "flow", &sonde__v1__flow__descriptor},
    {7, "flow_stats", &sonde__v1__flow_stats__descriptor},
    {8, "flow_purge", &sonde__v1__flow_purge__descriptor},
    {9, "dns", &sonde__v1__dns__descriptor},
    {10, "tls", &sonde__v1__tls__descriptor},
    {11, "http", &sonde__v1__http__descriptor},
    {12, "dhcp", &sonde__v1__dhcp__descriptor},
    {20, "eth", &sonde__v1__eth__descriptor},
    {21, "arp", &sonde__v1__arp__descriptor},
    {22, "ip4", &sonde__v1__ip4__descriptor},
    {23, "ip6", &sonde__v1__ip6__descriptor},
    {24, "tcp", &sonde__v1__tcp__descriptor},
    {25, "udp", &sonde__v1__udp__descriptor},
    {26, "icmp4", &sonde__v1__icmp4__descriptor},
    {27, "icmp6", &sonde__v1__icmp6__descriptor},
    {28, "dns_header", &sonde__v1__dns_header__descriptor},
    {29, "mdns_header", &sonde__v1__mdns_header__descriptor},
    {30, "dhcp_header", &sonde__v1__dhcp_header__descriptor},
};
#define N_MEMBERS (sizeof(members) / sizeof(members[0]))

static void test_registry(void **state)
{
    size_t i;

    (void)state;
    assert_int_equal(schema_event_count(), N_MEMBERS);
    for (i = 0; i < N_MEMBERS; i++) {
        const ProtobufCMessageDescriptor *d = schema_event_descriptor(members[i].tag);
        const char *name;

        assert_int_equal(schema_event_tag_at(i), members[i].tag);
        assert_ptr_equal(d, members[i].desc);
        name = schema_type_name(d);
        assert_non_null(name);
        assert_string_equal(name, members[i].name);
        assert_ptr_equal(schema_type_name(d), name); /* stable */
        assert_int_equal(schema_event_tag_by_name(name), members[i].tag);
        assert_int_equal(schema_event_tag_by_name(members[i].name), members[i].tag);
    }
    assert_int_equal(schema_event_tag_at(N_MEMBERS), 0);
    assert_int_equal(schema_event_tag_at((size_t)-1), 0);

    /* Not Event members. */
    assert_null(schema_event_descriptor(0));
    assert_null(schema_event_descriptor(-1));
    assert_null(schema_event_descriptor(13));
    assert_null(schema_event_descriptor(31));
    assert_null(schema_event_descriptor(1 << 28));
    assert_int_equal(schema_event_tag_by_name(""), 0);
    assert_int_equal(schema_event_tag_by_name(NULL), 0);
    assert_int_equal(schema_event_tag_by_name("Flow"), 0);
    assert_int_equal(schema_event_tag_by_name("flow_"), 0);
    assert_int_equal(schema_event_tag_by_name("tcp_info"), 0);
    assert_int_equal(schema_event_tag_by_name("event"), 0);

    /* Messages reachable from Event have names too; others do not. */
    assert_string_equal(schema_type_name(&sonde__v1__event__descriptor), "event");
    assert_string_equal(schema_type_name(&sonde__v1__tcp_info__descriptor), "tcp_info");
    assert_string_equal(schema_type_name(&sonde__v1__tunnel__descriptor), "tunnel");
    assert_string_equal(schema_type_name(&sonde__v1__counter__descriptor), "counter");
    assert_null(schema_type_name(&all_desc));
    assert_null(schema_type_name(NULL));
}

/*
 * "type" is the key that names the event: an event field called "type"
 * would write that key twice and hide the event's type from consumers.
 */
static void test_no_field_shadows_type(void **state)
{
    size_t i, j;
    int clashes = 0;

    (void)state;
    for (i = 0; i < schema_event_count(); i++) {
        const ProtobufCMessageDescriptor *d = schema_event_descriptor(schema_event_tag_at(i));

        for (j = 0; j < d->n_fields; j++) {
            if (strcmp(d->fields[j].name, "type") == 0) {
                print_message("%s has a field named \"type\" (field %u)\n", d->name,
                              d->fields[j].id);
                clashes++;
            }
        }
    }
    assert_int_equal(clashes, 0);
}

/* ------------------------------------------------------------ schema_set_header */

/* A message whose header has the wrong type for timestamp. */
struct bad_header {
    ProtobufCMessage base;
    char *agent_id;
    uint64_t seq;
    uint32_t timestamp;
};
static const ProtobufCFieldDescriptor bad_fields[] = {
    {.name = "agent_id",
     .id = 1,
     .type = PROTOBUF_C_TYPE_STRING,
     .offset = offsetof(struct bad_header, agent_id)},
    {.name = "seq",
     .id = 2,
     .type = PROTOBUF_C_TYPE_UINT64,
     .offset = offsetof(struct bad_header, seq)},
    {.name = "timestamp",
     .id = 3,
     .type = PROTOBUF_C_TYPE_UINT32,
     .offset = offsetof(struct bad_header, timestamp)},
};
static const unsigned bad_by_name[] = {0, 1, 2};
static const ProtobufCMessageDescriptor bad_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.BadHeader",
    .short_name = "BadHeader",
    .sizeof_message = sizeof(struct bad_header),
    .n_fields = 3,
    .fields = bad_fields,
    .fields_sorted_by_name = bad_by_name,
};

/* A proto2 message: optional scalars carry has_ flags that must be set. */
struct p2_header {
    ProtobufCMessage base;
    char *agent_id;
    protobuf_c_boolean has_seq;
    uint64_t seq;
    protobuf_c_boolean has_timestamp;
    uint64_t timestamp;
};
static const ProtobufCFieldDescriptor p2_fields[] = {
    {.name = "agent_id",
     .id = 1,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_STRING,
     .offset = offsetof(struct p2_header, agent_id)},
    {.name = "seq",
     .id = 2,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_UINT64,
     .quantifier_offset = offsetof(struct p2_header, has_seq),
     .offset = offsetof(struct p2_header, seq)},
    {.name = "timestamp",
     .id = 3,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_UINT64,
     .quantifier_offset = offsetof(struct p2_header, has_timestamp),
     .offset = offsetof(struct p2_header, timestamp)},
};
static const ProtobufCMessageDescriptor p2_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.P2Header",
    .short_name = "P2Header",
    .sizeof_message = sizeof(struct p2_header),
    .n_fields = 3,
    .fields = p2_fields,
    .fields_sorted_by_name = bad_by_name,
};

static void test_set_header(void **state)
{
    Sonde__V1__Flow f = SONDE__V1__FLOW__INIT;
    Sonde__V1__TcpInfo t = SONDE__V1__TCP_INFO__INIT;
    struct bad_header bad = {.base = {.descriptor = &bad_desc}, .agent_id = "old"};
    struct p2_header p2 = {.base = {.descriptor = &p2_desc}};
    char expected[128];
    struct sbuf b;
    size_t i;

    (void)state;
    assert_int_equal(schema_set_header(&f.base, "gw-1", 77, 1700000000000ull), 0);
    assert_string_equal(f.agent_id, "gw-1");
    assert_int_equal(f.seq, 77);
    assert_int_equal(f.timestamp, 1700000000000ull);
    assert_int_equal(schema_set_header(&f.base, NULL, 0, 0), 0);
    assert_string_equal(f.agent_id, "");

    /* Every event type, through the registry alone. */
    sbuf_init(&b);
    for (i = 0; i < schema_event_count(); i++) {
        const ProtobufCMessageDescriptor *d = schema_event_descriptor(schema_event_tag_at(i));
        ProtobufCMessage *m = calloc(1, d->sizeof_message);

        assert_non_null(m);
        d->message_init(m);
        assert_int_equal(schema_set_header(m, "a", UINT64_MAX, i), 0);
        sbuf_reset(&b);
        assert_int_equal(schema_json_encode(&b, m), 0);
        assert_parses(b.data, 0); /* duplicate keys: test_no_field_shadows_type */
        snprintf(expected, sizeof(expected),
                 "{\"type\":\"%s\",\"agent_id\":\"a\",\"seq\":18446744073709551615,"
                 "\"timestamp\":%zu,",
                 schema_type_name(d), i);
        assert_memory_equal(b.data, expected, strlen(expected));
        free(m);
    }
    sbuf_free(&b);

    /* No header, a wrong type, no message: refused, and nothing changed. */
    assert_int_equal(schema_set_header(&t.base, "a", 1, 2), -1);
    assert_int_equal(schema_set_header(&bad.base, "new", 1, 2), -1);
    assert_string_equal(bad.agent_id, "old");
    assert_int_equal(bad.seq, 0);
    assert_int_equal(schema_set_header(NULL, "a", 1, 2), -1);

    assert_int_equal(schema_set_header(&p2.base, "p", 5, 6), 0);
    assert_string_equal(p2.agent_id, "p");
    assert_true(p2.has_seq && p2.seq == 5);
    assert_true(p2.has_timestamp && p2.timestamp == 6);
}

/* ------------------------------------------------------------ pbfile */

#define N_FRAMED 5

struct framed {
    int tag;
    ProtobufCMessage *msg;
};

/* A varint the plain way, independent of the writer under test. */
static void reference_varint(struct sbuf *out, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7f);

        v >>= 7;
        if (v)
            b |= 0x80;
        sbuf_append(out, &b, 1);
    } while (v);
}

/* The same Event packed by protobuf-c itself: the frame must match it byte for byte. */
static void reference_frame(struct sbuf *out, int tag, ProtobufCMessage *msg)
{
    Sonde__V1__Event ev = SONDE__V1__EVENT__INIT;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&sonde__v1__event__descriptor, (unsigned)tag);
    size_t n;
    uint8_t *p;

    assert_non_null(f);
    ev.event_case = (Sonde__V1__Event__EventCase)tag;
    *(ProtobufCMessage **)((char *)&ev + f->offset) = msg;
    n = sonde__v1__event__get_packed_size(&ev);
    p = malloc(n + 1);
    assert_non_null(p);
    assert_int_equal(sonde__v1__event__pack(&ev, p), n);
    reference_varint(out, n);
    sbuf_append(out, p, n);
    free(p);
}

static void frame(struct sbuf *out, int tag, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *p = malloc(n + 1);

    assert_non_null(p);
    assert_int_equal(protobuf_c_message_pack(msg, p), n);
    pbfile_frame_event(out, tag, p, n);
    free(p);
}

static void test_pbfile_round_trip(void **state)
{
    Sonde__V1__Flow flow, big;
    Sonde__V1__TcpInfo tcp, tcp2;
    Sonde__V1__Tunnel tun, tun2;
    Sonde__V1__AgentHello hello = SONDE__V1__AGENT_HELLO__INIT;
    Sonde__V1__Eth eth = SONDE__V1__ETH__INIT;
    Sonde__V1__Endpoint empty = SONDE__V1__ENDPOINT__INIT;
    char *caps[] = {"flows", "pcap"};
    uint8_t id[] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t vlan[] = {7};
    char digest[300];
    struct framed ev[N_FRAMED];
    struct sbuf file, ref, msg, a, b;
    struct pbfile_reader r;
    uint64_t offset = 0;
    FILE *fp;
    size_t i;

    (void)state;
    fill_flow(&flow, &tcp, &tun);
    fill_flow(&big, &tcp2, &tun2);
    memset(digest, 'd', sizeof(digest) - 1);
    digest[sizeof(digest) - 1] = '\0';
    big.digest = digest; /* lengths need 2-byte varints */
    hello.agent_id = "gw";
    hello.n_capabilities = 2;
    hello.capabilities = caps;
    eth.ether_id.len = sizeof(id);
    eth.ether_id.data = id;
    eth.n_vlan = 1;
    eth.vlan = vlan;
    ev[0] = (struct framed){1, &hello.base};
    ev[1] = (struct framed){6, &flow.base};
    ev[2] = (struct framed){20, &eth.base};
    ev[3] = (struct framed){5, &empty.base}; /* packs to 0 bytes */
    ev[4] = (struct framed){6, &big.base};

    sbuf_init(&file);
    sbuf_init(&ref);
    for (i = 0; i < N_FRAMED; i++) {
        frame(&file, ev[i].tag, ev[i].msg);
        reference_frame(&ref, ev[i].tag, ev[i].msg);
    }
    assert_true(sbuf_ok(&file));
    assert_int_equal(file.len, ref.len);
    assert_memory_equal(file.data, ref.data, ref.len);

    /* Read back: same events, same JSON, offsets of each frame. */
    fp = file_with(file.data, file.len);
    pbfile_reader_init(&r, fp);
    sbuf_init(&msg);
    sbuf_init(&a);
    sbuf_init(&b);
    for (i = 0; i < N_FRAMED; i++) {
        Sonde__V1__Event *e;

        assert_int_equal(pbfile_read(&r, &msg), 1);
        assert_int_equal(r.frame_offset, offset);
        offset = r.offset;
        e = sonde__v1__event__unpack(NULL, msg.len, (const uint8_t *)msg.data);
        assert_non_null(e);
        assert_int_equal(e->event_case, ev[i].tag);
        sbuf_reset(&a);
        sbuf_reset(&b);
        assert_int_equal(schema_json_encode_event(&a, e), 0);
        assert_int_equal(schema_json_encode(&b, ev[i].msg), 0);
        assert_string_equal(a.data, b.data);
        if (i == 1) {
            assert_string_equal(e->flow->digest, "0123abcd");
            assert_int_equal(e->flow->tcp->rtt_us, 1500);
            assert_int_equal(e->flow->tunnel->type, SONDE__V1__TUNNEL_TYPE__TUNNEL_TYPE_VXLAN);
        }
        if (i == 2)
            assert_memory_equal(e->eth->ether_id.data, id, sizeof(id));
        sonde__v1__event__free_unpacked(e, NULL);
    }
    assert_int_equal(r.offset, file.len);
    assert_int_equal(pbfile_read(&r, &msg), 0);
    assert_int_equal(pbfile_read(&r, &msg), 0);
    fclose(fp);
    sbuf_free(&file);
    sbuf_free(&ref);
    sbuf_free(&msg);
    sbuf_free(&a);
    sbuf_free(&b);
}

static void test_pbfile_frame_refused(void **state)
{
    int bad_tags[] = {0, -1, 13, 31, 1 << 29};
    uint8_t one = 0;
    uint8_t *huge;
    struct sbuf b;
    size_t i;
    int level = log_get_level();

    (void)state;
    log_set_level(-1); /* the refusals are logged; keep the test output clean */
    for (i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
        sbuf_init(&b);
        pbfile_frame_event(&b, bad_tags[i], &one, 1);
        assert_false(sbuf_ok(&b));
        sbuf_free(&b);
    }
    huge = calloc(1, PBFILE_MAX_EVENT + 1);
    assert_non_null(huge);
    sbuf_init(&b);
    pbfile_frame_event(&b, 6, huge, PBFILE_MAX_EVENT + 1);
    assert_false(sbuf_ok(&b));
    sbuf_reset(&b);
    pbfile_frame_event(&b, 6, huge, PBFILE_MAX_EVENT - 2); /* frame header pushes it over */
    assert_false(sbuf_ok(&b));
    sbuf_reset(&b);
    pbfile_frame_event(&b, 6, huge, PBFILE_MAX_EVENT - 5); /* exactly the limit */
    assert_true(sbuf_ok(&b));
    assert_int_equal(b.len, 4 + PBFILE_MAX_EVENT);
    free(huge);
    sbuf_free(&b);
    log_set_level(level);
}

/* Read a corrupt stream: expect n_ok frames, then -1 with why in the message. */
static void expect_corrupt(const char *data, size_t n, int n_ok, const char *why)
{
    struct pbfile_reader r;
    struct sbuf msg;
    FILE *fp = file_with(data, n);
    int i;

    pbfile_reader_init(&r, fp);
    sbuf_init(&msg);
    for (i = 0; i < n_ok; i++)
        assert_int_equal(pbfile_read(&r, &msg), 1);
    assert_int_equal(pbfile_read(&r, &msg), -1);
    if (strstr(r.err, why) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", r.err, why);
    sbuf_free(&msg);
    fclose(fp);
}

static void test_pbfile_corrupt(void **state)
{
    /* One valid frame: an empty Endpoint (key 0x2a, length 0). */
    static const char ok[] = "\x02\x2a\x00";
    char buf[32];
    struct pbfile_reader r;
    struct sbuf msg;
    FILE *fp;

    (void)state;
    expect_corrupt("\x80", 1, 0, "truncated length at byte offset 0");
    expect_corrupt("\x05\x01\x02", 3, 0, "truncated event (2 of 5 bytes) at byte offset 0");
    memcpy(buf, ok, 3);
    memcpy(buf + 3, "\x04\x2a\x00", 3);
    expect_corrupt(buf, 6, 1, "truncated event (2 of 4 bytes) at byte offset 3");
    memcpy(buf + 3, "\xff\xff", 2);
    expect_corrupt(buf, 5, 1, "truncated length at byte offset 3");
    expect_corrupt("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, 0,
                   "longer than 10 bytes at byte offset 0");
    expect_corrupt("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, 0, "over 64 bits");
    expect_corrupt("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10, 0,
                   "event length 9223372036854775808 over the");
    expect_corrupt("\x81\x80\x80\x08", 4, 0, "event length 16777217 over the 16777216-byte limit");
    /* Exactly the limit is accepted as a length, then the body is missing. */
    expect_corrupt("\x80\x80\x80\x08", 4, 0, "truncated event (0 of 16777216 bytes)");

    /* Empty input is a clean end, not an error. */
    fp = file_with("", 0);
    pbfile_reader_init(&r, fp);
    sbuf_init(&msg);
    assert_int_equal(pbfile_read(&r, &msg), 0);
    fclose(fp);

    /* The reader frames; whether the bytes are an Event is unpack's call. */
    fp = file_with("\x03\xff\xff\xff", 4);
    pbfile_reader_init(&r, fp);
    assert_int_equal(pbfile_read(&r, &msg), 1);
    assert_null(sonde__v1__event__unpack(NULL, msg.len, (const uint8_t *)msg.data));
    fclose(fp);
    sbuf_free(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_flow_empty),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_interface_stats),
        cmocka_unit_test(test_agent_status),
        cmocka_unit_test(test_eth_bytes),
        cmocka_unit_test(test_agent_hello_strings),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_random_strings),
        cmocka_unit_test(test_double_round_trip),
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_event_envelope),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_no_field_shadows_type),
        cmocka_unit_test(test_set_header),
        cmocka_unit_test(test_pbfile_round_trip),
        cmocka_unit_test(test_pbfile_frame_refused),
        cmocka_unit_test(test_pbfile_corrupt),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
