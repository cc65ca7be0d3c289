/* CSV text (RFC 4180) to rows of fields, over Debian's libcsv: quoted fields with embedded
 * commas, quotes ("") and line breaks, CRLF or LF line ends, a UTF-8 byte-order mark. */
#ifndef GC_CSV_H
#define GC_CSV_H

#include "util/error.h"

#include <stddef.h>

struct gc_csv_row {
    size_t nfields;
    char **fields; /* NUL-terminated copies; an empty field is "" */
};

struct gc_csv {
    size_t nrows;
    struct gc_csv_row *rows; /* the header, if any, is rows[0]; blank lines are skipped */
};

/* Parses the whole of data (len bytes). Rows may have different numbers of fields (the
 * caller decides what a ragged row means). More than max_rows rows, more than max_fields
 * fields in a row, a quote that is never closed or stray text after a closing quote are
 * GC_EINVAL naming the row. *out is freed with gc_csv_free. */
int gc_csv_parse(const char *data, size_t len, size_t max_rows, size_t max_fields,
                 struct gc_csv **out, struct gc_error *err) __attribute__((warn_unused_result));
void gc_csv_free(struct gc_csv *c);

#endif
