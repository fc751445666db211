/*
 * config.h - one option table per program, read from the command line and
 * from a JSON config file alike.
 *
 * A program describes each setting once (name, type, where it lives in the
 * program's settings struct, help text). From that one table we get
 * getopt_long parsing, --help output, and config-file keys: the config file
 * is a JSON object whose keys are the long option names, so anything a flag
 * sets, the file sets too, for the agent and the collector alike.
 */
#ifndef SONDE_CONFIG_H
#define SONDE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_ERR_MAX 256

enum config_type {
    CONFIG_BOOL,   /* int; flag on the command line, true/false in the file */
    CONFIG_INT,    /* long, checked against [min, max] */
    CONFIG_STRING, /* char *, owned by the settings (strdup'd); default must be NULL */
    CONFIG_LIST,   /* struct config_list; repeatable flag, array in the file */
};

struct config_list {
    char **v;
    size_t n;
};

struct config_opt {
    const char *name; /* long option and config-file key */
    int short_name;   /* 0 when none */
    int type;         /* enum config_type */
    size_t offset;    /* offsetof() in the settings struct */
    const char *arg;  /* placeholder for --help ("N", "PATH"); NULL for flags */
    const char *help;
    long min, max; /* CONFIG_INT only */
};

/* Parse argv into settings. Reads --config FILE (if the table has "config")
 * first, so the command line overrides the file. Non-option arguments are
 * an error. Returns 0, or -1 with a message in err. */
int config_parse(const struct config_opt *opts, void *settings, int argc, char **argv, char *err,
                 size_t errlen);

/* Apply a JSON config file. Unknown keys and wrong types are errors. */
int config_load_file(const struct config_opt *opts, void *settings, const char *path, char *err,
                     size_t errlen);

/* Print "usage: SYNOPSIS" and one line per option. */
void config_usage(FILE *out, const char *synopsis, const struct config_opt *opts);

/* Free the strings and lists config_parse allocated. */
void config_free(const struct config_opt *opts, void *settings);

int config_list_add(struct config_list *l, const char *s);

#endif
