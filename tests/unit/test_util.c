/* Unit tests of src/util: the capped buffer, RFC 3339 time, UUIDv7 ids, the configuration
 * table and its parsers, listen addresses and the error tables. */
#include "testutil.h"

#include "util/buf.h"
#include "util/config.h"
#include "util/error.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeutil.h"

#include <limits.h>

/* ---- gc_buf ---- */

static void buf_grows_and_stays_terminated(void **state)
{
    (void)state;
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(gc_buf_str(&b), "");

    size_t last_cap = 0;
    int grew = 0;
    for (int i = 0; i < 5000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(gc_buf_add(&b, &c, 1), 0);
        assert_int_equal(b.len, (size_t)i + 1);
        assert_true(b.cap >= b.len + 1);
        assert_int_equal(b.data[b.len], '\0');
        if (b.cap != last_cap) {
            grew++;
            last_cap = b.cap;
        }
    }
    /* geometric growth: a few reallocations, not one per byte */
    assert_in_range(grew, 2, 20);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    assert_int_equal(strlen(gc_buf_str(&b)), 5000);

    assert_int_equal(gc_buf_adds(&b, "-tail"), 0);
    assert_string_equal(b.data + 5000, "-tail");

    gc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(gc_buf_str(&b), "");
    assert_int_equal(gc_buf_adds(&b, "again"), 0);
    assert_string_equal(gc_buf_str(&b), "again");
    gc_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, GC_BUF_UNLIMITED);
}

static void buf_cap_is_enforced_and_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct gc_buf b;
    gc_buf_init(&b, 10);

    /* too big for an empty buffer: nothing allocated */
    assert_int_equal(gc_buf_add(&b, "0123456789A", 11), GC_ETOOBIG);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    assert_int_equal(gc_buf_adds(&b, "hello"), 0);
    assert_int_equal(gc_buf_adds(&b, "world!"), GC_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(gc_buf_str(&b), "hello");

    assert_int_equal(gc_buf_addf(&b, "%s", "abcdef"), GC_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(gc_buf_str(&b), "hello");

    /* exactly up to the cap is allowed, one more byte is not */
    assert_int_equal(gc_buf_addf(&b, "%d", 12345), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(gc_buf_str(&b), "hello12345");
    assert_int_equal(gc_buf_add(&b, "x", 1), GC_ETOOBIG);
    assert_int_equal(gc_buf_addf(&b, "x"), GC_ETOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(gc_buf_str(&b), "hello12345");
    /* an empty append at the cap is fine */
    assert_int_equal(gc_buf_add(&b, "", 0), 0);
    assert_int_equal(b.len, 10);

    /* a huge length must not wrap around the cap check */
    assert_int_equal(gc_buf_add(&b, "x", (size_t)-1), GC_ETOOBIG);
    assert_int_equal(b.len, 10);
    gc_buf_release(&b);
    assert_int_equal(b.max, 10); /* release keeps the cap */
}

static void buf_addf_formats_and_appends(void **state)
{
    (void)state;
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    assert_int_equal(gc_buf_addf(&b, "%s=%d", "n", 42), 0);
    assert_int_equal(gc_buf_addf(&b, ", %05.1f|%x", 3.14159, 255u), 0);
    assert_string_equal(gc_buf_str(&b), "n=42, 003.1|ff");
    assert_int_equal(b.len, strlen("n=42, 003.1|ff"));
    /* longer than the first allocation */
    assert_int_equal(gc_buf_addf(&b, "%0300d", 7), 0);
    assert_int_equal(b.len, 14 + 300);
    assert_int_equal(b.data[b.len - 1], '7');
    assert_int_equal(b.data[14], '0');
    assert_int_equal(b.data[b.len], '\0');
    /* empty format result */
    size_t before = b.len;
    assert_int_equal(gc_buf_addf(&b, "%s", ""), 0);
    assert_int_equal(b.len, before);
    gc_buf_release(&b);

    gc_buf_init(&b, GC_BUF_UNLIMITED);
    assert_int_equal(gc_buf_addf(&b, "%s", ""), 0);
    assert_string_equal(gc_buf_str(&b), "");
    gc_buf_release(&b);
}

static void buf_steal_hands_over_and_resets(void **state)
{
    (void)state;
    struct gc_buf b;
    gc_buf_init(&b, 100);
    assert_int_equal(gc_buf_adds(&b, "owned by the caller"), 0);
    char *s = gc_buf_steal(&b);
    assert_string_equal(s, "owned by the caller");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    free(s);

    /* the buffer is usable again after a steal */
    assert_int_equal(gc_buf_adds(&b, "x"), 0);
    assert_string_equal(gc_buf_str(&b), "x");
    gc_buf_release(&b);

    /* stealing an empty buffer gives "" that must be freed, never NULL */
    gc_buf_init(&b, 100);
    s = gc_buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

static void buf_release_and_reset_accept_null_data(void **state)
{
    (void)state;
    struct gc_buf b;
    gc_buf_init(&b, 5);
    gc_buf_reset(&b);
    assert_null(b.data);
    gc_buf_release(&b);
    gc_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 5);
}

/* ---- time ---- */

static void time_format_known_values(void **state)
{
    (void)state;
    char buf[40];
    gc_time_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    gc_time_format_rfc3339(1700000000123LL, buf, sizeof(buf));
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    gc_time_format_rfc3339(1709210096789LL, buf, sizeof(buf));
    assert_string_equal(buf, "2024-02-29T12:34:56.789Z");
    gc_time_format_rfc3339(951782400000LL, buf, sizeof(buf));
    assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
    gc_time_format_rfc3339(4107542399999LL, buf, sizeof(buf));
    assert_string_equal(buf, "2100-02-28T23:59:59.999Z");
    gc_time_format_rfc3339(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    /* the documented size is enough */
    char small[25];
    gc_time_format_rfc3339(1700000000123LL, small, sizeof(small));
    assert_string_equal(small, "2023-11-14T22:13:20.123Z");
}

static void time_parse_known_values(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01T00:00:00.000Z", 0},
        {"2023-11-14T22:13:20.123Z", 1700000000123LL},
        {"2023-11-14t22:13:20.123z", 1700000000123LL},
        {"2024-02-29T12:34:56.789Z", 1709210096789LL},
        {"2000-02-29T00:00:00Z", 951782400000LL},
        {"2100-02-28T23:59:59.999Z", 4107542399999LL},
        {"2024-03-01T00:00:00Z", 1709251200000LL},
        /* offsets: local time minus the offset is UTC */
        {"2023-11-15T06:13:20.123+08:00", 1700000000123LL},
        {"2023-11-14T16:43:20.123-05:30", 1700000000123LL},
        {"2023-11-14T22:13:20.123+00:00", 1700000000123LL},
        {"2023-11-14T22:13:20.123-00:00", 1700000000123LL},
        {"2024-01-01T00:00:00+08:00", 1704038400000LL},
        /* fractions: fewer digits are tenths / hundredths, more are truncated to ms */
        {"2023-11-14T22:13:20.1Z", 1700000000100LL},
        {"2023-11-14T22:13:20.12Z", 1700000000120LL},
        {"2023-11-14T22:13:20.123456789Z", 1700000000123LL},
        {"2023-11-14T22:13:20.9999Z", 1700000000999LL},
        {"2023-11-14T22:13:20.5+08:00", 1699971200500LL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -42;
        if (gc_time_parse_rfc3339(cases[i].s, &ms) != 0)
            fail_msg("rejected valid time %s", cases[i].s);
        if (ms != cases[i].ms)
            fail_msg("%s parsed as %lld, want %lld", cases[i].s, (long long)ms,
                     (long long)cases[i].ms);
    }
}

static void time_round_trips(void **state)
{
    (void)state;
    /* every day boundary of 1999-2001 and 2099-2101 (leap rules), and spread values */
    int64_t day = 86400000LL;
    int64_t starts[] = {915148800000LL /* 1999-01-01 */, 4070908800000LL /* 2099-01-01 */};
    for (int s = 0; s < 2; s++) {
        for (int64_t d = 0; d < 3 * 366; d++) {
            int64_t t = starts[s] + d * day + (d * 7919) % day;
            char buf[40];
            int64_t back = 0;
            gc_time_format_rfc3339(t, buf, sizeof(buf));
            assert_int_equal(gc_time_parse_rfc3339(buf, &back), 0);
            if (back != t)
                fail_msg("%lld -> %s -> %lld", (long long)t, buf, (long long)back);
        }
    }
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t t = (int64_t)(x % 7258118400000ULL); /* 1970 .. 2200 */
        char buf[40];
        int64_t back = 0;
        gc_time_format_rfc3339(t, buf, sizeof(buf));
        assert_int_equal(gc_time_parse_rfc3339(buf, &back), 0);
        if (back != t)
            fail_msg("%lld -> %s -> %lld", (long long)t, buf, (long long)back);
    }
    /* now */
    int64_t now = gc_now_ms(), back = 0;
    char buf[40];
    gc_time_format_rfc3339(now, buf, sizeof(buf));
    assert_int_equal(gc_time_parse_rfc3339(buf, &back), 0);
    assert_int_equal(back, now);
}

static void time_parse_rejects_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "garbage",
        "2024-01-01",
        "2024-01-01T00:00:00",        /* missing zone */
        "2024-01-01T00:00:00.123",    /* missing zone after fraction */
        "2024-13-01T00:00:00Z",       /* month 13 */
        "2024-00-01T00:00:00Z",       /* month 0 */
        "2024-01-00T00:00:00Z",       /* day 0 */
        "2024-01-32T00:00:00Z",       /* day 32 */
        "2024-01-01T24:00:00Z",       /* hour 24 */
        "2024-01-01T00:60:00Z",       /* minute 60 */
        "2024-01-01T00:00:61Z",       /* second 61 */
        "2024-01-01T00:00:00ZZ",      /* trailing characters */
        "2024-01-01T00:00:00Z ",
        "2024-01-01T00:00:00+08:00x",
        "2024-01-01T00:00:00.Z",      /* fraction without digits */
        "2024-01-01T00:00:00+0800",   /* offset without colon */
        "2024-01-01T00:00:00+08",
        "2024-01-01T00:00:00+08:0",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+08:60",
        "2024-01-01 00:00:00Z",       /* space is not T */
        "2024/01/01T00:00:00Z",
        "24-01-01T00:00:00Z",
        "2024-1-01T00:00:00Z",
        "2024-01-01T0:00:00Z",
        "2024-01-01T00:00:00UTC",
        "2024-01-01T00:00:00 Z",
        "-024-01-01T00:00:00Z",
        "2024-0a-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 12345;
        if (gc_time_parse_rfc3339(bad[i], &ms) == 0)
            fail_msg("accepted invalid time \"%s\" as %lld", bad[i], (long long)ms);
    }
}

/* RFC 3339 5.7: the day must exist in that month and year. */
static void time_parse_rejects_impossible_dates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2023-02-29T00:00:00Z", /* 2023 is not a leap year */
        "2100-02-29T00:00:00Z", /* nor is 2100 */
        "2024-02-30T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-06-31T00:00:00Z",
        "2024-11-31T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 0;
        if (gc_time_parse_rfc3339(bad[i], &ms) == 0) {
            char back[40];
            gc_time_format_rfc3339(ms, back, sizeof(back));
            fail_msg("accepted impossible date \"%s\" (read as %s)", bad[i], back);
        }
    }
    /* while the real leap days are fine */
    int64_t ms = 0;
    assert_int_equal(gc_time_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(gc_time_parse_rfc3339("2000-02-29T00:00:00Z", &ms), 0);
}

static void time_clocks_move(void **state)
{
    (void)state;
    int64_t a = gc_mono_ns();
    int64_t wall = gc_now_ms();
    tu_sleep_ms(5);
    int64_t b = gc_mono_ns();
    assert_true(b - a >= 4000000);
    assert_true(gc_now_ms() >= wall);
    /* after 2020 and before 2200 */
    assert_in_range(wall, 1577836800000LL, 7258118400000LL);
}

/* ---- ids ---- */

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void id_has_uuidv7_shape(void **state)
{
    (void)state;
    for (int n = 0; n < 200; n++) {
        char id[GC_ID_LEN + 1];
        int64_t before = gc_now_ms();
        gc_id_new(id);
        int64_t after = gc_now_ms();
        assert_int_equal(strlen(id), GC_ID_LEN);
        for (int i = 0; i < GC_ID_LEN; i++) {
            char c = id[i];
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(c, '-');
            else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                fail_msg("id %s has '%c' at %d", id, c, i);
        }
        assert_int_equal(id[14], '7');                  /* version 7 */
        assert_non_null(strchr("89ab", id[19]));        /* RFC 4122 variant 10xx */
        assert_true(gc_id_valid(id));
        /* the first 48 bits are the Unix time in milliseconds */
        int64_t ms = 0;
        for (int i = 0; i < 13; i++)
            if (i != 8)
                ms = ms * 16 + hexval(id[i]);
        assert_in_range(ms, before, after);
    }
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void id_unique_over_10k(void **state)
{
    (void)state;
    enum { N = 10000 };
    char(*ids)[GC_ID_LEN + 1] = malloc(sizeof(*ids) * N);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        gc_id_new(ids[i]);
    qsort(ids, N, sizeof(*ids), cmp_ids);
    int dups = 0;
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            dups++;
    free(ids);
    assert_int_equal(dups, 0);
}

static void id_sorts_in_time_order(void **state)
{
    (void)state;
    char prev[GC_ID_LEN + 1], cur[GC_ID_LEN + 1];
    gc_id_new(prev);
    for (int i = 0; i < 20; i++) {
        tu_sleep_ms(2);
        gc_id_new(cur);
        if (strcmp(prev, cur) >= 0)
            fail_msg("id %s made after %s sorts before it", cur, prev);
        memcpy(prev, cur, sizeof(prev));
    }
}

static void id_valid_rejects(void **state)
{
    (void)state;
    assert_true(gc_id_valid("01890a5d-ac96-774b-bcce-b302099a8057"));
    assert_true(gc_id_valid("00000000-0000-0000-0000-000000000000"));
    static const char *const bad[] = {
        "",
        "01890a5d-ac96-774b-bcce-b302099a805",   /* 35 characters */
        "01890a5d-ac96-774b-bcce-b302099a80577", /* 37 characters */
        "01890A5D-AC96-774B-BCCE-B302099A8057",  /* uppercase */
        "01890a5d_ac96-774b-bcce-b302099a8057",  /* wrong separator */
        "01890a5dac96-774b-bcce-b302099a8057-",  /* dash misplaced */
        "01890a5d-ac96-774b-bcce-b302099a805g",  /* not hex */
        "01890a5d-ac96-774b-bcce-b302099a805 ",
        " 01890a5d-ac96-774b-bcce-b302099a805",
        "{1890a5d-ac96-774b-bcce-b302099a8057",
        "../../../../../../../../../etc/passwd",
        "root",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (gc_id_valid(bad[i]))
            fail_msg("gc_id_valid accepted \"%s\"", bad[i]);
    assert_false(gc_id_valid(NULL));
}

static void random_bytes_differ(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    gc_random_bytes(a, sizeof(a));
    gc_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
}

/* ---- configuration ---- */

static void config_defaults(void **state)
{
    (void)state;
    struct gc_config c;
    gc_config_init(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_int_equal(c.connection_limit, 1024);
    assert_int_equal(c.connection_timeout, 60);
    assert_string_equal(c.data_dir, "/var/lib/govcloud");
    assert_string_equal(c.store_driver, "sqlite");
    assert_string_equal(c.log_format, "json");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.token_ttl, 28800);
    assert_int_equal(c.max_failed_logins, 5);
    assert_int_equal(c.lockout_seconds, 900);
    assert_int_equal(c.password_min_length, 10);
    assert_int_equal(c.job_workers, 2);
    assert_false(c.test_job_kinds);
    gc_config_release(&c);
    assert_null(c.listen);
    gc_config_release(&c); /* twice is harmless */
}

static void config_table_is_consistent(void **state)
{
    (void)state;
    struct gc_config c;
    gc_config_init(&c);
    assert_true(gc_config_noptions >= 15);
    for (size_t i = 0; i < gc_config_noptions; i++) {
        const struct gc_config_option *o = &gc_config_options[i];
        char key[128];
        struct gc_error err = {0};
        assert_non_null(o->doc);
        assert_true(o->doc[0] != '\0');
        snprintf(key, sizeof(key), "%s.%s", o->section, o->name);
        if (gc_config_set(&c, key, o->def, &err) != 0)
            fail_msg("default of %s rejected: %s", key, err.msg);
        if (o->type == GC_OPT_INT && (o->min > o->max))
            fail_msg("%s: min > max", key);
        if (o->type == GC_OPT_ENUM && !o->allowed)
            fail_msg("%s: enum without allowed values", key);
        /* a bare name works when it is unique and is refused as ambiguous otherwise */
        int same = 0;
        for (size_t j = 0; j < gc_config_noptions; j++)
            same += strcmp(gc_config_options[j].name, o->name) == 0;
        gc_error_clear(&err);
        int rc = gc_config_set(&c, o->name, o->def, &err);
        if (same == 1 && rc != 0)
            fail_msg("bare option name %s rejected: %s", o->name, err.msg);
        if (same > 1) {
            assert_int_equal(rc, GC_EINVAL);
            assert_contains(err.msg, "ambiguous");
        }
    }
    gc_config_release(&c);
}

static void config_set_valid_values(void **state)
{
    (void)state;
    struct gc_config c;
    struct gc_error err = {0};
    gc_config_init(&c);
    assert_int_equal(gc_config_set(&c, "server.threads", "8", &err), 0);
    assert_int_equal(c.threads, 8);
    assert_int_equal(gc_config_set(&c, "threads", "256", &err), 0);
    assert_int_equal(c.threads, 256);
    assert_int_equal(gc_config_set(&c, "server.max_body_bytes", "1024", &err), 0);
    assert_int_equal(c.max_body_bytes, 1024);
    assert_int_equal(gc_config_set(&c, "workers", "4", &err), 0);
    assert_int_equal(c.job_workers, 4);
    assert_int_equal(gc_config_set(&c, "log.level", "debug", &err), 0);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(gc_config_set(&c, "format", "syslog", &err), 0);
    assert_string_equal(c.log_format, "syslog");
    assert_int_equal(gc_config_set(&c, "store.driver", "sqlite", &err), 0);
    assert_string_equal(c.store_driver, "sqlite");
    assert_int_equal(gc_config_set(&c, "server.listen", "[::1]:9000", &err), 0);
    assert_string_equal(c.listen, "[::1]:9000");
    assert_int_equal(gc_config_set(&c, "data_dir", "/tmp/x", &err), 0);
    assert_string_equal(c.data_dir, "/tmp/x");

    static const char *const yes[] = {"true", "yes", "1", "on"};
    static const char *const no[] = {"false", "no", "0", "off"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(gc_config_set(&c, "jobs.test_job_kinds", yes[i], &err), 0);
        assert_true(c.test_job_kinds);
        assert_int_equal(gc_config_set(&c, "test_job_kinds", no[i], &err), 0);
        assert_false(c.test_job_kinds);
    }
    assert_int_equal(err.code, 0);
    gc_config_release(&c);
}

static void config_set_invalid_values(void **state)
{
    (void)state;
    struct gc_config c;
    gc_config_init(&c);
    static const struct {
        const char *key, *value, *field, *msg_has;
    } cases[] = {
        {"server.threads", "257", "threads", "from 0 to 256"},
        {"server.threads", "-1", "threads", "from 0 to 256"},
        {"server.threads", "abc", "threads", "not an integer"},
        {"server.threads", "8x", "threads", "not an integer"},
        {"server.threads", "", "threads", "not an integer"},
        {"server.threads", "99999999999999999999999", "threads", "not an integer"},
        {"server.max_body_bytes", "1023", "max_body_bytes", "1024"},
        {"auth.max_failed_logins", "0", "max_failed_logins", "from 1 to 100"},
        {"auth.password_min_length", "7", "password_min_length", "from 8 to 128"},
        {"jobs.workers", "65", "workers", "from 1 to 64"},
        {"log.level", "verbose", "level", "debug|info|warn|error"},
        {"log.level", "", "level", "not allowed"},
        {"log.level", "INFO", "level", "not allowed"},
        {"store.driver", "postgres", "driver", "allowed: sqlite"},
        {"jobs.test_job_kinds", "maybe", "test_job_kinds", "not a boolean"},
        {"jobs.test_job_kinds", "", "test_job_kinds", "not a boolean"},
        {"server.listen", "", "listen", "must not be empty"},
        {"server.nope", "1", "server.nope", "unknown option 'server.nope'"},
        {"nope", "1", "nope", "unknown option 'nope'"},
        {"log.listen", "1.2.3.4:5", "log.listen", "unknown option"},
        {"server.", "1", "server.", "unknown option"},
        {"a-section-name-that-is-much-longer-than-sixty-four-characters-in-total.listen", "x",
         "", "unknown option"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gc_error err = {0};
        int rc = gc_config_set(&c, cases[i].key, cases[i].value, &err);
        if (rc != GC_EINVAL)
            fail_msg("%s=%s: rc %d, want GC_EINVAL", cases[i].key, cases[i].value, rc);
        assert_int_equal(err.code, GC_EINVAL);
        if (cases[i].field[0])
            assert_string_equal(err.field, cases[i].field);
        assert_contains(err.msg, cases[i].msg_has);
    }
    /* nothing changed */
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_string_equal(c.log_level, "info");
    assert_string_equal(c.store_driver, "sqlite");
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_false(c.test_job_kinds);
    gc_config_release(&c);
}

static void config_load_reads_ini(void **state)
{
    (void)state;
    char dir[64], path[128];
    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/govcloud.ini", dir);
    tu_write_file(path, "; comment\n"
                        "[server]\n"
                        "listen = 0.0.0.0:9999\n"
                        "threads = 4\n"
                        "\n"
                        "[store]\n"
                        "data_dir = /srv/govcloud\n"
                        "[log]\n"
                        "level = warn\n"
                        "[auth]\n"
                        "max_failed_logins = 3\n"
                        "[jobs]\n"
                        "workers = 3\n"
                        "test_job_kinds = yes\n");
    struct gc_config c;
    struct gc_error err = {0};
    gc_config_init(&c);
    int rc = gc_config_load(&c, path, &err);
    if (rc != 0)
        fail_msg("load failed: %s", err.msg);
    assert_string_equal(c.listen, "0.0.0.0:9999");
    assert_int_equal(c.threads, 4);
    assert_string_equal(c.data_dir, "/srv/govcloud");
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(c.max_failed_logins, 3);
    assert_int_equal(c.job_workers, 3);
    assert_true(c.test_job_kinds);
    /* untouched options keep their defaults */
    assert_int_equal(c.lockout_seconds, 900);
    assert_string_equal(c.log_format, "json");
    gc_config_release(&c);
    tu_rmdir(dir);
}

static void config_load_errors_name_key_and_file(void **state)
{
    (void)state;
    char dir[64], path[128];
    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/bad.ini", dir);
    struct gc_config c;
    struct gc_error err = {0};

    /* unknown key */
    tu_write_file(path, "[server]\nlisten = 127.0.0.1:1\nbogus_key = 1\n");
    gc_config_init(&c);
    assert_int_equal(gc_config_load(&c, path, &err), GC_EINVAL);
    assert_int_equal(err.code, GC_EINVAL);
    assert_string_equal(err.field, "bogus_key");
    assert_contains(err.msg, "bogus_key");
    assert_contains(err.msg, path);
    assert_contains(err.msg, "[server]");
    gc_config_release(&c);

    /* a known key in the wrong section is unknown there */
    tu_write_file(path, "[log]\nworkers = 2\n");
    gc_config_init(&c);
    gc_error_clear(&err);
    assert_int_equal(gc_config_load(&c, path, &err), GC_EINVAL);
    assert_contains(err.msg, "workers");
    assert_contains(err.msg, "[log]");
    gc_config_release(&c);

    /* bad value */
    tu_write_file(path, "[auth]\nmax_failed_logins = 1000\n");
    gc_config_init(&c);
    gc_error_clear(&err);
    assert_int_equal(gc_config_load(&c, path, &err), GC_EINVAL);
    assert_string_equal(err.field, "max_failed_logins");
    assert_contains(err.msg, path);
    assert_contains(err.msg, "max_failed_logins");
    assert_contains(err.msg, "1000");
    assert_int_equal(c.max_failed_logins, 5);
    gc_config_release(&c);

    tu_write_file(path, "[log]\nlevel = loud\n");
    gc_config_init(&c);
    gc_error_clear(&err);
    assert_int_equal(gc_config_load(&c, path, &err), GC_EINVAL);
    assert_contains(err.msg, "loud");
    assert_contains(err.msg, "debug|info|warn|error");
    gc_config_release(&c);

    /* syntax error names the line */
    tu_write_file(path, "[server]\nthreads = 2\n[broken\n");
    gc_config_init(&c);
    gc_error_clear(&err);
    assert_int_equal(gc_config_load(&c, path, &err), GC_EINVAL);
    assert_contains(err.msg, path);
    assert_contains(err.msg, ":3");
    gc_config_release(&c);

    /* missing file */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.ini", dir);
    gc_config_init(&c);
    gc_error_clear(&err);
    assert_int_equal(gc_config_load(&c, missing, &err), GC_EINVAL);
    assert_contains(err.msg, missing);
    gc_config_release(&c);
    tu_rmdir(dir);
}

static void config_reference_lists_every_option(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    gc_config_write_reference(f);
    fclose(f);
    for (size_t i = 0; i < gc_config_noptions; i++) {
        char want[96];
        snprintf(want, sizeof(want), "| `%s` |", gc_config_options[i].name);
        if (!strstr(text, want)) {
            free(text);
            fail_msg("reference misses option %s", gc_config_options[i].name);
        }
    }
    assert_non_null(strstr(text, "### [server]"));
    assert_non_null(strstr(text, "### [jobs]"));
    free(text);
}

/* ---- listen addresses ---- */

static void parse_listen_good(void **state)
{
    (void)state;
    static const struct {
        const char *s, *host;
        int port;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {"0.0.0.0:0", "0.0.0.0", 0},
        {"10.1.2.3:65535", "10.1.2.3", 65535},
        {"[::1]:8080", "::1", 8080},
        {"[::]:443", "::", 443},
        {"[fe80::1]:80", "fe80::1", 80},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[64] = "unchanged";
        int port = -7;
        struct gc_error err = {0};
        if (gc_parse_listen(cases[i].s, host, sizeof(host), &port, &err) != 0)
            fail_msg("%s rejected: %s", cases[i].s, err.msg);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

static void parse_listen_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "127.0.0.1",        "127.0.0.1:",     ":8080",          "127.0.0.1:65536",
        "127.0.0.1:-1",     "127.0.0.1:80x",  "127.0.0.1:http", "::1:8080",
        "[::1]8080",        "[::1]",          "[::1",           "[]:80",
        "[::1]:",           "[::1]:99999",    "",               "a:b:c",
        /* names are not resolved: only numeric addresses */
        "localhost:8080",   "[localhost]:80", "300.1.1.1:80",   "[1.2.3.4]:80",
        "127.0.0.1:+80",    "127.0.0.1: 80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char host[64] = "unchanged";
        int port = -7;
        struct gc_error err = {0};
        int rc = gc_parse_listen(bad[i], host, sizeof(host), &port, &err);
        if (rc != GC_EINVAL)
            fail_msg("\"%s\" accepted (host %s port %d)", bad[i], host, port);
        assert_string_equal(err.field, "listen");
        assert_contains(err.msg, "listen");
        assert_string_equal(host, "unchanged");
        assert_int_equal(port, -7);
    }
    /* the host buffer bounds the address */
    char small[8];
    int port = 0;
    struct gc_error err = {0};
    assert_int_equal(gc_parse_listen("10.0.0.10:80", small, sizeof(small), &port, &err),
                     GC_EINVAL);
    assert_int_equal(gc_parse_listen("1.2.3.4:80", small, sizeof(small), &port, &err), 0);
    assert_string_equal(small, "1.2.3.4");
}

/* ---- errors ---- */

static void error_tables(void **state)
{
    (void)state;
    static const int codes[] = {
#define X(name, val, slug, text) name,
        GC_ERRORS(X)
#undef X
    };
    static const char *const slugs[] = {
#define X(name, val, slug, text) slug,
        GC_ERRORS(X)
#undef X
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    assert_int_equal(n, 15);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] < 0);
        assert_string_equal(gc_error_slug(codes[i]), slugs[i]);
        assert_true(gc_error_title(codes[i])[0] != '\0');
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            if (strcmp(gc_error_slug(codes[i]), gc_error_slug(codes[j])) == 0)
                fail_msg("slug %s used twice", slugs[i]);
        }
        /* slugs go into URIs: lowercase letters and dashes */
        for (const char *p = slugs[i]; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || *p == '-'))
                fail_msg("slug %s has '%c'", slugs[i], *p);
    }
    assert_string_equal(gc_error_slug(GC_ENOTFOUND), "not-found");
    assert_string_equal(gc_error_title(GC_ENOTFOUND), "Not found");
    assert_string_equal(gc_error_slug(GC_ELOCKED), "account-locked");
    assert_string_equal(gc_error_title(GC_ELOCKED), "Account locked");
    assert_string_equal(gc_error_slug(GC_ETOOBIG), "payload-too-large");
    assert_string_equal(gc_error_slug(GC_ERATE), "too-many-requests");
    assert_string_equal(gc_error_title(GC_EINVAL), "Invalid request");
    /* unknown codes */
    assert_string_equal(gc_error_slug(-999), "internal-error");
    assert_string_equal(gc_error_title(12345), "Internal error");
}

static void error_set_fills_record(void **state)
{
    (void)state;
    struct gc_error err;
    memset(&err, 0x5a, sizeof(err));
    int line = __LINE__ + 1;
    int rc = gc_error_set(&err, GC_ECONFLICT, "name", "department '%s' exists (%d)", "x", 3);
    assert_int_equal(rc, GC_ECONFLICT);
    assert_int_equal(err.code, GC_ECONFLICT);
    assert_string_equal(err.field, "name");
    assert_string_equal(err.msg, "department 'x' exists (3)");
    assert_non_null(err.file);
    assert_contains(err.file, "test_util.c");
    assert_int_equal(err.line, line);

    assert_int_equal(gc_error_set(&err, GC_EINVAL, NULL, "no field"), GC_EINVAL);
    assert_string_equal(err.field, "");
    assert_string_equal(err.msg, "no field");

    /* a NULL record is allowed: the code still comes back */
    assert_int_equal(gc_error_set(NULL, GC_EPERM, "f", "ignored %d", 1), GC_EPERM);

    /* long texts are truncated, never overflow */
    char longs[1000];
    memset(longs, 'q', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    gc_error_set(&err, GC_EINVAL, longs, "%s", longs);
    assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);

    gc_error_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.field, "");
    assert_string_equal(err.msg, "");
    assert_int_equal(err.retry_after, 0);
    gc_error_clear(NULL);
}

/* ---- mem and log ---- */

static void mem_and_log_helpers(void **state)
{
    (void)state;
    char *s = gc_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = gc_strdup("");
    assert_string_equal(s, "");
    free(s);
    int *z = gc_calloc(16, sizeof(int));
    for (int i = 0; i < 16; i++)
        assert_int_equal(z[i], 0);
    z = gc_realloc(z, 1024 * sizeof(int));
    free(z);
    free(gc_malloc(0));

    assert_int_equal(gc_log_level_parse("debug"), GC_LOG_DEBUG);
    assert_int_equal(gc_log_level_parse("error"), GC_LOG_ERROR);
    assert_int_equal(gc_log_level_parse("loud"), -1);
    assert_null(gc_log_request_id());
    gc_log_set_request_id("req-1");
    assert_string_equal(gc_log_request_id(), "req-1");
    gc_log_set_request_id(NULL);
    assert_null(gc_log_request_id());
}

static void vnc_listen_values(void **state)
{
    (void)state;
    struct gc_error err = {0};
    static const char *const good[] = {"127.0.0.1", "0.0.0.0", "::", "::1", "10.1.2.3",
                                       "fd00::5", "none"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(gc_vnc_listen_check(good[i], &err), 0);
    static const char *const bad[] = {"", "localhost", "127.0.0.1:5900", "[::1]", "None",
                                      "1.2.3.4 ", "300.1.1.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gc_vnc_listen_check(bad[i], &err), GC_EINVAL);
        assert_string_equal(err.field, "vnc_listen");
    }
    /* the default passes its own check */
    struct gc_config cfg;
    gc_config_init(&cfg);
    assert_string_equal(cfg.vnc_listen, "127.0.0.1");
    assert_int_equal(gc_vnc_listen_check(cfg.vnc_listen, &err), 0);
    gc_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_grows_and_stays_terminated),
        cmocka_unit_test(buf_cap_is_enforced_and_leaves_buffer_unchanged),
        cmocka_unit_test(buf_addf_formats_and_appends),
        cmocka_unit_test(buf_steal_hands_over_and_resets),
        cmocka_unit_test(buf_release_and_reset_accept_null_data),
        cmocka_unit_test(time_format_known_values),
        cmocka_unit_test(time_parse_known_values),
        cmocka_unit_test(time_round_trips),
        cmocka_unit_test(time_parse_rejects_invalid),
        cmocka_unit_test(time_parse_rejects_impossible_dates),
        cmocka_unit_test(time_clocks_move),
        cmocka_unit_test(id_has_uuidv7_shape),
        cmocka_unit_test(id_unique_over_10k),
        cmocka_unit_test(id_sorts_in_time_order),
        cmocka_unit_test(id_valid_rejects),
        cmocka_unit_test(random_bytes_differ),
        cmocka_unit_test(config_defaults),
        cmocka_unit_test(config_table_is_consistent),
        cmocka_unit_test(config_set_valid_values),
        cmocka_unit_test(config_set_invalid_values),
        cmocka_unit_test(config_load_reads_ini),
        cmocka_unit_test(config_load_errors_name_key_and_file),
        cmocka_unit_test(config_reference_lists_every_option),
        cmocka_unit_test(parse_listen_good),
        cmocka_unit_test(parse_listen_bad),
        cmocka_unit_test(vnc_listen_values),
        cmocka_unit_test(error_tables),
        cmocka_unit_test(error_set_fills_record),
        cmocka_unit_test(mem_and_log_helpers),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
