/* Canonical JSON of supervision specification 1.0 (docs/supervision-spec.md, section 5):
 * writing it from jansson values, and reading text into a flat index of its values.
 *
 * Reading is the receiver's fast path. Text that is already canonical (govcloud sends
 * nothing else) is indexed in one pass, without a tree and without an allocation per value:
 * every value keeps its place in the text, so a record's data is stored as the bytes that
 * were received and signed. Any other JSON is parsed by jansson and put in canonical form
 * first, so both kinds of text end in the same index over canonical text. */
#ifndef GC_CANON_H
#define GC_CANON_H

#include "util/buf.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of the canonical form (arrays and objects). */
#define GC_CANON_MAX_DEPTH 64

/* ---- writing ---- */

/* Appends the canonical form of v to b: object members sorted by key (bytewise UTF-8, i.e.
 * by code point), no whitespace, strings in UTF-8 with only '"', '\\' and U+0000..U+001F
 * escaped, integers in decimal, reals as printf "%.17g" with ".0" added when that has no
 * '.' or 'e' and the exponent without '+' and leading zeros. skip_key: a top-level member
 * left out (the batch's "signature"), or NULL. Returns 0 or GC_ETOOBIG / GC_EINVAL (a real
 * that is not finite, nesting deeper than GC_CANON_MAX_DEPTH). */
int gc_canonical_json(const json_t *v, const char *skip_key, struct gc_buf *b);
/* The canonical form as a malloc'd string (caller frees), or NULL on error. */
char *gc_canonical_dumps(const json_t *v);

/* ---- reading ---- */

enum gc_cj_type {
    GC_CJ_NULL,
    GC_CJ_FALSE,
    GC_CJ_TRUE,
    GC_CJ_INT,
    GC_CJ_REAL,
    GC_CJ_STRING,
    GC_CJ_ARRAY,
    GC_CJ_OBJECT,
};

/* No such value (gc_cj_get of a missing member). */
#define GC_CJ_NONE UINT32_MAX

/* One value. The values are in document order: a container is followed by its subtree, and
 * an object's members each take a key (a string value) followed by the member's value. */
struct gc_cj {
    uint8_t type;    /* enum gc_cj_type */
    uint8_t decoded; /* a string whose content had escapes: it is in the doc's dec buffer */
    uint32_t start, end; /* the value's canonical text is text[start, end) */
    uint32_t next;       /* the index of the first value after this one's subtree */
    uint32_t count;      /* arrays: items; objects: members */
    union {
        struct {
            uint32_t off, len; /* strings: the content, in text or dec */
        } s;
        int64_t i; /* GC_CJ_INT */
        double d;  /* GC_CJ_REAL */
    } v;
};

struct gc_cjdoc {
    const char *text; /* canonical text (borrowed, or own) */
    size_t len;
    struct gc_cj *v;  /* owned; v[0] is the root */
    size_t n, cap;
    char *dec;        /* owned: decoded contents of strings with escapes */
    size_t declen, deccap;
    char *own;        /* owned: the canonical text, when it was made from other JSON */
};

/* Indexes text that must already be canonical (trailing ASCII whitespace aside). Returns 0,
 * or GC_EINVAL when it is not canonical JSON (it may still be JSON: gc_cj_load takes that),
 * GC_ETOOBIG at 4 GiB or more. text must outlive d. Release d in any case. */
int gc_cj_read(struct gc_cjdoc *d, const char *text, size_t len);
/* Indexes any JSON text: canonical text at once; other JSON is parsed by jansson (duplicate
 * keys refused) and put in canonical form first (d->own then holds that text). GC_EINVAL
 * with a message naming line and column for text that is not JSON. Release d in any case. */
int gc_cj_load(struct gc_cjdoc *d, const char *text, size_t len, struct gc_error *err);
/* Indexes the canonical form of a jansson value (GC_EINVAL: not finite, too deep). */
int gc_cj_from_json(struct gc_cjdoc *d, const json_t *v);
void gc_cj_release(struct gc_cjdoc *d);

/* The content of string value i (not NUL-terminated; it has no NUL) and its length. */
static inline const char *gc_cj_str(const struct gc_cjdoc *d, uint32_t i, size_t *len)
{
    const struct gc_cj *x = &d->v[i];
    *len = x->v.s.len;
    return (x->decoded ? d->dec : d->text) + x->v.s.off;
}

/* The value of member key of object obj, or GC_CJ_NONE (also when obj is not an object). */
uint32_t gc_cj_get(const struct gc_cjdoc *d, uint32_t obj, const char *key);
/* Does string value i equal s (NUL-terminated)? */
bool gc_cj_str_eq(const struct gc_cjdoc *d, uint32_t i, const char *s);
/* Copies string value i into out (cap bytes, NUL-terminated, cut to fit); returns out.
 * Anything but a string gives "". */
char *gc_cj_strcpy(const struct gc_cjdoc *d, uint32_t i, char *out, size_t cap);
/* The canonical text of value i, malloc'd and NUL-terminated (caller frees). */
char *gc_cj_dup(const struct gc_cjdoc *d, uint32_t i);

#endif
