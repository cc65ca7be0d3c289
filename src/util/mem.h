/* Allocation that aborts on exhaustion: govcloud never limps on without memory.
 * Anything sized by a client is capped before it gets here. */
#ifndef GC_MEM_H
#define GC_MEM_H

#include <stddef.h>

void *gc_malloc(size_t n) __attribute__((malloc, returns_nonnull));
void *gc_calloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *gc_realloc(void *p, size_t n) __attribute__((returns_nonnull));
char *gc_strdup(const char *s) __attribute__((malloc, returns_nonnull));
char *gc_strndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));

#endif
