/* Validation of supervision records against the JSON Schemas of docs/supervision-spec.md
 * (schemas/supervision/NAME.json, embedded into the binary at build time). A subset of JSON Schema
 * draft 2020-12, compiled once into an internal tree. Validation walks an index of canonical
 * text (canon.h) and allocates nothing; jansson values are indexed first. */
#ifndef GC_SCHEMA_H
#define GC_SCHEMA_H

#include "supervision/canon.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define GC_SUPERVISION_SCHEMA_VERSION "1.0"

/* The datasets of supervision specification 1.0, NULL-terminated. */
extern const char *const gc_supervision_datasets[];
bool gc_supervision_dataset_valid(const char *name);

struct gc_schema_error {
    /* JSON pointer (RFC 6901) of the offending value, relative to what was validated:
     * "/data/location/u"; "" for the root. */
    char pointer[256];
    /* "data/location/u: 61 is above the maximum 60" (lowercase, no final period) */
    char message[320];
};

/* Compiles every embedded schema (once; later calls return at once). Thread-safe. Fails
 * only if an embedded schema uses a keyword the validator does not implement (a build
 * defect: the unit tests catch it). */
int gc_schema_init(struct gc_error *err);

/* Validates instance against the schema called name: a dataset ("asset", …, the dataset's
 * `data` object) or "record" / "batch" (the envelopes). Pointers are relative to instance.
 * Returns 0 or GC_EINVAL with *err filled (err may be NULL); GC_ENOTFOUND for an unknown
 * name. Allocates nothing; safe from any number of threads. */
int gc_schema_validate(const char *name, const json_t *instance, struct gc_schema_error *err);

/* Validates a whole record: the wrapper (record.json), the op/data rule (data is an object
 * for upsert, absent or null for delete) and data against its dataset's schema. Pointers
 * are relative to the record ("/data/location/u"). Returns 0 or GC_EINVAL. */
int gc_schema_validate_record(const json_t *record, struct gc_schema_error *err);

/* The same over an index of canonical text (canon.h): the schema called name against value
 * instance of d, and a whole record at value record of d. */
int gc_schema_validate_cj(const char *name, const struct gc_cjdoc *d, uint32_t instance,
                          struct gc_schema_error *err);
int gc_schema_validate_record_cj(const struct gc_cjdoc *d, uint32_t record,
                                 struct gc_schema_error *err);

/* The embedded text of a schema (not NUL-terminated beyond *len; it is, in fact, followed
 * by a NUL), or NULL for an unknown name. Static storage. */
const char *gc_schema_text(const char *name, size_t *len);

#endif
