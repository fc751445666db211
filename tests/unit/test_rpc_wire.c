/*
 * test_rpc_wire.c - gRPC's plain-data wire rules (src/rpc/wire.c): message
 * framing split at every byte, limits, flags; grpc-timeout both ways;
 * grpc-message percent-encoding; the HTTP and HTTP/2 status mappings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

#define MAXMSG 64

struct got {
    int n;
    size_t len[8];
    uint8_t data[8][MAXMSG];
    int stop_after; /* return 7 from the callback after this many */
};

static int collect(void *arg, const uint8_t *msg, size_t len)
{
    struct got *g = arg;

    assert_true(g->n < 8);
    assert_true(len <= MAXMSG);
    g->len[g->n] = len;
    if (len)
        memcpy(g->data[g->n], msg, len);
    g->n++;
    return g->stop_after && g->n >= g->stop_after ? 7 : 0;
}

/* Three messages (one empty) in one buffer. */
static size_t three(uint8_t *buf)
{
    static const char *msgs[] = {"hello", "", "a longer message, 33 bytes long."};
    size_t n = 0;
    int i;

    for (i = 0; i < 3; i++) {
        size_t l = strlen(msgs[i]);

        rpc_frame_prefix(buf + n, (uint32_t)l);
        memcpy(buf + n + RPC_PREFIX_LEN, msgs[i], l);
        n += RPC_PREFIX_LEN + l;
    }
    return n;
}

static void check_three(const struct got *g)
{
    assert_int_equal(g->n, 3);
    assert_int_equal(g->len[0], 5);
    assert_memory_equal(g->data[0], "hello", 5);
    assert_int_equal(g->len[1], 0);
    assert_int_equal(g->len[2], 32);
    assert_memory_equal(g->data[2], "a longer message, 33 bytes long.", 32);
}

static void test_deframe_whole(void **state)
{
    uint8_t buf[128];
    size_t n = three(buf);
    struct rpc_deframer d;
    struct got g = {0};

    (void)state;
    rpc_deframer_init(&d, 0);
    assert_int_equal(rpc_deframer_feed(&d, buf, n, collect, &g), 0);
    check_three(&g);
    assert_false(rpc_deframer_partial(&d));
    rpc_deframer_free(&d);
}

/* Every split into two pieces, and one byte at a time. */
static void test_deframe_splits(void **state)
{
    uint8_t buf[128];
    size_t n = three(buf), cut, i;

    (void)state;
    for (cut = 0; cut <= n; cut++) {
        struct rpc_deframer d;
        struct got g = {0};

        rpc_deframer_init(&d, 0);
        assert_int_equal(rpc_deframer_feed(&d, buf, cut, collect, &g), 0);
        assert_int_equal(rpc_deframer_feed(&d, buf + cut, n - cut, collect, &g), 0);
        check_three(&g);
        rpc_deframer_free(&d);
    }
    {
        struct rpc_deframer d;
        struct got g = {0};

        rpc_deframer_init(&d, 0);
        for (i = 0; i < n; i++) {
            assert_int_equal(rpc_deframer_feed(&d, buf + i, 1, collect, &g), 0);
            if (i + 1 < n && i >= 1)
                assert_true(rpc_deframer_partial(&d) || g.n == 1 || g.n == 2);
        }
        check_three(&g);
        assert_false(rpc_deframer_partial(&d));
        rpc_deframer_free(&d);
    }
}

static void test_deframe_partial_and_stop(void **state)
{
    uint8_t buf[128];
    size_t n = three(buf);
    struct rpc_deframer d;
    struct got g = {.stop_after = 1};

    (void)state;
    rpc_deframer_init(&d, 0);
    assert_int_equal(rpc_deframer_feed(&d, buf, 3, collect, &g), 0);
    assert_true(rpc_deframer_partial(&d));
    /* the callback's value comes back, and the feed stops there */
    assert_int_equal(rpc_deframer_feed(&d, buf + 3, n - 3, collect, &g), 7);
    assert_int_equal(g.n, 1);
    rpc_deframer_free(&d);
}

static void test_deframe_limits(void **state)
{
    uint8_t buf[16] = {0};
    struct rpc_deframer d;
    struct got g = {0};

    (void)state;
    /* exactly the limit passes, one more byte fails with RESOURCE_EXHAUSTED */
    rpc_deframer_init(&d, 10);
    rpc_frame_prefix(buf, 10);
    assert_int_equal(rpc_deframer_feed(&d, buf, 15, collect, &g), 0);
    assert_int_equal(g.n, 1);
    rpc_frame_prefix(buf, 11);
    assert_int_equal(rpc_deframer_feed(&d, buf, 5, collect, &g), -1);
    assert_int_equal(d.error, RPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(d.why, "11 bytes"));
    /* once failed, always failed */
    rpc_frame_prefix(buf, 1);
    assert_int_equal(rpc_deframer_feed(&d, buf, 6, collect, &g), -1);
    assert_int_equal(g.n, 1);
    rpc_deframer_free(&d);

    /* a compressed message without grpc-encoding, and an unknown flag */
    rpc_deframer_init(&d, 0);
    rpc_frame_prefix(buf, 1);
    buf[0] = 1;
    assert_int_equal(rpc_deframer_feed(&d, buf, 6, collect, &g), -1);
    assert_int_equal(d.error, RPC_INTERNAL);
    assert_non_null(strstr(d.why, "compressed"));
    rpc_deframer_free(&d);
    rpc_deframer_init(&d, 0);
    buf[0] = 0x80;
    assert_int_equal(rpc_deframer_feed(&d, buf, 6, collect, &g), -1);
    assert_int_equal(d.error, RPC_INTERNAL);
    rpc_deframer_free(&d);

    /* the default limit is 4 MiB: a 4 GiB length is refused before any allocation */
    rpc_deframer_init(&d, 0);
    buf[0] = 0;
    buf[1] = buf[2] = buf[3] = buf[4] = 0xff;
    assert_int_equal(rpc_deframer_feed(&d, buf, 5, collect, &g), -1);
    assert_int_equal(d.error, RPC_RESOURCE_EXHAUSTED);
    rpc_deframer_free(&d);
}

static void test_timeout(void **state)
{
    char out[10];

    (void)state;
    assert_int_equal(rpc_timeout_parse("1S", 2), 1000);
    assert_int_equal(rpc_timeout_parse("250m", 4), 250);
    assert_int_equal(rpc_timeout_parse("2M", 2), 120000);
    assert_int_equal(rpc_timeout_parse("1H", 2), 3600000);
    assert_int_equal(rpc_timeout_parse("1500u", 5), 2); /* rounded up */
    assert_int_equal(rpc_timeout_parse("1n", 2), 1);
    assert_int_equal(rpc_timeout_parse("0m", 2), 0);
    assert_int_equal(rpc_timeout_parse("99999999S", 9), 99999999000LL);
    assert_int_equal(rpc_timeout_parse("123456789S", 10), -1); /* 9 digits */
    assert_int_equal(rpc_timeout_parse("S", 1), -1);
    assert_int_equal(rpc_timeout_parse("10s", 3), -1);
    assert_int_equal(rpc_timeout_parse("1 S", 3), -1);
    assert_int_equal(rpc_timeout_parse("-1S", 3), -1);

    rpc_timeout_format(1500, out);
    assert_string_equal(out, "1500m");
    rpc_timeout_format(100000000, out); /* 9 digits of ms: seconds */
    assert_string_equal(out, "100000S");
    rpc_timeout_format(0, out);
    assert_string_equal(out, "0m");
    rpc_timeout_format(UINT64_MAX / 2, out);
    assert_int_equal(rpc_timeout_parse(out, strlen(out)), 99999999LL * 3600000);
}

static void test_message_encoding(void **state)
{
    char enc[64], dec[64];
    const char *s = "bad value: 100% \xc3\xa9t\xc3\xa9\n";

    (void)state;
    rpc_message_encode(s, enc, sizeof(enc));
    assert_string_equal(enc, "bad value: 100%25 %C3%A9t%C3%A9%0A");
    assert_int_equal(rpc_message_decode(enc, strlen(enc), dec, sizeof(dec)), strlen(s));
    assert_string_equal(dec, s);
    /* malformed escapes are kept as they are */
    rpc_message_decode("50%zz%4", 7, dec, sizeof(dec));
    assert_string_equal(dec, "50%zz%4");
    /* truncation never splits an escape */
    assert_int_equal(rpc_message_encode("\n\n\n", enc, 8), 6);
    assert_string_equal(enc, "%0A%0A");
}

static void test_mappings(void **state)
{
    (void)state;
    assert_string_equal(rpc_code_name(RPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    assert_string_equal(rpc_code_name(99), "UNKNOWN");
    assert_int_equal(rpc_code_from_http(404), RPC_UNIMPLEMENTED);
    assert_int_equal(rpc_code_from_http(401), RPC_UNAUTHENTICATED);
    assert_int_equal(rpc_code_from_http(503), RPC_UNAVAILABLE);
    assert_int_equal(rpc_code_from_http(415), RPC_UNKNOWN);
    assert_int_equal(rpc_code_from_h2(0x8), RPC_CANCELLED);
    assert_int_equal(rpc_code_from_h2(0x7), RPC_UNAVAILABLE);
    assert_int_equal(rpc_code_from_h2(0xb), RPC_RESOURCE_EXHAUSTED);
    assert_int_equal(rpc_code_from_h2(0x1), RPC_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deframe_whole),
        cmocka_unit_test(test_deframe_splits),
        cmocka_unit_test(test_deframe_partial_and_stop),
        cmocka_unit_test(test_deframe_limits),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_message_encoding),
        cmocka_unit_test(test_mappings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
