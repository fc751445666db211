/*
 * test_pcapfile.c - the mapped pcap reader against libpcap itself: files
 * written here byte by byte (large ones crossing many map windows, nanosecond
 * time stamps, records longer than the snapshot length, damaged and
 * truncated records) must give the same records, and stop at the same
 * record with the same message, as pcap_next_ex on the same file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture/pcapfile.h"

#define MAGIC_USEC 0xa1b2c3d4u
#define MAGIC_NSEC 0xa1b23c4du

struct rec {
    int32_t sec, frac;
    uint32_t caplen, len;
};

static char path[64];

static void put32(FILE *f, uint32_t v)
{
    assert_int_equal(fwrite(&v, 4, 1, f), 1);
}

static uint32_t swap32(uint32_t v)
{
    return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

/* A file header; swapped: in the other byte order (magic included). */
static FILE *start_order(uint32_t magic, uint16_t minor, uint32_t snaplen, int swapped)
{
    uint16_t ver[2] = {2, minor};
    FILE *f;
    int fd;

    strcpy(path, "/tmp/sonde-pcapfile-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "wb");
    assert_non_null(f);
    if (swapped) {
        ver[0] = (uint16_t)(ver[0] << 8);
        ver[1] = (uint16_t)(ver[1] << 8);
    }
    put32(f, swapped ? swap32(magic) : magic);
    assert_int_equal(fwrite(ver, 2, 2, f), 2);
    put32(f, 0);
    put32(f, 0);
    put32(f, swapped ? swap32(snaplen) : snaplen);
    put32(f, swapped ? swap32(1) : 1); /* Ethernet */
    return f;
}

static FILE *start(uint32_t magic, uint16_t major, uint16_t minor, uint32_t snaplen)
{
    assert_int_equal(major, 2);
    return start_order(magic, minor, snaplen, 0);
}

/* A record whose bytes are a function of its number, so contents are checked too. */
static void add(FILE *f, const struct rec *r, uint32_t stored, unsigned n)
{
    uint32_t i;

    put32(f, (uint32_t)r->sec);
    put32(f, (uint32_t)r->frac);
    put32(f, r->caplen);
    put32(f, r->len);
    for (i = 0; i < stored; i++)
        assert_int_equal(fputc((int)((n * 131 + i) & 0xff), f), (int)((n * 131 + i) & 0xff));
}

/*
 * Read path with libpcap and with pcapfile; every record and the way
 * each ends must be the same. Returns the number of records.
 */
static unsigned compare(void)
{
    char ebuf[PCAP_ERRBUF_SIZE], err[256];
    pcap_t *ref, *p;
    struct pcapfile pf;
    struct pcap_pkthdr *rh, h;
    const u_char *rdata;
    const uint8_t *data;
    unsigned n = 0;
    int rr, rm;

    ref = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    assert_non_null(ref);
    assert_non_null(p);
    assert_int_equal(pcapfile_open(&pf, path, p, err, sizeof(err)), 1);
    for (;;) {
        rr = pcap_next_ex(ref, &rh, &rdata);
        rm = pcapfile_next(&pf, &h, &data);
        if (rr != 1) {
            assert_int_equal(rm, rr == PCAP_ERROR_BREAK ? 0 : -1);
            if (rm < 0)
                assert_string_equal(pf.err, pcap_geterr(ref));
            break;
        }
        assert_int_equal(rm, 1);
        assert_int_equal(h.ts.tv_sec, rh->ts.tv_sec);
        assert_int_equal(h.ts.tv_usec, rh->ts.tv_usec);
        assert_int_equal(h.caplen, rh->caplen);
        assert_int_equal(h.len, rh->len);
        assert_memory_equal(data, rdata, h.caplen);
        n++;
    }
    pcapfile_close(&pf);
    pcap_close(p);
    pcap_close(ref);
    unlink(path);
    return n;
}

/* Many records of every size: they straddle the map windows at all offsets. */
static void test_large_file(void **state)
{
    FILE *f = start(MAGIC_USEC, 2, 4, 65535);
    unsigned i;

    (void)state;
    srand(7);
    for (i = 0; i < 6000; i++) {
        struct rec r = {1700000000 + (int32_t)i, (int32_t)(i * 37 % 1000000), 0, 0};

        r.caplen = (uint32_t)(rand() % 1600);
        r.len = r.caplen + (uint32_t)(rand() % 3);
        add(f, &r, r.caplen, i);
    }
    fclose(f);
    assert_int_equal(compare(), 6000);
}

static void test_nanoseconds_and_signs(void **state)
{
    FILE *f = start(MAGIC_NSEC, 2, 4, 65535);
    struct rec a = {1700000000, 999999999, 60, 60}, b = {-5, -1404616, 42, 1500};

    (void)state;
    add(f, &a, a.caplen, 0);
    add(f, &b, b.caplen, 1);
    fclose(f);
    assert_int_equal(compare(), 2);
}

/* Longer than the file's snapshot length: cut to it, the rest skipped. */
static void test_longer_than_snaplen(void **state)
{
    FILE *f = start(MAGIC_USEC, 2, 4, 64);
    struct rec a = {1, 0, 100, 100}, b = {2, 0, 30, 30};

    (void)state;
    add(f, &a, a.caplen, 0);
    add(f, &b, b.caplen, 1);
    fclose(f);
    assert_int_equal(compare(), 2);
}

/* A snapshot length of 0 in the header: libpcap's correction applies. */
static void test_zero_snaplen(void **state)
{
    FILE *f = start(MAGIC_USEC, 2, 4, 0);
    struct rec a = {1, 0, 1514, 1514};

    (void)state;
    add(f, &a, a.caplen, 0);
    fclose(f);
    assert_int_equal(compare(), 1);
}

static void test_damaged(void **state)
{
    struct rec good = {1, 0, 60, 60}, huge = {2, 0, 300000, 300000};
    FILE *f;

    (void)state;
    /* a capture length no snapshot length allows */
    f = start(MAGIC_USEC, 2, 4, 65535);
    add(f, &good, good.caplen, 0);
    add(f, &huge, 0, 1);
    fclose(f);
    assert_int_equal(compare(), 1);
    /* ... and one above a snapshot length that is itself too large */
    f = start(MAGIC_USEC, 2, 4, 0x10000000);
    add(f, &huge, 0, 1);
    fclose(f);
    assert_int_equal(compare(), 0);
    /* the last record's data cut short */
    f = start(MAGIC_USEC, 2, 4, 65535);
    add(f, &good, good.caplen, 0);
    add(f, &good, good.caplen - 7, 1);
    fclose(f);
    assert_int_equal(compare(), 1);
    /* the last record's header cut short */
    f = start(MAGIC_USEC, 2, 4, 65535);
    add(f, &good, good.caplen, 0);
    put32(f, 3);
    put32(f, 0);
    fclose(f);
    assert_int_equal(compare(), 1);
    /* no records at all */
    fclose(start(MAGIC_USEC, 2, 4, 65535));
    assert_int_equal(compare(), 0);
}

/* What libpcap must go on reading itself: swapped byte order, old versions. */
static void test_left_to_libpcap(void **state)
{
    static const struct {
        uint32_t magic;
        uint16_t minor;
        int swapped;
    } cases[] = {{MAGIC_USEC, 4, 1}, {MAGIC_NSEC, 4, 1}, {MAGIC_USEC, 3, 0}, {MAGIC_USEC, 2, 0}};
    char ebuf[PCAP_ERRBUF_SIZE], err[256];
    struct pcapfile pf;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pcap_t *p;

        fclose(start_order(cases[i].magic, cases[i].minor, 65535, cases[i].swapped));
        p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
        assert_non_null(p);
        assert_int_equal(pcapfile_open(&pf, path, p, err, sizeof(err)), 0);
        pcapfile_close(&pf);
        pcap_close(p);
        unlink(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_file),
        cmocka_unit_test(test_nanoseconds_and_signs),
        cmocka_unit_test(test_longer_than_snaplen),
        cmocka_unit_test(test_zero_snaplen),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_left_to_libpcap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
