/*
 * test_syncer.c - the collector's fdatasync thread: a round over real
 * files ends in done(ok) on the loop's thread; a descriptor fdatasync
 * refuses (a pipe) ends in done(!ok) naming the file; a second round is
 * refused while one runs; freeing with a round running waits for it and
 * does not call done.
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
#include <event2/thread.h>
#include <pthread.h>

#include "syncer.h"

struct result {
    int calls, ok;
    char err[SYNCER_ERR_MAX];
    pthread_t thread;
};

static void done(int ok, const char *err, void *arg)
{
    struct result *r = arg;

    r->calls++;
    r->ok = ok;
    snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
    r->thread = pthread_self();
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

static int temp_file(char *path)
{
    int fd;

    strcpy(path, "/tmp/sonde-syncer-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "events", 6), 6);
    return fd;
}

static void test_round_ok(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct syncer *s = syncer_new(base, done, &r);
    char p1[32], p2[32];
    int fds[2] = {temp_file(p1), temp_file(p2)};
    const char *names[2] = {p1, p2};

    (void)state;
    assert_non_null(s);
    assert_false(syncer_busy(s));
    assert_int_equal(syncer_start(s, fds, names, 2), 0);
    assert_true(syncer_busy(s));
    assert_int_equal(syncer_start(s, fds, names, 2), -1); /* one round at a time */
    wait_done(base, &r);
    assert_int_equal(r.calls, 1);
    assert_true(r.ok);
    assert_true(pthread_equal(r.thread, pthread_self())); /* on the loop's thread */
    assert_false(syncer_busy(s));
    r.calls = 0;
    assert_int_equal(syncer_start(s, fds, names, 2), 0); /* and again */
    wait_done(base, &r);
    assert_int_equal(r.calls, 1);
    assert_true(r.ok);
    syncer_free(s);
    event_base_free(base);
    close(fds[0]);
    close(fds[1]);
    unlink(p1);
    unlink(p2);
}

static void test_round_fails(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct syncer *s = syncer_new(base, done, &r);
    int pipefd[2];
    const char *names[1] = {"the-pipe"};

    (void)state;
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(syncer_start(s, pipefd, names, 1), 0);
    wait_done(base, &r);
    assert_int_equal(r.calls, 1);
    assert_false(r.ok);
    assert_non_null(strstr(r.err, "the-pipe: fdatasync: "));
    syncer_free(s);
    event_base_free(base);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_free_while_running(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct syncer *s = syncer_new(base, done, &r);
    char p[32];
    int fd = temp_file(p);
    const char *names[1] = {p};

    (void)state;
    assert_int_equal(syncer_start(s, &fd, names, 1), 0);
    syncer_free(s); /* joins the thread; done() is not called */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(r.calls, 0);
    event_base_free(base);
    close(fd);
    unlink(p);
}

static void test_too_many(void **state)
{
    struct event_base *base = event_base_new();
    struct result r = {0};
    struct syncer *s = syncer_new(base, done, &r);
    int fds[SYNCER_MAX_FDS + 1] = {0};
    const char *names[SYNCER_MAX_FDS + 1] = {0};

    (void)state;
    assert_int_equal(syncer_start(s, fds, names, SYNCER_MAX_FDS + 1), -1);
    assert_false(syncer_busy(s));
    syncer_free(s);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_ok),
        cmocka_unit_test(test_round_fails),
        cmocka_unit_test(test_free_while_running),
        cmocka_unit_test(test_too_many),
    };

    if (evthread_use_pthreads() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
