/*
 * main.c - sonde-agent: options, signals, run.
 *
 * Exit codes: 0 success, 1 runtime error (capture, output), 2 usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "common/log.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int main(int argc, char **argv)
{
    struct agent_settings cfg;
    char err[CONFIG_ERR_MAX];
    int rc;

    log_set_prog("sonde-agent");
    agent_settings_defaults(&cfg);
    if (config_parse(agent_options, &cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "sonde-agent: %s\n(try --help)\n", err);
        config_free(agent_options, &cfg);
        return 2;
    }
    if (cfg.help) {
        config_usage(stdout, AGENT_SYNOPSIS, agent_options);
        printf("\nEvents are documented in docs/events.md.\n");
        config_free(agent_options, &cfg);
        return 0;
    }
    if (cfg.version) {
        printf("sonde-agent %s\n", SONDE_VERSION);
        config_free(agent_options, &cfg);
        return 0;
    }
    log_set_level(cfg.quiet ? LOG_ERROR : cfg.verbose ? LOG_INFO : LOG_WARN);
    install_signals();
    rc = agent_run(&cfg, &stop_requested);
    config_free(agent_options, &cfg);
    return rc;
}
