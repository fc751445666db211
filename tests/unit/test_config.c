/*
 * test_config.c - one option table, read from argv and from a JSON file:
 * precedence, types, ranges, lists, and the errors a user sees.
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

#include "common/config.h"

struct settings {
    struct config_list in;
    char *name, *config;
    long n;
    int flag;
};

#define OPT(n, s, t, f, a, lo, hi)                                                                 \
    {                                                                                              \
        n, s, t, offsetof(struct settings, f), a, "help", lo, hi                                   \
    }
static const struct config_opt opts[] = {
    OPT("interface", 'i', CONFIG_LIST, in, "IFACE", 0, 0),
    OPT("name", 0, CONFIG_STRING, name, "NAME", 0, 0),
    OPT("threads", 't', CONFIG_INT, n, "N", 1, 64),
    OPT("verbose", 'v', CONFIG_BOOL, flag, NULL, 0, 0),
    OPT("config", 'c', CONFIG_STRING, config, "FILE", 0, 0),
    {NULL, 0, 0, 0, NULL, NULL, 0, 0},
};

static int parse(struct settings *s, char *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    int i;

    memset(s, 0, sizeof(*s));
    argv[0] = "prog";
    va_start(ap, argc);
    for (i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return config_parse(opts, s, argc, argv, err, CONFIG_ERR_MAX);
}

static char *write_tmp(const char *text)
{
    static char path[64];
    FILE *f;
    int fd;

    strcpy(path, "/tmp/sonde-config-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_flags(void **state)
{
    struct settings s;
    char err[CONFIG_ERR_MAX];

    (void)state;
    assert_int_equal(parse(&s, err, 7, "-i", "eth0", "--interface=eth1", "-t", "4", "-v"), 0);
    assert_int_equal(s.in.n, 2);
    assert_string_equal(s.in.v[0], "eth0");
    assert_string_equal(s.in.v[1], "eth1");
    assert_int_equal(s.n, 4);
    assert_int_equal(s.flag, 1);
    config_free(opts, &s);
    assert_null(s.in.v);
}

static void test_errors(void **state)
{
    struct settings s;
    char err[CONFIG_ERR_MAX];

    (void)state;
    assert_int_equal(parse(&s, err, 3, "-t", "0"), -1);
    assert_non_null(strstr(err, "out of range"));
    config_free(opts, &s);
    assert_int_equal(parse(&s, err, 3, "-t", "4x"), -1);
    assert_non_null(strstr(err, "not a number"));
    config_free(opts, &s);
    assert_int_equal(parse(&s, err, 2, "--bogus"), -1);
    assert_non_null(strstr(err, "unknown option"));
    config_free(opts, &s);
    assert_int_equal(parse(&s, err, 2, "-t"), -1);
    assert_non_null(strstr(err, "missing argument"));
    config_free(opts, &s);
    assert_int_equal(parse(&s, err, 2, "stray"), -1);
    assert_non_null(strstr(err, "unexpected argument"));
    config_free(opts, &s);
}

static void test_file_and_precedence(void **state)
{
    struct settings s;
    char err[CONFIG_ERR_MAX];
    char *path = write_tmp("{\"interface\": [\"a\", \"b\"], \"threads\": 8, \"name\": \"n1\","
                           " \"verbose\": true}");

    (void)state;
    /* The file is read first; the command line overrides and appends. */
    assert_int_equal(parse(&s, err, 5, "-t", "2", "-c", path), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.in.n, 2);
    assert_string_equal(s.name, "n1");
    assert_int_equal(s.flag, 1);
    config_free(opts, &s);
    unlink(path);
}

static void test_file_errors(void **state)
{
    struct settings s;
    char err[CONFIG_ERR_MAX];
    char *path;

    (void)state;
    path = write_tmp("{\"threads\": \"many\"}");
    assert_int_equal(parse(&s, err, 3, "--config", path), -1);
    assert_non_null(strstr(err, "wrong type"));
    config_free(opts, &s);
    unlink(path);
    path = write_tmp("{\"nonsense\": 1}");
    assert_int_equal(parse(&s, err, 2, "--config=" /* joined form */ "x"), -1);
    config_free(opts, &s);
    assert_int_equal(parse(&s, err, 3, "-c", path), -1);
    assert_non_null(strstr(err, "unknown key \"nonsense\""));
    config_free(opts, &s);
    unlink(path);
    path = write_tmp("{\"threads\": 1,,}");
    assert_int_equal(parse(&s, err, 3, "-c", path), -1);
    assert_non_null(strstr(err, path));
    config_free(opts, &s);
    unlink(path);
    path = write_tmp("[1, 2]");
    assert_int_equal(parse(&s, err, 3, "-c", path), -1);
    assert_non_null(strstr(err, "JSON object"));
    config_free(opts, &s);
    unlink(path);
    path = write_tmp("{\"threads\": 65}");
    assert_int_equal(parse(&s, err, 3, "-c", path), -1);
    assert_non_null(strstr(err, "out of range"));
    config_free(opts, &s);
    unlink(path);
}

static void test_usage_lists_every_option(void **state)
{
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    const struct config_opt *o;

    (void)state;
    config_usage(f, "prog [options]", opts);
    fclose(f);
    for (o = opts; o->name; o++) {
        char want[64];

        snprintf(want, sizeof(want), "--%s", o->name);
        assert_non_null(strstr(buf, want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_file_and_precedence),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_usage_lists_every_option),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
