/* Structured logging: one JSON object per line on stderr (or syslog), with the module
 * and, inside a request, the request id. Arguments are not evaluated below the level. */
#ifndef GC_LOG_H
#define GC_LOG_H

#include <stdbool.h>

enum gc_log_level { GC_LOG_DEBUG = 0, GC_LOG_INFO, GC_LOG_WARN, GC_LOG_ERROR };

extern enum gc_log_level gc_log_min_level;

/* Returns -1 for an unknown name. */
int gc_log_level_parse(const char *name);
/* format: "json" or "syslog". */
int gc_log_setup(const char *format, enum gc_log_level min);

/* The request id of the request this thread is serving, or NULL. */
void gc_log_set_request_id(const char *rid);
const char *gc_log_request_id(void);

void gc__log(enum gc_log_level lvl, const char *module, const char *file, int line,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define GC_LOG(lvl, module, ...)                                        \
    do {                                                                \
        if ((lvl) >= gc_log_min_level)                                  \
            gc__log((lvl), (module), __FILE__, __LINE__, __VA_ARGS__);  \
    } while (0)

#define gc_debug(module, ...) GC_LOG(GC_LOG_DEBUG, module, __VA_ARGS__)
#define gc_info(module, ...) GC_LOG(GC_LOG_INFO, module, __VA_ARGS__)
#define gc_warn(module, ...) GC_LOG(GC_LOG_WARN, module, __VA_ARGS__)
#define gc_err(module, ...) GC_LOG(GC_LOG_ERROR, module, __VA_ARGS__)

#endif
