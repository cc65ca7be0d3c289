/* Table and JSON output for the CLI; table cells are sanitised because names and descriptions
 * come from other users and must not be able to drive the reader's terminal. */
#include "cli/output.h"

#include "util/error.h"
#include "util/mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h" /* last: it redefines library names */

/* Decodes one UTF-8 sequence at s; returns its length (1-4) and sets *cp, or 0 when the
 * bytes are not valid UTF-8 (overlong forms and surrogates included). */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    uint32_t c;
    size_t n;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        c = s[0] & 0x1Fu;
        n = 2;
    } else if ((s[0] & 0xF0) == 0xE0) {
        c = s[0] & 0x0Fu;
        n = 3;
    } else if ((s[0] & 0xF8) == 0xF0) {
        c = s[0] & 0x07u;
        n = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_for_len[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

struct range {
    uint32_t lo, hi;
};

static bool in_ranges(uint32_t c, const struct range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return true;
    return false;
}

/* East Asian Wide and Fullwidth blocks (Unicode EastAsianWidth W/F), coarse but covering
 * Han, kana, Hangul, fullwidth forms and the common emoji. */
static const struct range wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18AFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251}, {0x1F300, 0x1F64F},
    {0x1F680, 0x1F6FF}, {0x1F900, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD},
    {0x30000, 0x3FFFD},
};

static const struct range zero_width[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x1AB0, 0x1AFF},
    {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F}, {0xE0100, 0xE01EF},
};

/* Characters that change how the terminal shows what follows: C0/C1 controls, DEL, and the
 * bidirectional embeddings/overrides/isolates that can make text read differently from what
 * it is ("Trojan Source"). */
static bool is_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

static size_t cp_width(uint32_t c)
{
    if (in_ranges(c, zero_width, sizeof(zero_width) / sizeof(zero_width[0])))
        return 0;
    if (in_ranges(c, wide, sizeof(wide) / sizeof(wide[0])))
        return 2;
    return 1;
}

size_t gc_cli_utf8_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    while (*p) {
        uint32_t c;
        size_t n = utf8_decode(p, &c);
        if (n == 0) {
            w += 1;
            p++;
            continue;
        }
        w += is_control(c) ? 1 : cp_width(c);
        p += n;
    }
    return w;
}

int gc_cli_sanitize(struct gc_buf *b, const char *s, size_t maxw)
{
    static const char ellipsis[] = "\xE2\x80\xA6"; /* U+2026, one cell */
    const unsigned char *p = (const unsigned char *)s;
    size_t total = gc_cli_utf8_width(s);
    bool cut = maxw > 0 && total > maxw;
    size_t budget = cut ? maxw - 1 : (size_t)-1; /* keep one cell for the ellipsis */
    size_t w = 0;
    int rc = 0;

    while (*p) {
        uint32_t c;
        size_t n = utf8_decode(p, &c);
        size_t cw;
        const char *out;
        size_t outlen;
        if (n == 0) {
            out = "?";
            outlen = 1;
            cw = 1;
            n = 1;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            out = " ";
            outlen = 1;
            cw = 1;
        } else if (is_control(c)) {
            out = "?";
            outlen = 1;
            cw = 1;
        } else {
            out = (const char *)p;
            outlen = n;
            cw = cp_width(c);
        }
        if (w + cw > budget)
            break;
        rc = gc_buf_add(b, out, outlen);
        if (rc)
            return rc;
        w += cw;
        p += n;
    }
    if (cut) {
        /* a wide character that did not fit leaves one cell: pad so columns stay aligned */
        if (w < budget)
            rc = gc_buf_adds(b, " ");
        if (!rc)
            rc = gc_buf_adds(b, ellipsis);
    }
    return rc;
}

void gc_cli_print_padded(FILE *f, const char *s, size_t width)
{
    size_t w = gc_cli_utf8_width(s);
    fputs(s, f);
    for (; w < width; w++)
        fputc(' ', f);
}

int gc_cli_value_text(const json_t *v, struct gc_buf *b)
{
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return gc_buf_add(b, json_string_value(v), json_string_length(v));
    case JSON_NULL:
        return gc_buf_adds(b, "-");
    case JSON_TRUE:
        return gc_buf_adds(b, "true");
    case JSON_FALSE:
        return gc_buf_adds(b, "false");
    case JSON_INTEGER:
        return gc_buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        /* 15 digits: whole Unix times with milliseconds, without binary noise (0.9) */
        return gc_buf_addf(b, "%.15g", json_real_value(v));
    case JSON_OBJECT:
    case JSON_ARRAY: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        if (!s)
            return GC_EINVAL;
        rc = gc_buf_adds(b, s);
        free(s);
        return rc;
    }
    }
    return GC_EINVAL;
}

void gc_cli_print_json(FILE *f, const json_t *v)
{
    /* no JSON_ENSURE_ASCII: Chinese names stay readable; jansson keeps the key order */
    json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', f);
}

/* obj[key], where a dotted key "status.up" walks into nested objects; NULL when absent. */
static const json_t *cell_value(const json_t *obj, const char *key)
{
    const char *dot;
    while ((dot = strchr(key, '.')) != NULL && json_is_object(obj)) {
        obj = json_object_getn(obj, key, (size_t)(dot - key));
        key = dot + 1;
    }
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

/* The sanitised table text of obj[key], cut to maxw cells; "-" when absent. */
static char *cell_text(const json_t *obj, const char *key, size_t maxw)
{
    struct gc_buf raw, out;
    gc_buf_init(&raw, GC_BUF_UNLIMITED);
    gc_buf_init(&out, GC_BUF_UNLIMITED);
    const json_t *v = cell_value(obj, key);
    if (!v || gc_cli_value_text(v, &raw) != 0) {
        gc_buf_reset(&raw);
        if (gc_buf_adds(&raw, "-") != 0)
            GC_BUG("unlimited buffer refused 1 byte");
    }
    if (gc_cli_sanitize(&out, gc_buf_str(&raw), maxw) != 0)
        GC_BUG("unlimited buffer refused data");
    gc_buf_release(&raw);
    return gc_buf_steal(&out);
}

void gc_cli_print_table(FILE *f, const struct gc_cli_col *cols, const json_t *items)
{
    size_t ncols = 0;
    while (cols[ncols].header)
        ncols++;
    size_t nrows = json_is_array(items) ? json_array_size(items) : 0;
    char **cells = gc_calloc(nrows * ncols + 1, sizeof(char *));
    size_t *width = gc_calloc(ncols, sizeof(size_t));

    for (size_t c = 0; c < ncols; c++)
        width[c] = gc_cli_utf8_width(cols[c].header);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            char *t = cell_text(json_array_get(items, r), cols[c].key, cols[c].maxw);
            size_t w = gc_cli_utf8_width(t);
            if (w > width[c])
                width[c] = w;
            cells[r * ncols + c] = t;
        }
    }

    for (size_t c = 0; c < ncols; c++) {
        if (c + 1 < ncols) {
            gc_cli_print_padded(f, cols[c].header, width[c] + 2);
        } else {
            fputs(cols[c].header, f); /* no trailing blanks after the last column */
        }
    }
    fputc('\n', f);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *t = cells[r * ncols + c];
            if (c + 1 < ncols)
                gc_cli_print_padded(f, t, width[c] + 2);
            else
                fputs(t, f);
        }
        fputc('\n', f);
    }

    for (size_t i = 0; i < nrows * ncols; i++)
        free(cells[i]);
    free(cells);
    free(width);
}

static bool in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

void gc_cli_print_object(FILE *f, const json_t *obj)
{
    gc_cli_print_object_skip(f, obj, NULL);
}

void gc_cli_print_object_skip(FILE *f, const json_t *obj, const char *const *skip)
{
    const char *key;
    const json_t *v;
    size_t kw = 0;

    if (!json_is_object(obj)) {
        gc_cli_print_json(f, obj);
        return;
    }
    json_object_foreach((json_t *)obj, key, v) {
        if (in_list(key, skip))
            continue;
        size_t w = gc_cli_utf8_width(key);
        if (w > kw)
            kw = w;
    }
    json_object_foreach((json_t *)obj, key, v) {
        if (in_list(key, skip))
            continue;
        struct gc_buf kb;
        gc_buf_init(&kb, GC_BUF_UNLIMITED);
        if (gc_cli_sanitize(&kb, key, 0) != 0)
            GC_BUG("unlimited buffer refused data");
        char *vt = cell_text(obj, key, 0);
        gc_cli_print_padded(f, gc_buf_str(&kb), kw + 2);
        fputs(vt, f);
        fputc('\n', f);
        free(vt);
        gc_buf_release(&kb);
    }
}

int gc_cli_sanitize_text(struct gc_buf *b, const char *s, size_t len)
{
    /* s is NUL-terminated at len, so utf8_decode never reads past it */
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    int rc = 0;
    while (p < end && !rc) {
        uint32_t c;
        size_t n = utf8_decode(p, &c);
        if (n == 0 || (c == 0 && n == 1)) {
            rc = gc_buf_adds(b, "?");
            p++;
        } else if (c == '\r' && p + 1 < end && p[1] == '\n') {
            p++; /* CR LF: the LF alone ends the line */
        } else if (c == '\n' || c == '\t') {
            rc = gc_buf_add(b, (const char *)p, 1);
            p++;
        } else if (is_control(c)) {
            rc = gc_buf_adds(b, "?");
            p += n;
        } else {
            rc = gc_buf_add(b, (const char *)p, n);
            p += n;
        }
    }
    return rc;
}
