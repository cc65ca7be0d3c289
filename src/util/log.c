/* JSON-lines and syslog log sinks. */
#include "util/log.h"

#include "util/timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

enum gc_log_level gc_log_min_level = GC_LOG_INFO;
static bool use_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local char cur_rid[72];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int gc_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

int gc_log_setup(const char *format, enum gc_log_level min)
{
    gc_log_min_level = min;
    if (strcmp(format, "syslog") == 0) {
        use_syslog = true;
        openlog("govcloudd", LOG_PID, LOG_DAEMON);
    } else if (strcmp(format, "json") == 0) {
        use_syslog = false;
    } else {
        return -1;
    }
    return 0;
}

void gc_log_set_request_id(const char *rid)
{
    if (!rid) {
        cur_rid[0] = '\0';
        return;
    }
    snprintf(cur_rid, sizeof(cur_rid), "%s", rid);
}

const char *gc_log_request_id(void)
{
    return cur_rid[0] ? cur_rid : NULL;
}

/* Appends s to out as the inside of a JSON string. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 7 < cap; p++) {
        switch (*p) {
        case '"': out[o++] = '\\'; out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
        case '\n': out[o++] = '\\'; out[o++] = 'n'; break;
        case '\t': out[o++] = '\\'; out[o++] = 't'; break;
        case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
        default:
            if (*p < 0x20)
                o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
            else
                out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return o;
}

void gc__log(enum gc_log_level lvl, const char *module, const char *file, int line,
             const char *fmt, ...)
{
    char msg[2048], emsg[4200], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (use_syslog) {
        static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        if (cur_rid[0])
            syslog(prio[lvl], "[%s] request_id=%s %s", module, cur_rid, msg);
        else
            syslog(prio[lvl], "[%s] %s", module, msg);
        return;
    }
    json_escape(emsg, sizeof(emsg), msg);
    gc_time_format_rfc3339(gc_now_ms(), ts, sizeof(ts));
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    pthread_mutex_lock(&log_lock);
    if (cur_rid[0])
        fprintf(stderr,
                "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"request_id\":\"%s\","
                "\"msg\":\"%s\",\"where\":\"%s:%d\"}\n",
                ts, level_names[lvl], module, cur_rid, emsg, base, line);
    else
        fprintf(stderr,
                "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\","
                "\"where\":\"%s:%d\"}\n",
                ts, level_names[lvl], module, emsg, base, line);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
