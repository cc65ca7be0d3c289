/* Private to the store layer: migrations. */
#ifndef GC_STORE_INT_H
#define GC_STORE_INT_H

#include <stddef.h>

struct gc_migration {
    int version;
    const char *name;
    const char *const *statements; /* NULL-terminated */
};

extern const struct gc_migration gc_migrations[];
extern const size_t gc_nmigrations;

#endif
