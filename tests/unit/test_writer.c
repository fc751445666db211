/*
 * test_writer.c - the collector's output thread: a round writes what the
 * sinks held into their files and ends in done(ok) on the loop's thread,
 * while the loop fills the sinks again; a write that fails (/dev/full)
 * ends in done(!ok) naming the file; one round at a time; writer_wait
 * finishes a round at once and its late wake-up finishes nothing else;
 * freeing with a round running waits for it and does not call done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/thread.h>
#include <pthread.h>

#include "writer.h"

#define TAG_FLOW 6

struct result {
    int calls, ok;
    char err[WRITER_ERR_MAX];
    pthread_t thread;
    const char *path; /* if set, its size when done() ran */
    long size;
};

static void done(int ok, const char *err, void *arg)
{
    struct result *r = arg;
    struct stat st;

    r->calls++;
    r->ok = ok;
    snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
    r->thread = pthread_self();
    if (r->path && stat(r->path, &st) == 0)
        r->size = (long)st.st_size;
}

/* Run the loop until done() was called (bounded: 10 s). */
static void wait_done(struct event_base *base, struct result *r)
{
    int i;

    for (i = 0; i < 10000 && r->calls == 0; i++) {
        struct timeval ms = {0, 1000};

        event_base_loopexit(base, &ms);
        event_base_dispatch(base);
    }
}

static void open_temp(struct sink *s, char *path)
{
    char spec[64], err[SINK_ERR_MAX];
    int fd;

    strcpy(path, "/tmp/sonde-writer-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(spec, sizeof(spec), "pb:%s", path);
    assert_int_equal(sink_open(s, spec, 1, err), 0);
}

static void put_events(struct sink *s, int n)
{
    static const uint8_t ev[40] = {0x0a, 0x03, 'a', 'g', 't'};
    int i;

    for (i = 0; i < n; i++)
        assert_int_equal(sink_write(s, TAG_FLOW, NULL, ev, sizeof(ev)), 0);
}

static long file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

static void test_round_writes(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct writer *w = writer_new(base, done, &r);
    struct sink s[2];
    char p1[32], p2[32];
    size_t n1, n2;

    (void)state;
    open_temp(&s[0], p1);
    open_temp(&s[1], p2);
    put_events(&s[0], 1000);
    put_events(&s[1], 10);
    n1 = s[0].buf.len;
    n2 = s[1].buf.len;
    assert_false(writer_busy(w));
    assert_int_equal(writer_start(w, s, 2, 1), 0);
    assert_true(writer_busy(w));
    assert_int_equal(s[0].buf.len, 0); /* handed over: the loop fills buf again */
    put_events(&s[0], 5);
    assert_int_equal(writer_start(w, s, 2, 1), -1); /* one round at a time */
    wait_done(base, &r);
    assert_int_equal(r.calls, 1);
    assert_true(r.ok);
    assert_true(pthread_equal(r.thread, pthread_self())); /* on the loop's thread */
    assert_false(writer_busy(w));
    assert_int_equal(file_size(p1), (long)n1);
    assert_int_equal(file_size(p2), (long)n2);
    assert_int_equal(s[0].size, n1);
    r.calls = 0;
    assert_int_equal(writer_start(w, s, 1, 0), 0); /* the 5 written since */
    wait_done(base, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(file_size(p1), (long)(n1 + n1 / 200));
    writer_free(w);
    event_base_free(base);
    sink_close(&s[0]);
    sink_close(&s[1]);
    unlink(p1);
    unlink(p2);
}

static void test_write_fails(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct writer *w = writer_new(base, done, &r);
    struct sink s;
    char err[SINK_ERR_MAX];

    (void)state;
    assert_int_equal(sink_open(&s, "pb:/dev/full", 1, err), 0);
    put_events(&s, 10);
    assert_int_equal(writer_start(w, &s, 1, 1), 0);
    wait_done(base, &r);
    assert_int_equal(r.calls, 1);
    assert_false(r.ok);
    assert_non_null(strstr(r.err, "/dev/full: No space left on device"));
    writer_free(w);
    event_base_free(base);
    sink_close(&s);
}

static void test_wait(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct writer *w = writer_new(base, done, &r);
    struct sink s;
    char p[32];
    long want;

    (void)state;
    open_temp(&s, p);
    r.path = p;
    put_events(&s, 100);
    assert_int_equal(writer_start(w, &s, 1, 1), 0);
    writer_wait(w); /* done() now, not on a later turn of the loop */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.size, (long)s.size);
    assert_false(writer_busy(w));
    put_events(&s, 200000);
    want = (long)(s.size + s.buf.len);
    assert_int_equal(writer_start(w, &s, 1, 1), 0);
    /* the first round's wake-up is still due: it must not end this one */
    while (writer_busy(w))
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.size, want); /* all of it was in the file */
    writer_free(w);
    event_base_free(base);
    sink_close(&s);
    unlink(p);
}

static void test_free_while_running(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct writer *w = writer_new(base, done, &r);
    struct sink s;
    char p[32];

    (void)state;
    open_temp(&s, p);
    put_events(&s, 1000);
    assert_int_equal(writer_start(w, &s, 1, 1), 0);
    writer_free(w); /* joins the thread; done() is not called */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(file_size(p), (long)s.size); /* the round was completed */
    event_base_free(base);
    sink_close(&s);
    unlink(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_writes),
        cmocka_unit_test(test_write_fails),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_free_while_running),
    };

    if (evthread_use_pthreads() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
