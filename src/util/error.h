/* One error-code space for all of govcloud, and the error record filled on failure.
 * Functions return 0 or a negative GC_E* code and fill a struct gc_error. */
#ifndef GC_ERROR_H
#define GC_ERROR_H

#include <stdarg.h>

/* X(name, value, slug, text): slug is stable and appears in problem+json "type" URIs. */
#define GC_ERRORS(X)                                                              \
    X(GC_EINVAL, -1, "invalid-request", "Invalid request")                        \
    X(GC_ENOTFOUND, -2, "not-found", "Not found")                                 \
    X(GC_ECONFLICT, -3, "conflict", "Conflict")                                   \
    X(GC_EPERM, -4, "forbidden", "Forbidden")                                     \
    X(GC_EAUTH, -5, "unauthorized", "Unauthorized")                               \
    X(GC_ELOCKED, -6, "account-locked", "Account locked")                         \
    X(GC_EPRECOND, -7, "precondition-failed", "Precondition failed")              \
    X(GC_ETOOBIG, -8, "payload-too-large", "Payload too large")                   \
    X(GC_EUNSUPPORTED, -9, "unsupported", "Not supported")                        \
    X(GC_EMETHOD, -10, "method-not-allowed", "Method not allowed")                \
    X(GC_EMEDIA, -11, "unsupported-media-type", "Unsupported media type")         \
    X(GC_EBUSY, -12, "unavailable", "Service unavailable")                        \
    X(GC_ESTORE, -13, "store-error", "Store error")                               \
    X(GC_EINTERNAL, -14, "internal-error", "Internal error")                      \
    X(GC_ERATE, -15, "too-many-requests", "Too many requests")

enum gc_errcode {
    GC_OK = 0,
#define GC_X_ENUM(name, val, slug, text) name = val,
    GC_ERRORS(GC_X_ENUM)
#undef GC_X_ENUM
};

struct gc_error {
    int code;            /* GC_E*, 0 when no error */
    char field[96];      /* JSON pointer or parameter name the error is about, or "" */
    char msg[320];       /* lowercase, names what was wrong, no final period */
    const char *file;    /* where the error was raised, for logs */
    int line;
    long retry_after;    /* seconds, for GC_ELOCKED / GC_ERATE / GC_EBUSY; 0 when unset */
};

/* Sets *err (when err is not NULL) and returns code. */
int gc__error_set(struct gc_error *err, const char *file, int line, int code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define gc_error_set(err, code, field, ...) \
    gc__error_set((err), __FILE__, __LINE__, (code), (field), __VA_ARGS__)

void gc_error_clear(struct gc_error *err);
const char *gc_error_slug(int code);
const char *gc_error_title(int code);

/* A broken invariant: logs and aborts. Never for bad input. */
#define GC_BUG(...) gc__bug(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void gc__bug(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
