/* Declarative validation of JSON request bodies: types, required and unknown fields,
 * lengths in characters, character sets. Messages name the field and say what is allowed. */
#ifndef GC_VALIDATE_H
#define GC_VALIDATE_H

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum gc_jtype { GC_JT_STRING, GC_JT_BOOL, GC_JT_INT, GC_JT_OBJECT, GC_JT_ARRAY, GC_JT_NUMBER };

/* Character classes for strings. */
enum gc_charset {
    GC_CS_TEXT = 0,   /* any printable text: no control characters */
    GC_CS_CODE,       /* A-Z a-z 0-9 . _ - */
    GC_CS_USERNAME,   /* a-z first, then a-z 0-9 . _ - */
    GC_CS_ANY,        /* anything jansson accepted (valid UTF-8, no NUL) */
};

struct gc_jfield {
    const char *name;
    enum gc_jtype type;
    bool required;
    bool nullable;
    int min, max;           /* string: length in characters; int: value range;
                             * array: number of items */
    enum gc_charset charset;
};

/* in must be an object; every member must be in spec with the right type and bounds. */
int gc_json_check(const json_t *in, const struct gc_jfield *spec, size_t n, struct gc_error *err);

/* Number of UTF-8 characters in s (s is valid UTF-8: jansson checked). */
size_t gc_utf8_len(const char *s);
/* Borrowed string member, or NULL when absent or null. */
const char *gc_json_str(const json_t *o, const char *key);
/* The If-Match check of an update or delete: 0 when if_match is -1 (not sent) or equals
 * obj's "version" (or obj is NULL: loading it failed already), else GC_EPRECOND with
 * "<noun> '<id>' is at version N, not M: reload it and retry". */
int gc_check_if_match(const json_t *obj, int64_t if_match, const char *noun, const char *id,
                      struct gc_error *err);

#endif
