/* A cache of serialised single objects for GET by id, so that a read needs neither the store
 * nor JSON serialisation. An entry is stamped with the store generation read before its data
 * was loaded and is served only while the generation is unchanged: any committed write of
 * this process empties the cache, so a reader never sees an object older than a write that
 * was acknowledged before its request. Authorization still runs on every hit, on the cached
 * department path. Only for stores whose writers are all in this process. */
#include "core/repcache.h"

#include "util/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096
#define LOCKS 64
#define MAX_BODY 8192

struct slot {
    uint64_t gen; /* 0 = empty */
    char kind[16];
    char id[GC_ID_LEN + 1];
    char path[GC_DEPT_PATH_MAX];
    int64_t version;
    char *body;
    size_t len;
};

static struct slot slots[SLOTS];
static pthread_mutex_t locks[LOCKS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&locks[i], NULL);
}

static unsigned slot_of(const char *kind, const char *id)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (const char *p = kind; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % SLOTS;
}

bool gc_repcache_get(struct gc_store *st, const char *kind, const char *id,
                     struct gc_repcache_hit *hit)
{
    if (!gc_store_cacheable(st) || strlen(kind) >= sizeof(slots[0].kind))
        return false;
    pthread_once(&once, init);
    uint64_t gen = gc_store_generation(st) + 1; /* stored +1 so that 0 means empty */
    unsigned i = slot_of(kind, id);
    bool found = false;
    pthread_mutex_lock(&locks[i % LOCKS]);
    struct slot *s = &slots[i];
    if (s->gen == gen && strcmp(s->kind, kind) == 0 && strcmp(s->id, id) == 0) {
        hit->body = gc_strndup(s->body, s->len);
        hit->len = s->len;
        hit->version = s->version;
        snprintf(hit->path, sizeof(hit->path), "%s", s->path);
        found = true;
    }
    pthread_mutex_unlock(&locks[i % LOCKS]);
    return found;
}

void gc_repcache_put(struct gc_store *st, uint64_t gen, const char *kind, const char *id,
                     const char *body, size_t len, const char *path, int64_t version)
{
    if (!gc_store_cacheable(st) || len > MAX_BODY || strlen(kind) >= sizeof(slots[0].kind) ||
        strlen(id) > GC_ID_LEN || strlen(path) >= GC_DEPT_PATH_MAX)
        return;
    if (gen != gc_store_generation(st))
        return; /* a write committed meanwhile: the data may be stale already */
    pthread_once(&once, init);
    unsigned i = slot_of(kind, id);
    char *copy = gc_strndup(body, len);
    pthread_mutex_lock(&locks[i % LOCKS]);
    struct slot *s = &slots[i];
    char *old = s->body;
    s->gen = gen + 1;
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->version = version;
    s->body = copy;
    s->len = len;
    pthread_mutex_unlock(&locks[i % LOCKS]);
    free(old);
}

void gc_repcache_clear(void)
{
    pthread_once(&once, init);
    for (unsigned i = 0; i < SLOTS; i++) {
        pthread_mutex_lock(&locks[i % LOCKS]);
        free(slots[i].body);
        memset(&slots[i], 0, sizeof(slots[i]));
        pthread_mutex_unlock(&locks[i % LOCKS]);
    }
}
