/*
 * options.c - the option table of sonde-collector.
 */
#include <stddef.h>
#include <string.h>

#include "options.h"

#define OPT(n, s, t, f, a, h, lo, hi)                                                              \
    {                                                                                              \
        n, s, t, offsetof(struct collector_settings, f), a, h, lo, hi                              \
    }

const struct config_opt collector_options[] = {
    OPT("listen", 'l', CONFIG_STRING, listen, "ADDR",
        "receive agents' pushes on ADDR (default " COLLECTOR_LISTEN ")", 0, 0),
    OPT("tls-cert", 0, CONFIG_STRING, tls_cert, "PEM", "this collector's certificate", 0, 0),
    OPT("tls-key", 0, CONFIG_STRING, tls_key, "PEM", "its private key", 0, 0),
    OPT("tls-ca", 0, CONFIG_STRING, tls_ca, "PEM", "CA that signs the agents' certificates", 0, 0),
    OPT("insecure-cleartext", 0, CONFIG_BOOL, cleartext, NULL,
        "no TLS (HTTP/2 cleartext); only on a loopback address", 0, 0),
    OPT("insecure-cleartext-anywhere", 0, CONFIG_BOOL, cleartext_anywhere, NULL,
        "allow --insecure-cleartext on any address", 0, 0),
    OPT("pull", 0, CONFIG_LIST, pull, "URL",
        "also subscribe to an agent's --listen: grpcs://HOST:PORT or grpc:// (repeatable)", 0, 0),
    OPT("output", 'o', CONFIG_LIST, outputs, "TYPE:PATH",
        "json:PATH or pb:PATH (- = stdout), appended (repeatable; default json:-)", 0, 0),
    OPT("accept-types", 0, CONFIG_STRING, accept_types, "LIST",
        "event types to accept (comma list); others are answered UNSUBSCRIBE", 0, 0),
    OPT("trust-agent-id", 0, CONFIG_BOOL, trust_agent_id, NULL,
        "TLS: accept an agent_id other than the name in the agent's certificate", 0, 0),
    OPT("max-message", 0, CONFIG_INT, max_message, "BYTES",
        "largest message accepted (default 4194304)", 1024, 64L << 20),
    OPT("max-string", 0, CONFIG_INT, max_string, "BYTES",
        "longest string field accepted in an event (default 65536)", 16, 1L << 30),
    OPT("commit-ms", 0, CONFIG_INT, commit_ms, "MS",
        "commit to disk and acknowledge this often (default 50)", 1, 60000),
    OPT("no-fsync", 0, CONFIG_BOOL, no_fsync, NULL,
        "flush but do not fdatasync before acknowledging", 0, 0),
    OPT("config", 'c', CONFIG_STRING, config, "FILE",
        "JSON config file; keys are these long option names", 0, 0),
    OPT("verbose", 'v', CONFIG_BOOL, verbose, NULL, "log connections and streams", 0, 0),
    OPT("quiet", 'q', CONFIG_BOOL, quiet, NULL, "log errors only", 0, 0),
    OPT("version", 'V', CONFIG_BOOL, version, NULL, "print the version and exit", 0, 0),
    OPT("help", 'h', CONFIG_BOOL, help, NULL, "show this help and exit", 0, 0),
    {NULL, 0, 0, 0, NULL, NULL, 0, 0},
};

void collector_settings_defaults(struct collector_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->max_message = 4194304;
    s->max_string = 65536;
    s->commit_ms = 50;
}
