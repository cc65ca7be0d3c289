/* Growable byte buffer with a hard size cap (curl's dynbuf idea).
 * Invariant: data is NUL-terminated whenever data != NULL; len never exceeds max. */
#ifndef GC_BUF_H
#define GC_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct gc_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len; appends past it fail with GC_ETOOBIG */
};

#define GC_BUF_UNLIMITED ((size_t)-1 / 2)

void gc_buf_init(struct gc_buf *b, size_t max);
void gc_buf_release(struct gc_buf *b);
void gc_buf_reset(struct gc_buf *b);
/* Makes room for n bytes in all (a known size: no regrowth on the way). 0 or GC_ETOOBIG. */
int gc_buf_reserve(struct gc_buf *b, size_t n);
/* Returns 0 or GC_ETOOBIG (the buffer is left unchanged then). */
int gc_buf_add(struct gc_buf *b, const void *p, size_t n);
int gc_buf_adds(struct gc_buf *b, const char *s);
int gc_buf_addf(struct gc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gc_buf_vaddf(struct gc_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Hands the data over to the caller (never NULL) and resets the buffer. */
char *gc_buf_steal(struct gc_buf *b);
const char *gc_buf_str(const struct gc_buf *b); /* "" when empty */

#endif
