/*
 * log.h - diagnostics on stderr.
 *
 * The one piece of process-wide state we allow ourselves: the verbosity,
 * set once from the command line before any thread starts.
 */
#ifndef SONDE_LOG_H
#define SONDE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(int level);
int log_get_level(void);
void log_set_prog(const char *prog);

#if defined(__GNUC__)
#define SONDE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SONDE_PRINTF(a, b)
#endif

void log_msg(int level, const char *fmt, ...) SONDE_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
