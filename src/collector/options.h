/*
 * options.h - sonde-collector's settings: one table for the command line
 * and the JSON config file (see common/config.h).
 */
#ifndef SONDE_COLLECTOR_OPTIONS_H
#define SONDE_COLLECTOR_OPTIONS_H

#include "common/config.h"

#define COLLECTOR_SYNOPSIS "sonde-collector [OPTIONS]"
#define COLLECTOR_LISTEN   "127.0.0.1:50051"

struct collector_settings {
    char *listen;
    char *tls_cert, *tls_key, *tls_ca;
    int cleartext, cleartext_anywhere;
    struct config_list outputs, pull;
    char *accept_types;
    int trust_agent_id;
    long max_message, max_string, commit_ms;
    int no_fsync;
    char *config;
    int verbose, quiet, version, help;
};

extern const struct config_opt collector_options[];
void collector_settings_defaults(struct collector_settings *s);

#endif
