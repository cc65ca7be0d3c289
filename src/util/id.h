/* Resource identifiers: UUIDv7 (time-ordered, so keyset pagination follows creation order),
 * and random bytes from the OS. */
#ifndef GC_ID_H
#define GC_ID_H

#include <stdbool.h>
#include <stddef.h>

#define GC_ID_LEN 36
/* out needs GC_ID_LEN + 1 bytes. */
void gc_id_new(char out[GC_ID_LEN + 1]);
/* True when s has the shape of a govcloud id (lowercase UUID). */
bool gc_id_valid(const char *s);
/* A request id: 20 hex characters from a per-thread generator seeded from the OS. Unique
 * enough to correlate logs, cheap enough for every request; not a secret. out needs 21. */
void gc_request_id_new(char out[21]);
/* Fills buf with cryptographically random bytes; aborts if the OS cannot. */
void gc_random_bytes(void *buf, size_t n);

#endif
