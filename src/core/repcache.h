/* Cache of serialised objects for GET by id (see repcache.c). */
#ifndef GC_REPCACHE_H
#define GC_REPCACHE_H

#include "core/core.h"

struct gc_repcache_hit {
    char *body; /* malloc'd copy, the caller's */
    size_t len;
    int64_t version;
    char path[GC_DEPT_PATH_MAX]; /* department path of the object, for authorization */
};

/* True with hit filled when a current entry exists. */
bool gc_repcache_get(struct gc_store *st, const char *kind, const char *id,
                     struct gc_repcache_hit *hit);
/* gen: gc_store_generation() read before the data was loaded. */
void gc_repcache_put(struct gc_store *st, uint64_t gen, const char *kind, const char *id,
                     const char *body, size_t len, const char *path, int64_t version);
/* Frees every entry (at exit, and for tests). */
void gc_repcache_clear(void);

#endif
