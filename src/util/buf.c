/* Growable capped buffer. */
#include "util/buf.h"

#include "util/error.h"
#include "util/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gc_buf_init(struct gc_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gc_buf_release(struct gc_buf *b)
{
    free(b->data);
    gc_buf_init(b, b->max);
}

void gc_buf_reset(struct gc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int grow(struct gc_buf *b, size_t need)
{
    if (need > b->max)
        return GC_ETOOBIG;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap *= 2;
    b->data = gc_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int gc_buf_reserve(struct gc_buf *b, size_t n)
{
    if (n > b->max)
        return GC_ETOOBIG;
    if (n + 1 <= b->cap)
        return 0;
    b->data = gc_realloc(b->data, n + 1);
    if (b->cap == 0)
        b->data[0] = '\0';
    b->cap = n + 1;
    return 0;
}

int gc_buf_add(struct gc_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return GC_ETOOBIG;
    int rc = grow(b, b->len + n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gc_buf_adds(struct gc_buf *b, const char *s)
{
    return gc_buf_add(b, s, strlen(s));
}

int gc_buf_vaddf(struct gc_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return GC_EINVAL;
    if ((size_t)n > b->max - b->len)
        return GC_ETOOBIG;
    int rc = grow(b, b->len + (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int gc_buf_addf(struct gc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = gc_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *gc_buf_steal(struct gc_buf *b)
{
    char *p = b->data ? b->data : gc_strdup("");
    gc_buf_init(b, b->max);
    return p;
}

const char *gc_buf_str(const struct gc_buf *b)
{
    return b->data ? b->data : "";
}
