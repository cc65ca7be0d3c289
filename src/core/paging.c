/* Pagination and JSON helpers shared by the resources. */
#include "core/core.h"
#include "core/validate.h"
#include "util/buf.h"

#include "util/mem.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>

json_t *gc_json_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    gc_time_format_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

int gc_page_limit(int limit, int *out, struct gc_error *err)
{
    if (limit == 0)
        limit = 50;
    if (limit < 1 || limit > 500)
        return gc_error_set(err, GC_EINVAL, "limit", "limit must be from 1 to 500, got %d",
                            limit);
    *out = limit;
    return 0;
}

int gc_page_cursor_id(const char *cursor, struct gc_error *err)
{
    if (cursor && !gc_id_valid(cursor))
        return gc_error_set(err, GC_EINVAL, "cursor",
                            "cursor is not one returned by this API (use next_cursor as given)");
    return 0;
}

int gc_page_run(const struct gc_ctx *ctx, const char *sql, const struct gc_val *args,
                size_t nargs, int limit, const char *cursor_key, gc_page_row_fn row,
                json_t **items, char **next_cursor, struct gc_error *err)
{
    struct gc_tx *tx = NULL;
    struct gc_rows *r = NULL;
    json_t *arr = json_array();
    *next_cursor = NULL;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (!rc)
        rc = gc_tx_query(tx, sql, args, nargs, &r, err);
    size_t count = 0;
    while (!rc && (rc = gc_rows_next(r, err)) > 0) {
        rc = 0;
        json_t *o = row(r, ctx->who);
        if (!o)
            continue;
        if (count == (size_t)limit) {
            /* a row past the page: the page's last item is where the next one starts */
            json_decref(o);
            json_t *c = json_object_get(json_array_get(arr, count - 1), cursor_key);
            char buf[32];
            if (json_is_integer(c))
                snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(c));
            *next_cursor = gc_strdup(json_is_string(c) ? json_string_value(c) : buf);
            break;
        }
        json_array_append_new(arr, o);
        count++;
    }
    if (rc > 0)
        rc = 0;
    gc_rows_free(r);
    if (tx)
        gc_tx_rollback(tx);
    if (rc) {
        json_decref(arr);
        free(*next_cursor);
        *next_cursor = NULL;
        return rc;
    }
    *items = arr;
    return 0;
}

int gc_load_by_id(struct gc_tx *tx, const char *sql, const char *what, const char *id,
                  gc_row_path_fn row, json_t **out, char *path, struct gc_error *err)
{
    if (!gc_id_valid(id))
        return gc_error_set(err, GC_ENOTFOUND, "id", "%s '%.64s' not found", what, id);
    struct gc_rows *r;
    int rc = gc_tx_query(tx, sql, GC_ARGS(GC_VTXT(id)), &r, err);
    if (rc)
        return rc;
    rc = gc_rows_next(r, err);
    if (rc == 0)
        rc = gc_error_set(err, GC_ENOTFOUND, "id", "%s '%s' not found", what, id);
    if (rc > 0) {
        rc = 0;
        *out = row(r, path);
    }
    gc_rows_free(r);
    return rc;
}

int gc_get_scoped(const struct gc_ctx *ctx, gc_loader_fn load, enum gc_perm perm,
                  const char *what, const char *id, json_t **out, struct gc_error *err)
{
    struct gc_tx *tx;
    int rc = gc_tx_begin(ctx->store, GC_TX_READ, &tx, err);
    if (rc)
        return rc;
    char path[GC_DEPT_PATH_MAX];
    json_t *obj = NULL;
    rc = load(tx, id, &obj, path, err);
    gc_tx_rollback(tx);
    if (!rc)
        rc = gc_authorize(ctx->who, perm, path, what, id, err);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

int gc_list_filtered(const struct gc_ctx *ctx, enum gc_perm perm, const char *select,
                     const char *id_column, const struct gc_list_filter *filters, json_t *values,
                     int limit, const char *cursor, gc_page_row_fn row, json_t **items,
                     char **next_cursor, struct gc_error *err)
{
    int rc = gc_require(ctx->who, perm, err);
    if (!rc)
        rc = gc_page_limit(limit, &limit, err);
    if (!rc)
        rc = gc_page_cursor_id(cursor, err);
    if (rc)
        return rc;
    struct gc_buf sql;
    gc_buf_init(&sql, GC_BUF_UNLIMITED);
    struct gc_val args[9];
    size_t n = 0;
    (void)gc_buf_adds(&sql, select);
    args[n++] = GC_VTXT(cursor ? cursor : "");
    for (size_t i = 0; filters && filters[i].param && n < 9; i++) {
        const char *v = gc_json_str(values, filters[i].param);
        if (v) {
            (void)gc_buf_addf(&sql, " AND %s = ?", filters[i].column);
            args[n++] = GC_VTXT(v);
        }
    }
    (void)gc_buf_addf(&sql, " ORDER BY %s", id_column);
    rc = gc_page_run(ctx, gc_buf_str(&sql), args, n, limit, "id", row, items, next_cursor, err);
    gc_buf_release(&sql);
    return rc;
}
