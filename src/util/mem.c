/* Aborting allocators. */
#include "util/mem.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

void *gc_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        GC_BUG("out of memory allocating %zu bytes", n);
    return p;
}

void *gc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        GC_BUG("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *gc_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        GC_BUG("out of memory reallocating %zu bytes", n);
    return q;
}

char *gc_strdup(const char *s)
{
    return gc_strndup(s, strlen(s));
}

char *gc_strndup(const char *s, size_t n)
{
    char *p = gc_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
