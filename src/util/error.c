/* Error records and the code ⇄ name tables. */
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gc__error_set(struct gc_error *err, const char *file, int line, int code, const char *field,
                  const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->file = file;
    err->line = line;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(err->msg)) {
        /* cut at a character boundary, or the whole message fails UTF-8 validation and
         * the problem+json detail turns every non-ASCII byte into '?' */
        size_t len = sizeof(err->msg) - 1;
        size_t start = len;
        while (start > 0 && ((unsigned char)err->msg[start - 1] & 0xC0) == 0x80)
            start--;
        if (start > 0 && (unsigned char)err->msg[start - 1] >= 0xC0) {
            unsigned char lead = (unsigned char)err->msg[start - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (len - (start - 1) < need)
                err->msg[start - 1] = '\0'; /* an incomplete last character */
        }
    }
    return code;
}

void gc_error_clear(struct gc_error *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

const char *gc_error_slug(int code)
{
    switch (code) {
#define GC_X_SLUG(name, val, slug, text) \
    case name:                           \
        return slug;
        GC_ERRORS(GC_X_SLUG)
#undef GC_X_SLUG
    }
    return "internal-error";
}

const char *gc_error_title(int code)
{
    switch (code) {
#define GC_X_TITLE(name, val, slug, text) \
    case name:                            \
        return text;
        GC_ERRORS(GC_X_TITLE)
#undef GC_X_TITLE
    }
    return "Internal error";
}

void gc__bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "{\"level\":\"fatal\",\"module\":\"bug\",\"where\":\"%s:%d\",\"msg\":\"", file,
            line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\"}\n");
    abort();
}
