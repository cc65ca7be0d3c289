/* The chunk codec of the time-series store: a bit writer and reader, and the encoding of
 * one chunk of a series — timestamps as delta-of-delta, each value column either as
 * delta-of-delta of scaled decimals (DEC: values that are exactly m / 10^k, k <= 9, which
 * is what counters, byte and page gauges and most collected figures are) or as Gorilla XOR
 * of the IEEE bits (anything else: fractions, NaN, ±Inf). Lossless: decode(encode(x)) is
 * bit-identical. Written here: Debian packages no Gorilla library.
 *
 * Blob layout: byte 0 format (1), byte 1 ncols, bytes 2-3 count (big-endian), then per
 * column mode (1 XOR, 2 DEC delta-of-delta, 3 DEC delta; +0x10 when the deltas are
 * stored divided by a common factor g) and scale k, then the factors g (4 bytes each), then the bit stream (big-endian bit order). */
#ifndef GC_TSDB_CODEC_H
#define GC_TSDB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define GC_CHUNK_MAXCOLS 4
#define GC_CHUNK_MAXN 65535
/* Timestamps the codec accepts: [0, 2^50) milliseconds (till year 37648). */
#define GC_CHUNK_TMAX (INT64_C(1) << 50)

struct gc_bitw {
    uint8_t *buf;
    size_t cap;   /* bytes */
    size_t nbits;
};

void gc_bitw_put(struct gc_bitw *w, uint64_t v, int nbits);
void gc_bitw_free(struct gc_bitw *w);

struct gc_bitr {
    const uint8_t *buf;
    size_t nbits;
    size_t pos;
};

/* 0, or -1 when the stream ends first. */
int gc_bitr_get(struct gc_bitr *r, int nbits, uint64_t *v);

/* DEC columns store delta-of-deltas (counters) or deltas (gauges), whichever is smaller for
 * the chunk (chosen by gc_chunk_optimize). */
enum { GC_COL_XOR = 1, GC_COL_DEC = 2, GC_COL_DEC1 = 3 };

struct gc_col_state {
    uint8_t mode, scale;
    uint64_t prev_bits; /* XOR */
    int lead, trail;    /* XOR window; lead < 0 when none */
    int64_t mprev, mdelta; /* DEC */
    int64_t g;             /* DEC: every delta is a multiple of g (0 or 1: none) */
};

/* An open chunk: appended to sample by sample, serialised at any time. */
struct gc_chunk_enc {
    struct gc_bitw w;
    int ncols;
    uint32_t n;
    int64_t t0, tprev, tdelta;
    struct gc_col_state c[GC_CHUNK_MAXCOLS];
};

void gc_chunk_init(struct gc_chunk_enc *e, int ncols);
void gc_chunk_free(struct gc_chunk_enc *e);
/* Appends a sample with ncols values. t must be greater than the previous one and in
 * [0, GC_CHUNK_TMAX); n below GC_CHUNK_MAXN (the caller checks both). */
void gc_chunk_append(struct gc_chunk_enc *e, int64_t t, const double *v);
/* Re-encodes a finished chunk with the cheaper of delta and delta-of-delta per DEC column. */
void gc_chunk_optimize(struct gc_chunk_enc *e);
/* Bytes of the serialised chunk. */
size_t gc_chunk_size(const struct gc_chunk_enc *e);
/* Serialises into out (gc_chunk_size bytes). */
void gc_chunk_serialize(const struct gc_chunk_enc *e, uint8_t *out);

/* Decodes a blob: *n samples; t[i], v[i * ncols + c]. Arrays are malloc'd (free them);
 * ncols_out may be NULL. 0, or -1 when the blob is corrupt. */
int gc_chunk_decode(const uint8_t *blob, size_t len, int *ncols_out, uint32_t *n, int64_t **t,
                    double **v);

#endif
