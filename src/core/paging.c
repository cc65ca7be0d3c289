/* Pagination and JSON helpers shared by the resources. */
#include "core/core.h"

#include "util/timeutil.h"

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
