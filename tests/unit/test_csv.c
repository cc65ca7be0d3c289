/* Unit tests of src/util/csv.c (libcsv underneath): quoting, embedded separators, line
 * breaks and quotes, a byte-order mark, CRLF, ragged rows, blank lines, malformed text and
 * the limits; and of the asset import's CSV conversion (gc_asset_csv_rows). */
#include "testutil.h"

#include "core/asset.h"
#include "util/csv.h"

static struct gc_csv *parse_ok(const char *text)
{
    struct gc_csv *c = NULL;
    struct gc_error err = {0};
    int rc = gc_csv_parse(text, strlen(text), 1000, 100, &c, &err);
    if (rc)
        fail_msg("parse failed: %s", err.msg);
    return c;
}

static void assert_row(const struct gc_csv *c, size_t i, size_t n, ...)
{
    assert_true(i < c->nrows);
    assert_int_equal(c->rows[i].nfields, n);
    va_list ap;
    va_start(ap, n);
    for (size_t j = 0; j < n; j++)
        assert_string_equal(c->rows[i].fields[j], va_arg(ap, const char *));
    va_end(ap);
}

static void plain_rows(void **state)
{
    (void)state;
    struct gc_csv *c = parse_ok("kind,name\nserver,a\nrack,b\n");
    assert_int_equal(c->nrows, 3);
    assert_row(c, 0, 2, "kind", "name");
    assert_row(c, 2, 2, "rack", "b");
    gc_csv_free(c);
    /* no final line break */
    c = parse_ok("a,b\n1,2");
    assert_int_equal(c->nrows, 2);
    assert_row(c, 1, 2, "1", "2");
    gc_csv_free(c);
}

static void quoted_fields(void **state)
{
    (void)state;
    struct gc_csv *c =
        parse_ok("a,b,c\n\"x, y\",\"line 1\nline 2\",\"say \"\"hi\"\"\"\n\"\",,\"\"\"\"\n");
    assert_int_equal(c->nrows, 3);
    assert_row(c, 1, 3, "x, y", "line 1\nline 2", "say \"hi\"");
    assert_row(c, 2, 3, "", "", "\"");
    gc_csv_free(c);
}

static void bom_and_crlf(void **state)
{
    (void)state;
    struct gc_csv *c = parse_ok("\xef\xbb\xbfkind,name\r\nserver,\"a\r\nb\"\r\nrack,c\r\n");
    assert_int_equal(c->nrows, 3);
    assert_row(c, 0, 2, "kind", "name"); /* no BOM glued to the first name */
    assert_row(c, 1, 2, "server", "a\r\nb");
    assert_row(c, 2, 2, "rack", "c");
    gc_csv_free(c);
    /* a BOM only counts at the very start */
    c = parse_ok("a\n\xef\xbb\xbf" "b\n");
    assert_row(c, 1, 1, "\xef\xbb\xbf" "b");
    gc_csv_free(c);
}

static void ragged_and_blank_rows(void **state)
{
    (void)state;
    struct gc_csv *c = parse_ok("a,b,c\n1,2\n\n1,2,3,4\n\r\n5,6,7\n");
    assert_int_equal(c->nrows, 4); /* blank lines are not rows */
    assert_row(c, 1, 2, "1", "2");
    assert_row(c, 2, 4, "1", "2", "3", "4");
    assert_row(c, 3, 3, "5", "6", "7");
    gc_csv_free(c);
    c = parse_ok("");
    assert_int_equal(c->nrows, 0);
    gc_csv_free(c);
}

static void spaces_around_unquoted_cells_dropped(void **state)
{
    (void)state;
    struct gc_csv *c = parse_ok("a,b,c\n  x , y\t,\" z \"\n");
    assert_row(c, 1, 3, "x", "y", " z "); /* quoted: kept as written */
    gc_csv_free(c);
}

static void utf8_kept(void **state)
{
    (void)state;
    struct gc_csv *c = parse_ok("名称,国产\n服务器,是\n");
    assert_row(c, 1, 2, "服务器", "是");
    gc_csv_free(c);
}

static void malformed_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a,b\n\"open,1\n",   /* a quote never closed */
        "a,b\n\"x\"y,1\n",   /* text after a closing quote */
        "a,b\nx\"y\",1\n",   /* a quote inside an unquoted field */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gc_csv *c = NULL;
        struct gc_error err = {0};
        assert_int_equal(gc_csv_parse(bad[i], strlen(bad[i]), 1000, 100, &c, &err), GC_EINVAL);
        assert_null(c);
        assert_non_null(strstr(err.msg, "CSV record 2"));
    }
}

static void limits(void **state)
{
    (void)state;
    struct gc_csv *c = NULL;
    struct gc_error err = {0};
    const char *rows = "a\n1\n2\n3\n";
    assert_int_equal(gc_csv_parse(rows, strlen(rows), 3, 100, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "more than 3 CSV records"));
    assert_int_equal(gc_csv_parse(rows, strlen(rows), 4, 100, &c, &err), 0);
    gc_csv_free(c);
    const char *wide = "a,b,c,d\n";
    assert_int_equal(gc_csv_parse(wide, strlen(wide), 10, 3, &c, &err), GC_EINVAL);
    assert_non_null(strstr(err.msg, "more than 3 fields"));
    gc_csv_free(NULL);
}

/* ---- the asset import's conversion ---- */

static void asset_rows_typed(void **state)
{
    (void)state;
    const char *text = "kind,name,location.u,domestic.flag,attributes.owner,mlps_grade\n"
                       "server,s1,12,是,\"Li, Wei\",3\n"
                       "rack,r1,,,,\n";
    json_t *rows = NULL, *errors = json_array();
    struct gc_error err = {0};
    assert_int_equal(gc_asset_csv_rows(text, strlen(text), &rows, errors, &err), 0);
    assert_int_equal(json_array_size(errors), 0);
    assert_int_equal(json_array_size(rows), 2);
    char *s = json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "[{\"attributes\":{\"owner\":\"Li, Wei\"},\"domestic\":{\"flag\":true},"
                           "\"kind\":\"server\",\"location\":{\"u\":12},\"mlps_grade\":3,"
                           "\"name\":\"s1\"},{\"kind\":\"rack\",\"name\":\"r1\"}]");
    free(s);
    json_decref(rows);
    json_decref(errors);
}

static void asset_rows_errors(void **state)
{
    (void)state;
    const char *text = "kind,name,location.u,domestic.flag\n"
                       "server,s1,twelve,true\n"
                       "server,s2\n"
                       "server,s3,1,perhaps\n";
    json_t *rows = NULL, *errors = json_array();
    struct gc_error err = {0};
    assert_int_equal(gc_asset_csv_rows(text, strlen(text), &rows, errors, &err), 0);
    assert_int_equal(json_array_size(errors), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "detail")),
                        "row 1, field location.u: 'twelve' is not an integer");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "detail")),
                        "row 2: has 2 fields, the header has 4");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 2), "field")),
                        "domestic.flag");
    assert_true(json_is_null(json_array_get(rows, 1)));
    json_decref(rows);
    json_decref(errors);
    /* a bad header: no rows at all */
    text = "kind,name,colour\nserver,s,red\n";
    errors = json_array();
    assert_int_equal(gc_asset_csv_rows(text, strlen(text), &rows, errors, &err), 0);
    assert_int_equal(json_array_size(rows), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "detail")),
                        "header, column 3: unknown field 'colour' (nested fields are dotted: "
                        "location.rack, domestic.flag, attributes.<name>)");
    json_decref(rows);
    json_decref(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_rows),       cmocka_unit_test(quoted_fields),
        cmocka_unit_test(bom_and_crlf),     cmocka_unit_test(ragged_and_blank_rows),
        cmocka_unit_test(utf8_kept),        cmocka_unit_test(malformed_text),
        cmocka_unit_test(limits),           cmocka_unit_test(asset_rows_typed),
        cmocka_unit_test(asset_rows_errors),
        cmocka_unit_test(spaces_around_unquoted_cells_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
