/* How the CLI shows server data: pretty JSON, or aligned tables that count CJK characters as
 * two terminal cells and never pass terminal control sequences from the server through. */
#ifndef GC_CLI_OUTPUT_H
#define GC_CLI_OUTPUT_H

#include "util/buf.h"

#include <jansson.h>
#include <stdio.h>

/* A table column: header text and the object key it shows ("a.b": member b of object a);
 * maxw caps the cell width in
 * terminal cells (0: no cap); longer values are cut and end in "…". */
struct gc_cli_col {
    const char *header; /* NULL ends a column list */
    const char *key;
    unsigned maxw;
};

/* Display width of a UTF-8 string in terminal cells: East Asian wide characters count 2,
 * combining marks 0, anything undecodable 1. */
size_t gc_cli_utf8_width(const char *s);

/* Appends s to b with control characters (C0, C1, DEL, bidirectional overrides) and invalid
 * UTF-8 replaced so that server data cannot move the cursor or recolour the terminal; tabs
 * and newlines become spaces. maxw > 0 cuts the result to at most maxw cells, ending in "…".
 * Returns 0 or GC_ETOOBIG. */
int gc_cli_sanitize(struct gc_buf *b, const char *s, size_t maxw);

/* Prints s padded with spaces to `width` cells. */
void gc_cli_print_padded(FILE *f, const char *s, size_t width);

/* Appends the table form of a JSON value: strings as they are, null as "-", objects and
 * arrays as compact JSON. Returns 0 or GC_ETOOBIG. */
int gc_cli_value_text(const json_t *v, struct gc_buf *b);

/* Prints v pretty-printed (2-space indent, UTF-8 kept, key order kept) and a newline. */
void gc_cli_print_json(FILE *f, const json_t *v);

/* Prints an array of objects as aligned columns under a header line. */
void gc_cli_print_table(FILE *f, const struct gc_cli_col *cols, const json_t *items);

/* Prints an object as aligned "key  value" lines, in the server's key order. */
void gc_cli_print_object(FILE *f, const json_t *obj);

/* The same, leaving out the keys of skip (NULL-terminated; NULL skips nothing). */
void gc_cli_print_object_skip(FILE *f, const json_t *obj, const char *const *skip);

/* Writes console text for a terminal: like gc_cli_sanitize but keeping newlines and tabs,
 * dropping the carriage return of a CR LF, and never cutting. Returns 0 or GC_ETOOBIG. */
int gc_cli_sanitize_text(struct gc_buf *b, const char *s, size_t len);

#endif
