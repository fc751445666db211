/*
 * test_dns.c - the DNS hint cache, what it learns from responses, and the
 * header parser, on messages built here byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dpi/dns.h"

#define S 1000000ULL

static const uint8_t a1[4] = {192, 0, 2, 1}, a2[4] = {192, 0, 2, 2};
static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t a1_as_v6[16] = {192, 0, 2, 1}; /* a1's bytes, then zeros */

static void test_cache_ttl(void **state)
{
    struct dns_cache *c = dns_cache_new(64);
    char name[DNS_NAME_MAX];

    (void)state;
    assert_non_null(c);
    dns_cache_put(c, 4, a1, "www.example.test", 100 * S, 60);
    assert_true(dns_cache_get(c, 4, a1, 100 * S, name));
    assert_string_equal(name, "www.example.test");
    assert_true(dns_cache_get(c, 4, a1, 159 * S, name));
    assert_false(dns_cache_get(c, 4, a1, 160 * S, name)); /* the TTL ran out */
    assert_string_equal(name, "");
    assert_false(dns_cache_get(c, 4, a1, 99 * S, name)); /* not known yet */
    assert_false(dns_cache_get(c, 4, a2, 100 * S, name));
    assert_false(dns_cache_get(c, 6, a1_as_v6, 100 * S, name)); /* same bytes, other family */
    dns_cache_put(c, 4, a1, "other.example.test", 200 * S, 0);  /* TTL 0: not to be kept */
    assert_false(dns_cache_get(c, 4, a1, 200 * S, name));
    dns_cache_put(c, 6, v6, "v6.example.test", 300 * S, 10);
    assert_true(dns_cache_get(c, 6, v6, 305 * S, name));
    assert_string_equal(name, "v6.example.test");
    dns_cache_free(c);
    assert_null(dns_cache_new(100)); /* not a power of two */
}

static void test_cache_long_name(void **state)
{
    struct dns_cache *c = dns_cache_new(8);
    char big[600], name[DNS_NAME_MAX];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dns_cache_put(c, 4, a1, big, S, 10);
    assert_true(dns_cache_get(c, 4, a1, S, name));
    assert_int_equal(strlen(name), DNS_NAME_MAX - 1); /* cut, terminated */
    dns_cache_free(c);
}

/* A response for www.example.test A with one answer (192.0.2.1, TTL 300). */
static const uint8_t response[] = {
    0x12, 0x34, 0x81, 0x80, 0, 1,   0,   1,   0,   0,    0,   0, /* header */
    3,    'w',  'w',  'w',  7, 'e', 'x', 'a', 'm', 'p',  'l', 'e', 4,   't', 'e', 's',
    't',  0,                                                                         /* qname */
    0,    1,    0,    1,                                                             /* A IN */
    0xc0, 12,   0,    1,    0, 1,   0,   0,   1,   0x2c, 0,   4,   192, 0,   2,   1, /* answer */
};

static void test_header(void **state)
{
    struct dns_header h;
    size_t n;

    (void)state;
    assert_int_equal(dns_header_parse(response, sizeof(response), &h), 0);
    assert_int_equal(h.id, 0x1234);
    assert_int_equal(h.flags, 0x8180);
    assert_int_equal(h.qdcount, 1);
    assert_int_equal(h.ancount, 1);
    assert_int_equal(h.nscount, 0);
    assert_int_equal(h.arcount, 0);
    assert_string_equal(h.qname, "www.example.test");
    /* every truncation is refused, none read past the end */
    for (n = 0; n < sizeof(response); n++)
        assert_int_equal(dns_header_parse(response, n, &h), -1);
}

static void test_header_bad_pointer(void **state)
{
    uint8_t m[sizeof(response)];
    struct dns_header h;

    (void)state;
    memcpy(m, response, sizeof(m));
    m[34] = 0xc0;
    m[35] = 34; /* the answer's name points at itself: a loop */
    assert_int_equal(dns_header_parse(m, sizeof(m), &h), -1);
}

/*
 * A response for Www.Example.test AAAA with a CNAME chain (www -> cdn,
 * compressed) ending in an AAAA and an A record (TTL 60): both addresses
 * get the name asked for, as written in the question.
 */
static const uint8_t chain[] =
    {
        0xab, 0xcd, 0x81, 0x80, 0,    1,   0,   3,   0,   0,   0,   0, /* header: 1 question, 3
                                                                          answers */
        3,    'W',  'w',  'w',  7,    'E', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't',
        0,                                                              /* @12 */
        0,    28,   0,    1,                                            /* AAAA IN */
        0xc0, 12,   0,    5,    0,    1,   0,   0,   0,   60,  0,   6,  /* www CNAME, rdata @46: */
        3,    'c',  'd',  'n',  0xc0, 16,                               /* cdn.example.test */
        0xc0, 46,   0,    28,   0,    1,   0,   0,   0,   60,  0,   16, /* cdn AAAA */
        0x20, 0x01, 0x0d, 0xb8, 0,    0,   0,   0,   0,   0,   0,   0,   0, 0,   0,   1,   0xc0,
        46,   0,    1,    0,    1,    0,   0,   0,   60,  0,   4,   192, 0, 2,   2, /* cdn A */
};

static void test_learn(void **state)
{
    struct dns_cache *c = dns_cache_new(64);
    char name[DNS_NAME_MAX];
    uint8_t *m;
    size_t n;

    (void)state;
    assert_int_equal(dns_cache_learn(c, chain, sizeof(chain), S), 0);
    assert_true(dns_cache_get(c, 6, v6, S, name));
    assert_string_equal(name, "Www.Example.test");
    assert_true(dns_cache_get(c, 4, a2, S, name));
    assert_string_equal(name, "Www.Example.test");
    assert_false(dns_cache_get(c, 4, a2, 61 * S, name)); /* the TTL is honoured */
    dns_cache_free(c);
    /* every truncation is malformed, learns nothing and reads nothing past
     * its end (a copy of exactly n bytes: ASan checks) */
    for (n = 0; n < sizeof(chain); n++) {
        c = dns_cache_new(64);
        m = malloc(n ? n : 1);
        assert_non_null(m);
        memcpy(m, chain, n);
        assert_int_equal(dns_cache_learn(c, m, n, S), -1);
        assert_false(dns_cache_get(c, 4, a2, S, name));
        free(m);
        dns_cache_free(c);
    }
}

static void test_learn_refuses(void **state)
{
    struct dns_cache *c = dns_cache_new(64);
    char name[DNS_NAME_MAX];
    uint8_t m[sizeof(chain)];

    (void)state;
    /* a compression loop in an answer's name */
    memcpy(m, chain, sizeof(m));
    m[80] = 0xc0;
    m[81] = 80;
    assert_int_equal(dns_cache_learn(c, m, sizeof(m), S), -1);
    /* NXDOMAIN: nothing learned, not malformed */
    memcpy(m, chain, sizeof(m));
    m[3] = 0x83;
    assert_int_equal(dns_cache_learn(c, m, sizeof(m), S), 0);
    assert_false(dns_cache_get(c, 6, v6, S, name));
    /* an answer's rdata longer than the message */
    memcpy(m, chain, sizeof(m));
    m[sizeof(m) - 5] = 5;
    assert_int_equal(dns_cache_learn(c, m, sizeof(m), S), -1);
    dns_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_ttl), cmocka_unit_test(test_cache_long_name),
        cmocka_unit_test(test_header),    cmocka_unit_test(test_header_bad_pointer),
        cmocka_unit_test(test_learn),     cmocka_unit_test(test_learn_refuses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
