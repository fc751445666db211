/*
 * config.c - command line and JSON config file from one option table.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"

#define CONFIG_MAX_OPTS 128

static void *field(void *settings, const struct config_opt *o)
{
    return (char *)settings + o->offset;
}

int config_list_add(struct config_list *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    char *copy = strdup(s);

    if (v == NULL || copy == NULL) {
        free(copy);
        if (v)
            l->v = v;
        return -1;
    }
    l->v = v;
    l->v[l->n++] = copy;
    return 0;
}

static int set_string(char **dst, const char *s)
{
    char *copy = strdup(s);

    if (copy == NULL)
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

static int set_int(const struct config_opt *o, long *dst, const char *s, char *err, size_t errlen)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 0);
    if (errno || end == s || *end != '\0') {
        snprintf(err, errlen, "--%s: '%s' is not a number", o->name, s);
        return -1;
    }
    if (v < o->min || v > o->max) {
        snprintf(err, errlen, "--%s: %ld is out of range [%ld, %ld]", o->name, v, o->min, o->max);
        return -1;
    }
    *dst = v;
    return 0;
}

/* Apply one textual value (command line) to an option. */
static int apply_text(const struct config_opt *o, void *settings, const char *val, char *err,
                      size_t errlen)
{
    switch (o->type) {
    case CONFIG_BOOL:
        *(int *)field(settings, o) = 1;
        return 0;
    case CONFIG_INT:
        return set_int(o, field(settings, o), val, err, errlen);
    case CONFIG_STRING:
        if (set_string(field(settings, o), val) == 0)
            return 0;
        break;
    case CONFIG_LIST:
        if (config_list_add(field(settings, o), val) == 0)
            return 0;
        break;
    }
    snprintf(err, errlen, "--%s: out of memory", o->name);
    return -1;
}

static const struct config_opt *find_opt(const struct config_opt *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts;
    return NULL;
}

/* Apply one JSON value (config file) to an option. */
static int apply_json(const struct config_opt *o, void *settings, json_t *v, char *err,
                      size_t errlen)
{
    char num[32];
    size_t i;

    switch (o->type) {
    case CONFIG_BOOL:
        if (!json_is_boolean(v))
            break;
        *(int *)field(settings, o) = json_is_true(v);
        return 0;
    case CONFIG_INT:
        if (!json_is_integer(v))
            break;
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        return set_int(o, field(settings, o), num, err, errlen);
    case CONFIG_STRING:
        if (!json_is_string(v))
            break;
        return apply_text(o, settings, json_string_value(v), err, errlen);
    case CONFIG_LIST:
        if (json_is_string(v))
            return apply_text(o, settings, json_string_value(v), err, errlen);
        if (!json_is_array(v))
            break;
        for (i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e))
                goto bad;
            if (apply_text(o, settings, json_string_value(e), err, errlen) < 0)
                return -1;
        }
        return 0;
    }
bad:
    snprintf(err, errlen, "config key \"%s\": wrong type (expected %s)", o->name,
             o->type == CONFIG_BOOL   ? "true or false"
             : o->type == CONFIG_INT  ? "an integer"
             : o->type == CONFIG_LIST ? "a string or an array of strings"
                                      : "a string");
    return -1;
}

int config_load_file(const struct config_opt *opts, void *settings, const char *path, char *err,
                     size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *v;
    int rc = 0;

    if (root == NULL) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the config file must be a JSON object", path);
        json_decref(root);
        return -1;
    }
    json_object_foreach(root, key, v)
    {
        const struct config_opt *o = find_opt(opts, key);

        if (o == NULL || strcmp(key, "config") == 0 || strcmp(key, "help") == 0) {
            snprintf(err, errlen, "%s: unknown key \"%s\"", path, key);
            rc = -1;
            break;
        }
        if (apply_json(o, settings, v, err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    json_decref(root);
    return rc;
}

/* Build getopt_long tables from the option table. */
static int build_getopt(const struct config_opt *opts, struct option *lopts, char *sopts)
{
    int n = 0;
    char *s = sopts;

    *s++ = ':'; /* report missing arguments as ':' */
    for (; opts->name && n < CONFIG_MAX_OPTS; opts++, n++) {
        int has_arg = opts->type == CONFIG_BOOL ? no_argument : required_argument;

        lopts[n].name = opts->name;
        lopts[n].has_arg = has_arg;
        lopts[n].flag = NULL;
        lopts[n].val = 256 + n;
        if (opts->short_name) {
            *s++ = (char)opts->short_name;
            if (has_arg == required_argument)
                *s++ = ':';
        }
    }
    memset(&lopts[n], 0, sizeof(lopts[n]));
    *s = '\0';
    return n;
}

static const struct config_opt *by_short(const struct config_opt *opts, int c)
{
    for (; opts->name; opts++)
        if (opts->short_name == c)
            return opts;
    return NULL;
}

/* The config file is read before anything else so flags override it. */
static int load_config_first(const struct config_opt *opts, void *settings, int argc, char **argv,
                             char *err, size_t errlen)
{
    const struct config_opt *c = find_opt(opts, "config");
    int i;

    if (c == NULL)
        return 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *path = NULL;

        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "--config") == 0 ||
            (c->short_name && a[0] == '-' && a[1] == c->short_name && a[2] == '\0'))
            path = i + 1 < argc ? argv[i + 1] : NULL;
        else if (strncmp(a, "--config=", 9) == 0)
            path = a + 9;
        if (path)
            return config_load_file(opts, settings, path, err, errlen);
    }
    return 0;
}

int config_parse(const struct config_opt *opts, void *settings, int argc, char **argv, char *err,
                 size_t errlen)
{
    struct option lopts[CONFIG_MAX_OPTS + 1];
    char sopts[CONFIG_MAX_OPTS * 2 + 2];
    int n = build_getopt(opts, lopts, sopts);
    int c, idx;

    if (load_config_first(opts, settings, argc, argv, err, errlen) < 0)
        return -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, sopts, lopts, &idx)) != -1) {
        const struct config_opt *o;

        if (c == '?' || c == ':') {
            const char *what = argv[optind - 1];
            snprintf(err, errlen, "%s option: %s", c == ':' ? "missing argument for" : "unknown",
                     what ? what : "?");
            return -1;
        }
        o = c >= 256 && c < 256 + n ? &opts[c - 256] : by_short(opts, c);
        if (o == NULL) {
            snprintf(err, errlen, "unknown option");
            return -1;
        }
        if (strcmp(o->name, "config") == 0)
            continue; /* already applied */
        if (apply_text(o, settings, optarg, err, errlen) < 0)
            return -1;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
        return -1;
    }
    return 0;
}

void config_usage(FILE *out, const char *synopsis, const struct config_opt *opts)
{
    fprintf(out, "usage: %s\n\noptions:\n", synopsis);
    for (; opts->name; opts++) {
        char left[64];

        if (opts->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", opts->short_name, opts->name,
                     opts->arg ? " " : "", opts->arg ? opts->arg : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", opts->name, opts->arg ? " " : "",
                     opts->arg ? opts->arg : "");
        fprintf(out, "  %-30s %s\n", left, opts->help);
    }
}

void config_free(const struct config_opt *opts, void *settings)
{
    size_t i;

    for (; opts->name; opts++) {
        if (opts->type == CONFIG_STRING) {
            char **s = field(settings, opts);
            free(*s);
            *s = NULL;
        } else if (opts->type == CONFIG_LIST) {
            struct config_list *l = field(settings, opts);
            for (i = 0; i < l->n; i++)
                free(l->v[i]);
            free(l->v);
            l->v = NULL;
            l->n = 0;
        }
    }
}
