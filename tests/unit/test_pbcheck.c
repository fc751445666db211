/*
 * test_pbcheck.c - schema_pb_check against protobuf-c's own unpack: for
 * valid messages of several shapes (nested, repeated, packed, oneof) and
 * for many thousands of mutations of them (bytes flipped, cut, inserted,
 * deleted), whatever the checker accepts protobuf_c_message_unpack
 * accepts too, and the valid ones both accept. Then the string bound and
 * the header it reads. The generated walker and the reflective one that
 * explains refusals accept and refuse exactly the same inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbcheck.h"
#include "sonde/v1/events.pb-c.h"

#define MUTATIONS 20000
#define BIG       (1u << 30)

static size_t flow_msg(uint8_t *out)
{
    Sonde__V1__Flow f = SONDE__V1__FLOW__INIT;
    Sonde__V1__Detection d = SONDE__V1__DETECTION__INIT;
    Sonde__V1__Ssl ssl = SONDE__V1__SSL__INIT;

    f.agent_id = "agent-7";
    f.seq = 1795333222587985ULL;
    f.timestamp = 1700000000123ULL;
    f.local_ip = "192.168.1.84";
    f.other_ip = "2001:db8::1";
    f.local_port = 52973;
    f.other_port = 443;
    f.other_type = SONDE__V1__OTHER_TYPE__OTHER_TYPE_REMOTE;
    f.local_bytes = 1834;
    d.detected_protocol_name = "TLS";
    d.detected_application_name = "Google";
    ssl.client_sni = "www.google.com";
    ssl.version = 0x304;
    d.ssl = &ssl;
    f.detection = &d;
    return sonde__v1__flow__pack(&f, out);
}

static size_t status_msg(uint8_t *out)
{
    Sonde__V1__AgentStatus m = SONDE__V1__AGENT_STATUS__INIT;
    Sonde__V1__PushStatus p1 = SONDE__V1__PUSH_STATUS__INIT, p2 = SONDE__V1__PUSH_STATUS__INIT;
    Sonde__V1__PushStatus *pp[2] = {&p1, &p2};
    uint32_t depth[5] = {0, 1, 300, 70000, 4294967295u};

    m.agent_id = "a";
    m.seq = 9;
    m.cpu_user = 1.5;
    m.n_worker_queue_depth = 5;
    m.worker_queue_depth = depth; /* packed */
    p1.collector = "grpcs://c1:50051";
    p1.acked = 77;
    p2.collector = "grpc://127.0.0.1:1";
    p2.connected = 1;
    m.n_push = 2;
    m.push = pp;
    return sonde__v1__agent_status__pack(&m, out);
}

static size_t iface_msg(uint8_t *out)
{
    Sonde__V1__Interface m = SONDE__V1__INTERFACE__INIT;
    char *addr[3] = {"10.0.0.1", "fe80::1", ""};

    m.agent_id = "a";
    m.seq = 3;
    m.interface = "eth0";
    m.n_addr = 3;
    m.addr = addr;
    return sonde__v1__interface__pack(&m, out);
}

static int unpack_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);

    if (m == NULL)
        return 0;
    protobuf_c_message_free_unpacked(m, NULL);
    return 1;
}

/* The generated walker and the reflective one decide alike, header included. */
static void same_walkers(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                         size_t max_string)
{
    struct pbcheck_header hf, hr;
    char why[PBCHECK_WHY_MAX];
    int fast = schema_pb_check_fast(d, p, n, max_string, &hf);
    int slow = schema_pb_check_reflect(d, p, n, max_string, &hr, why);

    if (fast != slow)
        fail_msg("%s: generated walker %d, reflective %d (%s)", d->name, fast, slow, why);
    if (fast == 0) {
        assert_int_equal(hf.seq, hr.seq);
        assert_int_equal(hf.agent_id_len, hr.agent_id_len);
        assert_ptr_equal(hf.agent_id, hr.agent_id);
    }
}

static int agree(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    char why[PBCHECK_WHY_MAX];
    int a = unpack_ok(d, p, n), b = schema_pb_check(d, p, n, BIG, NULL, why) == 0;

    same_walkers(d, p, n, BIG);
    same_walkers(d, p, n, 8);

    if (b && !a) {
        char hex[3 * 256 + 1] = "";
        size_t i;

        for (i = 0; i < n && i < 256; i++)
            snprintf(hex + 3 * i, 4, "%02x ", p[i]);
        fail_msg("%s: protobuf-c %s, pbcheck %s (%s): %s", d->name, a ? "accepts" : "refuses",
                 b ? "accepts" : "refuses", why, hex);
    }
    return b;
}

static void mutate_all(const ProtobufCMessageDescriptor *d, const uint8_t *orig, size_t n)
{
    uint8_t buf[1024];
    unsigned seed = 12345;
    int i, accepted = 0;

    agree(d, orig, n);
    assert_int_equal(schema_pb_check(d, orig, n, BIG, NULL, (char[PBCHECK_WHY_MAX]){0}), 0);
    for (i = 0; i < MUTATIONS; i++) {
        size_t len = n, pos;
        int kind = rand_r(&seed) % 5;

        memcpy(buf, orig, n);
        pos = (size_t)rand_r(&seed) % n;
        switch (kind) {
        case 0:
            buf[pos] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
            break;
        case 1:
            buf[pos] = (uint8_t)rand_r(&seed);
            break;
        case 2:
            len = pos;
            break; /* cut */
        case 3:    /* insert a byte */
            memmove(buf + pos + 1, buf + pos, n - pos);
            buf[pos] = (uint8_t)rand_r(&seed);
            len = n + 1;
            break;
        default: /* delete a byte */
            memmove(buf + pos, buf + pos + 1, n - pos - 1);
            len = n - 1;
            break;
        }
        accepted += agree(d, buf, len);
    }
    /* the mutations are not all trivially broken: many stay valid */
    assert_true(accepted > MUTATIONS / 10);
}

static void test_differential(void **state)
{
    uint8_t m[512];
    size_t n;

    (void)state;
    n = flow_msg(m);
    mutate_all(&sonde__v1__flow__descriptor, m, n);
    n = status_msg(m);
    mutate_all(&sonde__v1__agent_status__descriptor, m, n);
    n = iface_msg(m);
    mutate_all(&sonde__v1__interface__descriptor, m, n);
    assert_true(agree(&sonde__v1__flow__descriptor, m, 0)); /* empty: every field default */
}

static void test_header_and_limit(void **state)
{
    uint8_t m[512];
    size_t n = flow_msg(m);
    struct pbcheck_header h;
    char why[PBCHECK_WHY_MAX];

    (void)state;
    assert_int_equal(schema_pb_check(&sonde__v1__flow__descriptor, m, n, 64, &h, why), 0);
    assert_int_equal(h.agent_id_len, 7);
    assert_memory_equal(h.agent_id, "agent-7", 7);
    assert_int_equal(h.seq, 1795333222587985ULL);
    /* the longest string is 14 bytes ("www.google.com", nested two deep) */
    assert_int_equal(schema_pb_check(&sonde__v1__flow__descriptor, m, n, 14, NULL, why), 0);
    assert_int_equal(schema_pb_check(&sonde__v1__flow__descriptor, m, n, 13, NULL, why), -1);
    assert_string_equal(why, "detection.ssl.client_sni: 14 bytes, over the limit of 13");
}

static void test_utf8(void **state)
{
    static const char *bad[] = {"ag\xff",           "\xc0\x80", "\xed\xa0\x80",
                                "\xf4\x90\x80\x80", "\xe2\x82", "x\x80"};
    static const char *good[] = {"", "agent", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char why[PBCHECK_WHY_MAX];
    uint8_t m[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Sonde__V1__Flow f = SONDE__V1__FLOW__INIT;
        size_t n;

        f.agent_id = (char *)bad[i];
        f.seq = 1;
        n = sonde__v1__flow__pack(&f, m);
        assert_int_equal(schema_pb_check(&sonde__v1__flow__descriptor, m, n, 64, NULL, why), -1);
        assert_string_equal(why, "agent_id: not UTF-8");
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        Sonde__V1__Flow f = SONDE__V1__FLOW__INIT;
        size_t n;

        f.interface = (char *)good[i];
        n = sonde__v1__flow__pack(&f, m);
        assert_int_equal(schema_pb_check(&sonde__v1__flow__descriptor, m, n, 64, NULL, why), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_header_and_limit),
        cmocka_unit_test(test_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
