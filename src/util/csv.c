/* CSV parsing for imports: libcsv (strict mode) does the quoting rules; this file collects
 * the fields into rows, skips a byte-order mark and enforces the limits. */
#include "util/csv.h"

#include "util/mem.h"

#include <csv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct collect {
    struct gc_csv *c;
    size_t cap;         /* of c->rows */
    struct gc_csv_row cur;
    size_t cur_cap;
    size_t max_rows, max_fields;
    bool too_many_rows, too_many_fields;
};

static void on_field(void *s, size_t n, void *cls)
{
    struct collect *k = cls;
    if (k->too_many_rows || k->too_many_fields)
        return;
    if (k->cur.nfields == k->max_fields) {
        k->too_many_fields = true;
        return;
    }
    if (k->cur.nfields == k->cur_cap) {
        k->cur_cap = k->cur_cap ? 2 * k->cur_cap : 16;
        k->cur.fields = gc_realloc(k->cur.fields, k->cur_cap * sizeof(char *));
    }
    k->cur.fields[k->cur.nfields++] = s ? gc_strndup(s, n) : gc_strdup("");
}

static void on_row(int term, void *cls)
{
    (void)term;
    struct collect *k = cls;
    if (k->too_many_rows || k->too_many_fields)
        return;
    /* a line holding nothing at all is not a row */
    bool blank = k->cur.nfields == 0 || (k->cur.nfields == 1 && k->cur.fields[0][0] == '\0');
    if (blank) {
        for (size_t i = 0; i < k->cur.nfields; i++)
            free(k->cur.fields[i]);
        k->cur.nfields = 0;
        return;
    }
    if (k->c->nrows == k->max_rows) {
        k->too_many_rows = true;
        return;
    }
    if (k->c->nrows == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 64;
        k->c->rows = gc_realloc(k->c->rows, k->cap * sizeof(struct gc_csv_row));
    }
    k->c->rows[k->c->nrows++] = k->cur;
    memset(&k->cur, 0, sizeof(k->cur));
    k->cur_cap = 0;
}

static void *csv_realloc(void *p, size_t n)
{
    return gc_realloc(p, n);
}

int gc_csv_parse(const char *data, size_t len, size_t max_rows, size_t max_fields,
                 struct gc_csv **out, struct gc_error *err)
{
    struct csv_parser p;
    /* strict: a quote inside an unquoted field or text after a closing quote is an error;
     * STRICT_FINI: so is a quoted field still open at the end */
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return gc_error_set(err, GC_EINTERNAL, "", "cannot initialise the CSV parser");
    csv_set_realloc_func(&p, csv_realloc);
    struct collect k = {.c = gc_calloc(1, sizeof(struct gc_csv)),
                        .max_rows = max_rows,
                        .max_fields = max_fields};
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
        data += 3;
        len -= 3;
    }
    int rc = 0;
    size_t done = csv_parse(&p, data, len, on_field, on_row, &k);
    if (done != len || csv_fini(&p, on_field, on_row, &k) != 0)
        rc = gc_error_set(err, GC_EINVAL, "",
                          "CSV record %zu (the header is record 1): malformed (%s): a quote must open and close a whole "
                          "field, and a quote inside a quoted field is written twice",
                          k.c->nrows + 1, csv_strerror(csv_error(&p)));
    else if (k.too_many_rows)
        rc = gc_error_set(err, GC_EINVAL, "", "more than %zu CSV records (the header counts)",
                          max_rows);
    else if (k.too_many_fields)
        rc = gc_error_set(err, GC_EINVAL, "", "CSV record %zu (the header is record 1) has more than %zu fields",
                          k.c->nrows + 1, max_fields);
    csv_free(&p);
    for (size_t i = 0; i < k.cur.nfields; i++)
        free(k.cur.fields[i]);
    free(k.cur.fields);
    if (rc) {
        gc_csv_free(k.c);
        return rc;
    }
    *out = k.c;
    return 0;
}

void gc_csv_free(struct gc_csv *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nrows; i++) {
        for (size_t j = 0; j < c->rows[i].nfields; j++)
            free(c->rows[i].fields[j]);
        free(c->rows[i].fields);
    }
    free(c->rows);
    free(c);
}
