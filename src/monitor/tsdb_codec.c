/* The chunk codec: see tsdb_codec.h. */
#include "monitor/tsdb_codec.h"

#include "util/mem.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HDR 4

void gc_bitw_put(struct gc_bitw *w, uint64_t v, int nbits)
{
    if (nbits <= 0)
        return;
    size_t need = (w->nbits + (size_t)nbits + 7) / 8;
    if (need > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        while (cap < need)
            cap *= 2;
        w->buf = gc_realloc(w->buf, cap);
        memset(w->buf + w->cap, 0, cap - w->cap);
        w->cap = cap;
    }
    if (nbits < 64)
        v &= (UINT64_C(1) << nbits) - 1;
    while (nbits > 0) {
        size_t byte = w->nbits >> 3;
        int room = 8 - (int)(w->nbits & 7);
        int take = nbits < room ? nbits : room;
        uint8_t bits = (uint8_t)((v >> (nbits - take)) & ((1u << take) - 1));
        w->buf[byte] |= (uint8_t)(bits << (room - take));
        w->nbits += (size_t)take;
        nbits -= take;
    }
}

void gc_bitw_free(struct gc_bitw *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* the next 64 bits from pos (zeros past the end), without moving */
static inline uint64_t bitr_window(const struct gc_bitr *r)
{
    size_t byte = r->pos >> 3, nbytes = (r->nbits + 7) / 8;
    uint64_t w = 0;
    if (byte + 8 <= nbytes) {
        memcpy(&w, r->buf + byte, 8);
        w = __builtin_bswap64(w);
    } else {
        for (size_t i = 0; i < 8; i++)
            w = (w << 8) | (byte + i < nbytes ? r->buf[byte + i] : 0);
    }
    return w << (r->pos & 7);
}

int gc_bitr_get(struct gc_bitr *r, int nbits, uint64_t *v)
{
    if (nbits <= 0) {
        *v = 0;
        return 0;
    }
    if (r->pos + (size_t)nbits > r->nbits)
        return -1;
    if (nbits > 56) {
        uint64_t hi, lo;
        gc_bitr_get(r, nbits - 32, &hi);
        gc_bitr_get(r, 32, &lo);
        *v = (hi << 32) | lo;
        return 0;
    }
    *v = bitr_window(r) >> (64 - nbits);
    r->pos += (size_t)nbits;
    return 0;
}

static uint64_t zz(int64_t x)
{
    return ((uint64_t)x << 1) ^ (uint64_t)(-(int64_t)((uint64_t)x >> 63));
}

static int64_t unzz(uint64_t z)
{
    return (int64_t)((z >> 1) ^ (uint64_t)(-(int64_t)(z & 1)));
}

/* signed integers by size class (zigzag): 0 | 10+4 | 110+8 | 1110+13 | 11110+20 | 111110+32 |
 * 111111+64 bits */
static const int class_width[6] = {4, 8, 13, 20, 32, 64};

static void put_signed(struct gc_bitw *w, int64_t x)
{
    uint64_t z = zz(x);
    if (z == 0) {
        gc_bitw_put(w, 0, 1);
        return;
    }
    for (int k = 0; k < 5; k++)
        if (z < (UINT64_C(1) << class_width[k])) {
            /* k+1 ones, a zero, then the bits: at most 6 + 32 bits, in one call */
            uint64_t prefix = ((UINT64_C(1) << (k + 1)) - 1) << 1;
            gc_bitw_put(w, (prefix << class_width[k]) | z, k + 2 + class_width[k]);
            return;
        }
    gc_bitw_put(w, 0x3f, 6);
    gc_bitw_put(w, z, 64);
}

static int get_signed(struct gc_bitr *r, int64_t *x)
{
    if (r->pos >= r->nbits)
        return -1;
    /* the leading ones of the next 6 bits */
    uint64_t w = bitr_window(r) >> 58;
    int ones = __builtin_clzll(~(w << 58));
    if (ones > 6)
        ones = 6;
    size_t used = (size_t)(ones < 6 ? ones + 1 : 6);
    if (r->pos + used > r->nbits)
        return -1;
    r->pos += used;
    if (ones == 0) {
        *x = 0;
        return 0;
    }
    uint64_t z;
    if (gc_bitr_get(r, class_width[ones - 1], &z))
        return -1;
    *x = unzz(z);
    return 0;
}

static const double pow10_tab[10] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
#define DEC_MAX 9007199254740992.0 /* 2^53 */

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static double dec_value(int64_t m, int k)
{
    return k ? (double)m / pow10_tab[k] : (double)m;
}

/* Whether v is exactly m / 10^k with |m| <= 2^53; sets *m. */
static bool dec_exact(double v, int k, int64_t *m)
{
    if (!isfinite(v))
        return false;
    double x = v * pow10_tab[k];
    if (!(fabs(x) <= DEC_MAX))
        return false;
    int64_t r = llround(x);
    if (dbits(dec_value(r, k)) != dbits(v))
        return false; /* also tells -0.0 from 0.0 */
    *m = r;
    return true;
}

void gc_chunk_init(struct gc_chunk_enc *e, int ncols)
{
    memset(e, 0, sizeof(*e));
    e->ncols = ncols;
}

void gc_chunk_free(struct gc_chunk_enc *e)
{
    gc_bitw_free(&e->w);
    e->n = 0;
}

static void put_xor(struct gc_bitw *w, struct gc_col_state *c, double v)
{
    uint64_t b = dbits(v);
    uint64_t x = b ^ c->prev_bits;
    c->prev_bits = b;
    if (x == 0) {
        gc_bitw_put(w, 0, 1);
        return;
    }
    int lead = __builtin_clzll(x), trail = __builtin_ctzll(x);
    if (lead > 31)
        lead = 31;
    if (c->lead >= 0 && lead >= c->lead && trail >= c->trail) {
        gc_bitw_put(w, 0x2, 2);
        gc_bitw_put(w, x >> c->trail, 64 - c->lead - c->trail);
        return;
    }
    int sig = 64 - lead - trail;
    gc_bitw_put(w, 0x3, 2);
    gc_bitw_put(w, (uint64_t)lead, 5);
    gc_bitw_put(w, (uint64_t)(sig - 1), 6);
    gc_bitw_put(w, x >> trail, sig);
    c->lead = lead;
    c->trail = trail;
}

static int get_xor(struct gc_bitr *r, struct gc_col_state *c, double *v)
{
    uint64_t b, x;
    if (gc_bitr_get(r, 1, &b))
        return -1;
    if (!b) {
        *v = bitsd(c->prev_bits);
        return 0;
    }
    if (gc_bitr_get(r, 1, &b))
        return -1;
    if (!b) {
        if (c->lead < 0)
            return -1;
        if (gc_bitr_get(r, 64 - c->lead - c->trail, &x))
            return -1;
        c->prev_bits ^= x << c->trail;
    } else {
        uint64_t lead, sig;
        if (gc_bitr_get(r, 5, &lead) || gc_bitr_get(r, 6, &sig))
            return -1;
        sig++;
        if (lead + sig > 64)
            return -1;
        if (gc_bitr_get(r, (int)sig, &x))
            return -1;
        c->lead = (int)lead;
        c->trail = (int)(64 - lead - sig);
        c->prev_bits ^= x << c->trail;
    }
    *v = bitsd(c->prev_bits);
    return 0;
}

/* the first value of a column: chooses its mode */
static void col_start(struct gc_col_state *c, double v, int min_scale, bool force_xor)
{
    memset(c, 0, sizeof(*c));
    c->lead = -1;
    c->mode = GC_COL_XOR;
    if (force_xor)
        return;
    int64_t m;
    for (int k = min_scale; k < 10; k++)
        if (dec_exact(v, k, &m)) {
            c->mode = GC_COL_DEC;
            c->scale = (uint8_t)k;
            return;
        }
}

static void put_value(struct gc_bitw *w, struct gc_col_state *c, double v, bool first)
{
    if (c->mode == GC_COL_XOR) {
        if (first) {
            c->prev_bits = dbits(v);
            gc_bitw_put(w, c->prev_bits, 64);
        } else {
            put_xor(w, c, v);
        }
        return;
    }
    int64_t m;
    dec_exact(v, c->scale, &m); /* checked by the caller */
    if (first) {
        put_signed(w, m);
        c->mprev = m;
        c->mdelta = 0;
        return;
    }
    int64_t d = (m - c->mprev) / (c->g > 1 ? c->g : 1);
    put_signed(w, c->mode == GC_COL_DEC1 ? d : d - c->mdelta);
    c->mdelta = d;
    c->mprev = m;
}

static void put_time(struct gc_chunk_enc *e, int64_t t)
{
    if (e->n == 0) {
        gc_bitw_put(&e->w, (uint64_t)t, 64);
        e->t0 = t;
        e->tdelta = 0;
    } else {
        int64_t d = t - e->tprev;
        put_signed(&e->w, d - e->tdelta);
        e->tdelta = d;
    }
    e->tprev = t;
}

static void reencode(struct gc_chunk_enc *e, int64_t tnew, const double *vnew);

void gc_chunk_append(struct gc_chunk_enc *e, int64_t t, const double *v)
{
    if (e->n == 0) {
        put_time(e, t);
        for (int c = 0; c < e->ncols; c++) {
            col_start(&e->c[c], v[c], 0, false);
            put_value(&e->w, &e->c[c], v[c], true);
        }
        e->n = 1;
        return;
    }
    int64_t m;
    for (int c = 0; c < e->ncols; c++)
        if (e->c[c].mode != GC_COL_XOR && !dec_exact(v[c], e->c[c].scale, &m)) {
            reencode(e, t, v);
            return;
        }
    put_time(e, t);
    for (int c = 0; c < e->ncols; c++)
        put_value(&e->w, &e->c[c], v[c], false);
    e->n++;
}

/* Encodes t[0..n) / v[0..n*ncols) again from scratch with the given column modes. */
static void rebuild(struct gc_chunk_enc *e, const int64_t *t, const double *v, uint32_t n,
                    const struct gc_col_state *modes)
{
    int ncols = e->ncols;
    gc_bitw_free(&e->w);
    e->n = 0;
    put_time(e, t[0]);
    for (int c = 0; c < ncols; c++) {
        e->c[c] = modes[c];
        put_value(&e->w, &e->c[c], v[c], true);
    }
    e->n = 1;
    for (uint32_t i = 1; i < n; i++) {
        put_time(e, t[i]);
        for (int c = 0; c < ncols; c++)
            put_value(&e->w, &e->c[c], v[(size_t)i * (size_t)ncols + (size_t)c], false);
        e->n++;
    }
}

static void decode_self(const struct gc_chunk_enc *e, uint32_t extra, uint32_t *n, int64_t **t,
                        double **v)
{
    size_t len = gc_chunk_size(e);
    uint8_t *blob = gc_malloc(len);
    gc_chunk_serialize(e, blob);
    if (gc_chunk_decode(blob, len, NULL, n, t, v) != 0)
        abort(); /* our own encoding */
    free(blob);
    if (extra) {
        *t = gc_realloc(*t, (*n + extra) * sizeof(**t));
        *v = gc_realloc(*v, (*n + extra) * (size_t)e->ncols * sizeof(**v));
    }
}

/* A DEC column met a value it cannot hold: chooses again from all values. Rare: at most
 * ten times per column and chunk (the scale only grows, then XOR). */
static void reencode(struct gc_chunk_enc *e, int64_t tnew, const double *vnew)
{
    int ncols = e->ncols;
    uint32_t n;
    int64_t *t;
    double *v;
    decode_self(e, 1, &n, &t, &v);
    t[n] = tnew;
    memcpy(v + (size_t)n * (size_t)ncols, vnew, (size_t)ncols * sizeof(*v));
    n++;
    struct gc_col_state modes[GC_CHUNK_MAXCOLS];
    for (int c = 0; c < ncols; c++) {
        int k = 0;
        bool xor = e->c[c].mode == GC_COL_XOR;
        if (!xor) {
            for (k = e->c[c].scale; k < 10; k++) {
                int64_t m;
                uint32_t i;
                for (i = 0; i < n; i++)
                    if (!dec_exact(v[(size_t)i * (size_t)ncols + (size_t)c], k, &m))
                        break;
                if (i == n)
                    break;
            }
            xor = k == 10;
        }
        col_start(&modes[c], v[c], xor ? 0 : k, xor);
        if (!xor) {
            modes[c].mode = e->c[c].mode;
            modes[c].scale = (uint8_t)k;
        }
    }
    rebuild(e, t, v, n, modes);
    free(t);
    free(v);
}

static int signed_bits(int64_t x)
{
    uint64_t z = zz(x);
    if (z == 0)
        return 1;
    for (int k = 0; k < 5; k++)
        if (z < (UINT64_C(1) << class_width[k]))
            return k + 2 + class_width[k];
    return 70;
}

void gc_chunk_optimize(struct gc_chunk_enc *e)
{
    if (e->n < 3)
        return;
    int ncols = e->ncols;
    bool any_dec = false;
    for (int c = 0; c < ncols; c++)
        any_dec |= e->c[c].mode != GC_COL_XOR;
    if (!any_dec)
        return;
    uint32_t n;
    int64_t *t;
    double *v;
    decode_self(e, 0, &n, &t, &v);
    struct gc_col_state modes[GC_CHUNK_MAXCOLS];
    bool change = false;
    for (int c = 0; c < ncols; c++) {
        col_start(&modes[c], v[c], 0, true);
        modes[c].mode = e->c[c].mode;
        modes[c].scale = e->c[c].scale;
        if (e->c[c].mode == GC_COL_XOR)
            continue;
        int64_t prev = 0, pd = 0, m = 0;
        uint64_t c1 = 0, c2 = 0, g = 0;
        for (uint32_t i = 0; i < n; i++) {
            dec_exact(v[(size_t)i * (size_t)ncols + (size_t)c], e->c[c].scale, &m);
            if (i) {
                uint64_t a = (uint64_t)(m > prev ? m - prev : prev - m), b = g;
                while (b) {
                    uint64_t r = a % b;
                    a = b;
                    b = r;
                }
                g = a;
            }
            prev = m;
        }
        if (g < 2 || g > UINT32_MAX)
            g = 1;
        for (uint32_t i = 0; i < n; i++) {
            dec_exact(v[(size_t)i * (size_t)ncols + (size_t)c], e->c[c].scale, &m);
            if (i) {
                int64_t d = (m - prev) / (int64_t)g;
                c1 += (uint64_t)signed_bits(d);
                c2 += (uint64_t)signed_bits(d - pd);
                pd = d;
            }
            prev = m;
        }
        int best = c1 < c2 ? GC_COL_DEC1 : GC_COL_DEC;
        modes[c].g = (int64_t)g;
        if (best != e->c[c].mode || (int64_t)g != (e->c[c].g > 1 ? e->c[c].g : 1)) {
            modes[c].mode = (uint8_t)best;
            change = true;
        }
    }
    if (change)
        rebuild(e, t, v, n, modes);
    free(t);
    free(v);
}

static size_t hdr_size(const struct gc_chunk_enc *e)
{
    size_t n = HDR + 2 * (size_t)e->ncols;
    for (int c = 0; c < e->ncols; c++)
        if (e->c[c].mode != GC_COL_XOR && e->c[c].g > 1)
            n += 4;
    return n;
}

size_t gc_chunk_size(const struct gc_chunk_enc *e)
{
    return hdr_size(e) + (e->w.nbits + 7) / 8;
}

void gc_chunk_serialize(const struct gc_chunk_enc *e, uint8_t *out)
{
    out[0] = 1;
    out[1] = (uint8_t)e->ncols;
    out[2] = (uint8_t)(e->n >> 8);
    out[3] = (uint8_t)(e->n & 0xff);
    size_t off = HDR + 2 * (size_t)e->ncols;
    for (int c = 0; c < e->ncols; c++) {
        bool g = e->c[c].mode != GC_COL_XOR && e->c[c].g > 1;
        out[HDR + 2 * c] = (uint8_t)(e->c[c].mode | (g ? 0x10 : 0));
        out[HDR + 2 * c + 1] = e->c[c].scale;
        if (g) {
            uint32_t x = (uint32_t)e->c[c].g;
            out[off++] = (uint8_t)(x >> 24);
            out[off++] = (uint8_t)(x >> 16);
            out[off++] = (uint8_t)(x >> 8);
            out[off++] = (uint8_t)x;
        }
    }
    size_t nb = (e->w.nbits + 7) / 8;
    if (nb)
        memcpy(out + off, e->w.buf, nb);
}

int gc_chunk_decode(const uint8_t *blob, size_t len, int *ncols_out, uint32_t *n_out,
                    int64_t **t_out, double **v_out)
{
    *t_out = NULL;
    *v_out = NULL;
    if (len < HDR || blob[0] != 1 || blob[1] < 1 || blob[1] > GC_CHUNK_MAXCOLS)
        return -1;
    int ncols = blob[1];
    uint32_t n = ((uint32_t)blob[2] << 8) | blob[3];
    if (len < HDR + 2 * (size_t)ncols || n == 0)
        return -1;
    struct gc_col_state c[GC_CHUNK_MAXCOLS];
    size_t off = HDR + 2 * (size_t)ncols;
    for (int i = 0; i < ncols; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].lead = -1;
        c[i].mode = blob[HDR + 2 * i] & 0x0f;
        c[i].scale = blob[HDR + 2 * i + 1];
        c[i].g = 1;
        if (c[i].mode < GC_COL_XOR || c[i].mode > GC_COL_DEC1 || c[i].scale > 9)
            return -1;
        if (blob[HDR + 2 * i] & 0x10) {
            if (c[i].mode == GC_COL_XOR || off + 4 > len)
                return -1;
            c[i].g = (int64_t)(((uint32_t)blob[off] << 24) | ((uint32_t)blob[off + 1] << 16) |
                               ((uint32_t)blob[off + 2] << 8) | blob[off + 3]);
            off += 4;
            if (c[i].g < 2)
                return -1;
        } else if (blob[HDR + 2 * i] & 0xe0) {
            return -1;
        }
    }
    struct gc_bitr r = {.buf = blob + off, .nbits = (len - off) * 8, .pos = 0};
    int64_t *t = gc_malloc(n * sizeof(*t));
    double *v = gc_malloc((size_t)n * (size_t)ncols * sizeof(*v));
    int64_t tprev = 0, tdelta = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i == 0) {
            uint64_t u;
            if (gc_bitr_get(&r, 64, &u) || u >= (uint64_t)GC_CHUNK_TMAX)
                goto bad;
            tprev = (int64_t)u;
        } else {
            int64_t dod;
            if (get_signed(&r, &dod))
                goto bad;
            if (dod > GC_CHUNK_TMAX || dod < -GC_CHUNK_TMAX)
                goto bad;
            tdelta += dod;
            if (tdelta <= 0 || tdelta > GC_CHUNK_TMAX)
                goto bad;
            tprev += tdelta;
            if (tprev >= GC_CHUNK_TMAX)
                goto bad;
        }
        t[i] = tprev;
        for (int k = 0; k < ncols; k++) {
            struct gc_col_state *s = &c[k];
            double *out = &v[(size_t)i * (size_t)ncols + (size_t)k];
            if (s->mode == GC_COL_XOR) {
                if (i == 0) {
                    if (gc_bitr_get(&r, 64, &s->prev_bits))
                        goto bad;
                    *out = bitsd(s->prev_bits);
                } else if (get_xor(&r, s, out)) {
                    goto bad;
                }
                continue;
            }
            int64_t x;
            if (get_signed(&r, &x))
                goto bad;
            if (i == 0) {
                if (x > (int64_t)DEC_MAX || x < -(int64_t)DEC_MAX)
                    goto bad;
                s->mprev = x;
            } else {
                if (x > 4 * (int64_t)DEC_MAX || x < -4 * (int64_t)DEC_MAX)
                    goto bad;
                if (s->mode == GC_COL_DEC1)
                    s->mdelta = x;
                else
                    s->mdelta += x;
                int64_t lim = 2 * (int64_t)DEC_MAX / s->g;
                if (s->mdelta > lim || s->mdelta < -lim)
                    goto bad;
                s->mprev += s->mdelta * s->g;
                if (s->mprev > (int64_t)DEC_MAX || s->mprev < -(int64_t)DEC_MAX)
                    goto bad;
            }
            *out = dec_value(s->mprev, s->scale);
        }
    }
    if (ncols_out)
        *ncols_out = ncols;
    *n_out = n;
    *t_out = t;
    *v_out = v;
    return 0;
bad:
    free(t);
    free(v);
    return -1;
}
