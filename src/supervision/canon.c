/* Canonical JSON: the writer (from jansson values) and the reader (an index over canonical
 * text, with jansson as the fallback for any other JSON). See canon.h. */
#include "supervision/canon.h"

#include "util/mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

static int canon_string(const char *s, size_t n, struct gc_buf *b)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = gc_buf_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (i > run)
            rc = gc_buf_add(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (!rc)
            rc = gc_buf_add(b, esc, elen);
    }
    if (!rc && n > run)
        rc = gc_buf_add(b, s + run, n - run);
    if (!rc)
        rc = gc_buf_add(b, "\"", 1);
    return rc;
}

/* The canonical text of a real into o (at least 44 bytes): printf "%.17g", then ".0"
 * appended when the text is only digits and '-'; the exponent written without '+' and
 * without leading zeros ("1e+20" → "1e20", "1e-05" → "1e-5"). Returns the length, or 0
 * when d is not finite. */
static size_t real_text(double d, char *o)
{
    if (!isfinite(d))
        return 0;
    char t[40];
    int n = snprintf(t, sizeof(t), "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof(t))
        return 0;
    size_t j = 0;
    bool frac_or_exp = false;
    for (int i = 0; i < n; i++) {
        if (t[i] == '.')
            frac_or_exp = true;
        if (t[i] == 'e') {
            frac_or_exp = true;
            o[j++] = 'e';
            i++;
            if (t[i] == '-')
                o[j++] = '-';
            else if (t[i] != '+')
                i--;
            while (i + 1 < n - 1 && t[i + 1] == '0')
                i++;
            continue;
        }
        o[j++] = t[i];
    }
    if (!frac_or_exp) {
        o[j++] = '.';
        o[j++] = '0';
    }
    return j;
}

static int canon_real(double d, struct gc_buf *b)
{
    char o[44];
    size_t n = real_text(d, o);
    return n ? gc_buf_add(b, o, n) : GC_EINVAL;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon(const json_t *v, const char *skip_key, struct gc_buf *b, int depth)
{
    if (depth > GC_CANON_MAX_DEPTH)
        return GC_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        const char *stack[64];
        const char **keys = n <= 64 ? stack : gc_malloc(n * sizeof(char *));
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m) {
            if (!skip_key || strcmp(key, skip_key) != 0)
                keys[k++] = key;
        }
        qsort(keys, k, sizeof(char *), key_cmp);
        int rc = gc_buf_add(b, "{", 1);
        for (size_t i = 0; i < k && !rc; i++) {
            if (i)
                rc = gc_buf_add(b, ",", 1);
            if (!rc)
                rc = canon_string(keys[i], strlen(keys[i]), b);
            if (!rc)
                rc = gc_buf_add(b, ":", 1);
            if (!rc)
                rc = canon(json_object_get(v, keys[i]), NULL, b, depth + 1);
        }
        if (!rc)
            rc = gc_buf_add(b, "}", 1);
        if (keys != stack)
            free(keys);
        return rc;
    }
    case JSON_ARRAY: {
        int rc = gc_buf_add(b, "[", 1);
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && !rc; i++) {
            if (i)
                rc = gc_buf_add(b, ",", 1);
            if (!rc)
                rc = canon(json_array_get(v, i), NULL, b, depth + 1);
        }
        if (!rc)
            rc = gc_buf_add(b, "]", 1);
        return rc;
    }
    case JSON_STRING:
        return canon_string(json_string_value(v), json_string_length(v), b);
    case JSON_INTEGER: {
        char t[24];
        int n = snprintf(t, sizeof(t), "%lld", (long long)json_integer_value(v));
        return gc_buf_add(b, t, (size_t)n);
    }
    case JSON_REAL:
        return canon_real(json_real_value(v), b);
    case JSON_TRUE:
        return gc_buf_add(b, "true", 4);
    case JSON_FALSE:
        return gc_buf_add(b, "false", 5);
    default:
        return gc_buf_add(b, "null", 4);
    }
}

int gc_canonical_json(const json_t *v, const char *skip_key, struct gc_buf *b)
{
    return canon(v, skip_key, b, 0);
}

char *gc_canonical_dumps(const json_t *v)
{
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    if (canon(v, NULL, &b, 0) != 0) {
        gc_buf_release(&b);
        return NULL;
    }
    return gc_buf_steal(&b);
}


/* ---- reading ---- */

struct reader {
    const unsigned char *s; /* the text */
    size_t p, e;            /* position and end */
    struct gc_cjdoc *d;
};

/* A new value at the reader's position; its index. The array may move: use indices. */
static uint32_t value_new(struct reader *r, enum gc_cj_type t)
{
    struct gc_cjdoc *d = r->d;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->v = gc_realloc(d->v, d->cap * sizeof(*d->v));
    }
    struct gc_cj *x = &d->v[d->n];
    memset(x, 0, sizeof(*x));
    x->type = (uint8_t)t;
    x->start = (uint32_t)r->p;
    return (uint32_t)d->n++;
}

static void dec_add(struct gc_cjdoc *d, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (d->declen + n > d->deccap) {
        d->deccap = (d->declen + n) * 2 + 256;
        d->dec = gc_realloc(d->dec, d->deccap);
    }
    memcpy(d->dec + d->declen, p, n);
    d->declen += n;
}

/* The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
 * at most U+10FFFF) of two or more bytes at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A byte that needs no look in a string: printable ASCII but '"' and '\\' (controls, those
 * two and the bytes of multi-byte UTF-8 sequences are checked one by one). */
static inline bool plain_byte(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x60 && c != '"' && c != '\\';
}

/* A string in canonical form: raw UTF-8 but for '"', '\\' and the control characters, which
 * are escaped as canon_string escapes them (U+0000 refused, as jansson refuses it). */
static int read_string(struct reader *r, uint32_t *out)
{
    uint32_t i = value_new(r, GC_CJ_STRING);
    const unsigned char *s = r->s;
    size_t p = r->p + 1, run = p;
    bool esc = false;
    size_t decstart = r->d->declen;
    for (;;) {
        while (p < r->e && plain_byte(s[p]))
            p++;
        if (p >= r->e)
            return GC_EINVAL;
        unsigned char c = s[p];
        if (c == '"')
            break;
        if (c >= 0x80) {
            size_t l = utf8_seq(s + p, r->e - p);
            if (!l)
                return GC_EINVAL;
            p += l;
            continue;
        }
        if (c < 0x20 || p + 1 >= r->e)
            return GC_EINVAL;
        /* an escape */
        unsigned char out_c;
        size_t elen = 2;
        switch (s[p + 1]) {
        case '"':
            out_c = '"';
            break;
        case '\\':
            out_c = '\\';
            break;
        case 'b':
            out_c = '\b';
            break;
        case 'f':
            out_c = '\f';
            break;
        case 'n':
            out_c = '\n';
            break;
        case 'r':
            out_c = '\r';
            break;
        case 't':
            out_c = '\t';
            break;
        case 'u': {
            if (p + 6 > r->e || s[p + 2] != '0' || s[p + 3] != '0')
                return GC_EINVAL;
            int h = hexval(s[p + 4]), l = hexval(s[p + 5]);
            if (h < 0 || h > 1 || l < 0)
                return GC_EINVAL;
            out_c = (unsigned char)(h * 16 + l);
            /* U+0000, and those with a short escape, are not written this way */
            if (out_c == 0 || out_c == '\b' || out_c == '\f' || out_c == '\n' ||
                out_c == '\r' || out_c == '\t')
                return GC_EINVAL;
            elen = 6;
            break;
        }
        default:
            return GC_EINVAL;
        }
        if (!esc)
            esc = true;
        dec_add(r->d, s + run, p - run);
        dec_add(r->d, &out_c, 1);
        p += elen;
        run = p;
    }
    struct gc_cj *x = &r->d->v[i];
    if (esc) {
        dec_add(r->d, s + run, p - run);
        x->decoded = 1;
        x->v.s.off = (uint32_t)decstart;
        x->v.s.len = (uint32_t)(r->d->declen - decstart);
    } else {
        x->v.s.off = (uint32_t)(r->p + 1);
        x->v.s.len = (uint32_t)(p - r->p - 1);
    }
    r->p = p + 1;
    x->end = (uint32_t)r->p;
    x->next = i + 1;
    *out = i;
    return 0;
}

/* A number in canonical form: an integer as "%lld" writes it (int64), or a real exactly as
 * real_text writes it. */
static int read_number(struct reader *r, uint32_t i)
{
    const unsigned char *s = r->s;
    size_t p = r->p, q = p;
    bool real = false;
    while (q < r->e && ((s[q] >= '0' && s[q] <= '9') || s[q] == '-' || s[q] == '.' ||
                        s[q] == 'e' || s[q] == 'E' || s[q] == '+')) {
        if (s[q] == '.' || s[q] == 'e' || s[q] == 'E')
            real = true;
        q++;
    }
    size_t n = q - p;
    struct gc_cj *x = &r->d->v[i];
    if (!real) {
        size_t k = p;
        bool neg = s[k] == '-';
        if (neg)
            k++;
        if (k >= q || (s[k] == '0' && (q - k > 1 || neg)))
            return GC_EINVAL; /* "", "-", leading zeros, "-0" */
        uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (; k < q; k++) {
            if (s[k] < '0' || s[k] > '9')
                return GC_EINVAL;
            unsigned dgt = s[k] - '0';
            if (m > (lim - dgt) / 10)
                return GC_EINVAL; /* beyond int64 */
            m = m * 10 + dgt;
        }
        x->type = GC_CJ_INT;
        x->v.i = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
    } else {
        char t[48], o[44];
        if (n >= sizeof(t))
            return GC_EINVAL;
        memcpy(t, s + p, n);
        t[n] = '\0';
        char *endp;
        errno = 0;
        double v = strtod(t, &endp);
        size_t ol = real_text(v, o);
        if (endp != t + n || !ol || ol != n || memcmp(o, t, n) != 0)
            return GC_EINVAL;
        x->type = GC_CJ_REAL;
        x->v.d = v;
    }
    r->p = q;
    return 0;
}

static int read_value(struct reader *r, int depth, uint32_t *out);

/* Is string a (index) ordered strictly before string b, bytewise? */
static bool key_before(const struct gc_cjdoc *d, uint32_t a, uint32_t b)
{
    size_t la, lb;
    const char *sa = gc_cj_str(d, a, &la), *sb = gc_cj_str(d, b, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);
    return c < 0 || (c == 0 && la < lb);
}

static int read_container(struct reader *r, int depth, bool object, uint32_t i)
{
    const unsigned char *s = r->s;
    char close = object ? '}' : ']';
    r->p++;
    uint32_t count = 0, prev = GC_CJ_NONE;
    if (r->p < r->e && s[r->p] == close) {
        r->p++;
        r->d->v[i].count = 0;
        return 0;
    }
    for (;;) {
        uint32_t k, v;
        if (object) {
            if (r->p >= r->e || s[r->p] != '"' || read_string(r, &k))
                return GC_EINVAL;
            /* sorted and unique */
            if (prev != GC_CJ_NONE && !key_before(r->d, prev, k))
                return GC_EINVAL;
            prev = k;
            if (r->p >= r->e || s[r->p] != ':')
                return GC_EINVAL;
            r->p++;
        }
        int rc = read_value(r, depth + 1, &v);
        if (rc)
            return rc;
        count++;
        if (r->p >= r->e)
            return GC_EINVAL;
        if (s[r->p] == ',') {
            r->p++;
            continue;
        }
        if (s[r->p] != close)
            return GC_EINVAL;
        r->p++;
        break;
    }
    r->d->v[i].count = count;
    return 0;
}

static int read_value(struct reader *r, int depth, uint32_t *out)
{
    if (r->p >= r->e)
        return GC_EINVAL;
    unsigned char c = r->s[r->p];
    if (c == '"')
        return read_string(r, out);
    uint32_t i;
    int rc = 0;
    switch (c) {
    case '{':
    case '[':
        if (depth >= GC_CANON_MAX_DEPTH)
            return GC_EINVAL;
        i = value_new(r, c == '{' ? GC_CJ_OBJECT : GC_CJ_ARRAY);
        rc = read_container(r, depth, c == '{', i);
        break;
    case 't':
    case 'f':
    case 'n': {
        static const struct {
            const char *word;
            size_t len;
            enum gc_cj_type t;
        } lit[] = {{"true", 4, GC_CJ_TRUE}, {"false", 5, GC_CJ_FALSE}, {"null", 4, GC_CJ_NULL}};
        int w = c == 't' ? 0 : c == 'f' ? 1 : 2;
        if (r->e - r->p < lit[w].len || memcmp(r->s + r->p, lit[w].word, lit[w].len) != 0)
            return GC_EINVAL;
        i = value_new(r, lit[w].t);
        r->p += lit[w].len;
        break;
    }
    default:
        if (c != '-' && (c < '0' || c > '9'))
            return GC_EINVAL;
        i = value_new(r, GC_CJ_INT);
        rc = read_number(r, i);
    }
    if (rc)
        return rc;
    r->d->v[i].end = (uint32_t)r->p;
    r->d->v[i].next = (uint32_t)r->d->n;
    *out = i;
    return 0;
}

static void doc_reset(struct gc_cjdoc *d)
{
    d->n = 0;
    d->declen = 0;
    d->text = NULL;
    d->len = 0;
}

int gc_cj_read(struct gc_cjdoc *d, const char *text, size_t len)
{
    doc_reset(d);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                   text[len - 1] == '\t'))
        len--;
    if (len >= UINT32_MAX)
        return GC_ETOOBIG;
    struct reader r = {.s = (const unsigned char *)text, .p = 0, .e = len, .d = d};
    d->text = text; /* keys are compared while reading */
    /* about one value per 14 bytes in supervision records: room at once, no regrowth */
    size_t want = len / 12 + 16;
    if (d->cap < want) {
        free(d->v);
        d->cap = want;
        d->v = gc_malloc(d->cap * sizeof(*d->v));
    }
    uint32_t root;
    int rc = read_value(&r, 0, &root);
    if (rc == 0 && r.p != len)
        rc = GC_EINVAL;
    if (rc) {
        doc_reset(d);
        return rc;
    }
    d->len = len;
    return 0;
}

int gc_cj_from_json(struct gc_cjdoc *d, const json_t *v)
{
    struct gc_buf b;
    gc_buf_init(&b, GC_BUF_UNLIMITED);
    int rc = gc_canonical_json(v, NULL, &b);
    free(d->own);
    d->own = NULL;
    if (rc) {
        gc_buf_release(&b);
        doc_reset(d);
        return rc;
    }
    size_t n = b.len;
    d->own = gc_buf_steal(&b);
    /* fails only for a string holding U+0000, which the reader refuses as jansson does */
    return gc_cj_read(d, d->own, n);
}

int gc_cj_load(struct gc_cjdoc *d, const char *text, size_t len, struct gc_error *err)
{
    int rc = gc_cj_read(d, text, len);
    if (rc != GC_EINVAL)
        return rc ? gc_error_set(err, rc, "", "the text is 4 GiB or more") : 0;
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        return gc_error_set(err, GC_EINVAL, "", "not JSON: line %d column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    rc = gc_cj_from_json(d, v);
    json_decref(v);
    if (rc)
        return gc_error_set(err, GC_EINVAL, "",
                            "cannot be put in canonical form (nested more than %d levels)",
                            GC_CANON_MAX_DEPTH);
    return 0;
}

void gc_cj_release(struct gc_cjdoc *d)
{
    if (!d)
        return;
    free(d->v);
    free(d->dec);
    free(d->own);
    memset(d, 0, sizeof(*d));
}

uint32_t gc_cj_get(const struct gc_cjdoc *d, uint32_t obj, const char *key)
{
    if (obj >= d->n || d->v[obj].type != GC_CJ_OBJECT)
        return GC_CJ_NONE;
    size_t klen = strlen(key);
    uint32_t k = obj + 1;
    for (uint32_t m = 0; m < d->v[obj].count; m++) {
        size_t l;
        const char *s = gc_cj_str(d, k, &l);
        int c = memcmp(s, key, l < klen ? l : klen);
        if (c == 0 && l == klen)
            return k + 1;
        if (c > 0 || (c == 0 && l > klen))
            return GC_CJ_NONE; /* keys are sorted: it would have come by now */
        k = d->v[k + 1].next;
    }
    return GC_CJ_NONE;
}

bool gc_cj_str_eq(const struct gc_cjdoc *d, uint32_t i, const char *s)
{
    if (i >= d->n || d->v[i].type != GC_CJ_STRING)
        return false;
    size_t l;
    const char *t = gc_cj_str(d, i, &l);
    return strlen(s) == l && memcmp(t, s, l) == 0;
}

char *gc_cj_strcpy(const struct gc_cjdoc *d, uint32_t i, char *out, size_t cap)
{
    size_t l = 0;
    const char *t = i < d->n && d->v[i].type == GC_CJ_STRING ? gc_cj_str(d, i, &l) : "";
    if (l >= cap)
        l = cap - 1;
    memcpy(out, t, l);
    out[l] = '\0';
    return out;
}

char *gc_cj_dup(const struct gc_cjdoc *d, uint32_t i)
{
    return gc_strndup(d->text + d->v[i].start, d->v[i].end - d->v[i].start);
}
