/* snnrt_kernels.c: the matrix products behind snnrt_sgemm: own tiled, skinny and sparse
 * kernels, a dispatcher that chooses between them and OpenBLAS, and a per-site report.
 *
 * Why not OpenBLAS for everything: a training step of a spiking network asks for products
 * that a BLAS serves badly. Per time step it multiplies a [B, H] matrix of 0/1 spikes (10 to
 * 25 % ones) by a [H, 10] weight, and back; a dimension of 10 leaves OpenBLAS's packing and
 * 16x... micro-kernels mostly idle, and it multiplies every zero. The input batch of an image
 * set is half zeros too. So each product is cut here into register tiles of R rows x 16V
 * columns (R <= 8, V <= 4: up to 24 zmm accumulators), and each tile sums over a list of k:
 *
 *   dense  k = 0..K-1;
 *   rows   the k where any of the tile's rows of op(A) is non-zero (one list per row group,
 *          the OR of the rows' non-zero masks): zero-column skipping of an input batch;
 *   cols   the k where the tile's columns of op(B)'s row k are not all zero (one list per
 *          column panel): the weight gradient of a sparse input;
 *   event  per row of op(A) its own list of (k, value), 8 rows interleaved, each list padded
 *          to the group's longest with a zero row of B: event-driven accumulation of the rows
 *          of B that spikes select (0/1 values add without multiplying).
 *
 * Every own kind sums each element of C over k in ascending order in one accumulator, with
 * fused multiply-adds; skipping a k only drops exact-zero terms, so all four give the same
 * bits (but for the sign of a zero) and the choice among them, or the thread count, never
 * changes a result. OpenBLAS sums in another order, so the choice blas-or-own is made from the
 * shape (and the CPU) alone.
 *
 * Density is measured per call, in one vectorized pass that turns an operand into 16-bit
 * non-zero masks (one per 16 elements); the lists and every cost estimate come from the
 * masks. A site (a distinct trans_a, trans_b, m, n, k) where an operand's analysis did not pay
 * off several times in a row skips it for a while, then measures again.
 *
 * op(B) is used in place when it is stored row-major (trans_b = 0) and packed (transposed,
 * columns padded to a multiple of 16, a zero row appended) otherwise and for `event`. Work is
 * split over OpenMP threads by output tiles, never over k, when the estimate says it pays.
 *
 * The AVX-512 code is compiled for that target function by function and runs only where the
 * CPU reports it (__builtin_cpu_supports); elsewhere the same kinds run as portable C (the
 * compiler vectorizes it for the runtime's AVX2 baseline) with the same results, and the
 * dispatcher prefers OpenBLAS for dense products.
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SNNRT_X86 1
#else
#define SNNRT_X86 0
#endif

#ifdef _OPENMP
int omp_get_max_threads(void);
int omp_in_parallel(void);
#endif

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { RMAX = 8, VMAX = 4, EV_R = 8, EV_VMAX = 3, EV_BLOCK = 512 };

/* ------------------------------------------------------------------ CPU and settings */

static int cpu_avx512 = -1; /* -1: not asked yet */
static int use_avx512 = 1;

int snnrt_kernel_have_avx512(void) {
    if (cpu_avx512 < 0) {
#if SNNRT_X86
        __builtin_cpu_init();
        cpu_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#else
        cpu_avx512 = 0;
#endif
    }
    return cpu_avx512;
}

void snnrt_kernel_use_avx512(int on) { use_avx512 = on; }

static int avx512(void) { return use_avx512 && snnrt_kernel_have_avx512(); }

static const char *const kind_names[SNNRT_KERNEL_COUNT] = {"blas", "dense", "rows", "cols",
                                                            "event"};

const char *snnrt_kernel_name(int kind) {
    if (kind == SNNRT_KERNEL_AUTO) return "auto";
    return kind >= 0 && kind < SNNRT_KERNEL_COUNT ? kind_names[kind] : NULL;
}

int snnrt_kernel_from_name(const char *name) {
    if (!name) return -2;
    if (!strcmp(name, "auto")) return SNNRT_KERNEL_AUTO;
    for (int i = 0; i < SNNRT_KERNEL_COUNT; i++)
        if (!strcmp(name, kind_names[i])) return i;
    return -2;
}

static _Thread_local int last_kind = SNNRT_KERNEL_AUTO;

int snnrt_kernel_last(void) { return last_kind; }

static int forced = -3; /* -3: read SNNRT_KERNEL at the first call */

void snnrt_kernel_force(int kind) { forced = kind; }

static int forced_kind(void) {
    if (forced == -3) {
        const int k = snnrt_kernel_from_name(getenv("SNNRT_KERNEL"));
        forced = k == -2 ? SNNRT_KERNEL_AUTO : k;
    }
    return forced;
}

static int threads(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------ scratch */

/* Per-thread growable buffers, 64-byte aligned, kept between calls. */
enum { S_BPACK, S_AMASK, S_BMASK, S_LIST, S_LOFF, S_VAL, S_IDENT, S_COUNT };
static _Thread_local struct {
    void *p;
    size_t cap;
} scratch[S_COUNT];

static void *scratch_get(int slot, size_t bytes) {
    if (bytes == 0) bytes = 64;
    if (scratch[slot].cap < bytes) {
        free(scratch[slot].p);
        size_t cap = (bytes + bytes / 4 + 63) & ~(size_t)63;
        scratch[slot].p = aligned_alloc(64, cap);
        scratch[slot].cap = scratch[slot].p ? cap : 0;
        if (!scratch[slot].p) {
            fprintf(stderr, "snnrt_sgemm: out of memory (%zu bytes of kernel scratch)\n", cap);
            abort();
        }
    }
    return scratch[slot].p;
}

void snnrt_kernel_scratch_free(void) {
    for (int i = 0; i < S_COUNT; i++) {
        free(scratch[i].p);
        scratch[i].p = NULL;
        scratch[i].cap = 0;
    }
}

/* ------------------------------------------------------------------ the problem */

typedef struct {
    int ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float *c;
    int64_t ldc;
    int par; /* threads to use */
} gemm;

/* a(i, l) = a[i * ars + l * aks] */
static int64_t a_rs(const gemm *g) { return g->ta ? 1 : g->lda; }
static int64_t a_ks(const gemm *g) { return g->ta ? g->lda : 1; }

static int64_t round16(int64_t x) { return (x + 15) & ~(int64_t)15; }

/* op(B) as [k + 1, npad] row-major, columns n..npad and row k zero. */
static float *pack_b(const gemm *g, int64_t *npad_out) {
    const int64_t np = round16(g->n), n = g->n, k = g->k;
    float *p = scratch_get(S_BPACK, (size_t)((k + 1) * np) * sizeof(float));
    if (!g->tb) {
        for (int64_t l = 0; l < k; l++) {
            memcpy(p + l * np, g->b + l * g->ldb, (size_t)n * sizeof(float));
            for (int64_t j = n; j < np; j++) p[l * np + j] = 0.0f;
        }
    } else {
        /* transpose in 16 x 16 blocks: B[j, l] -> p[l, j] */
        for (int64_t l0 = 0; l0 < k; l0 += 16) {
            const int64_t l1 = l0 + 16 < k ? l0 + 16 : k;
            for (int64_t j0 = 0; j0 < np; j0 += 16) {
                const int64_t j1 = j0 + 16 < n ? j0 + 16 : n;
                for (int64_t l = l0; l < l1; l++) {
                    float *dst = p + l * np + j0;
                    int64_t j = j0;
                    for (; j < j1; j++) dst[j - j0] = g->b[j * g->ldb + l];
                    for (; j < j0 + 16; j++) dst[j - j0] = 0.0f;
                }
            }
        }
    }
    memset(p + k * np, 0, (size_t)np * sizeof(float));
    *npad_out = np;
    return p;
}

/* ------------------------------------------------------------------ non-zero masks */

/* out[r * nch + q] = bit e set iff x[r * ld + 16q + e] != 0 (nch = ceil(cols / 16)).
 * Returns the number of non-zeros. NaN counts as non-zero. */
TGT512 static int64_t nz_masks_512(const float *x, int64_t rows, int64_t cols, int64_t ld,
                                   uint16_t *out) {
    const int64_t nch = (cols + 15) / 16, full = cols / 16;
    const int rem = (int)(cols - full * 16);
    const __mmask16 mrem = (__mmask16)((1u << rem) - 1);
    const __m512 z = _mm512_setzero_ps();
    int64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        uint16_t *o = out + r * nch;
        for (int64_t q = 0; q < full; q++) {
            const __mmask16 mk = _mm512_cmp_ps_mask(_mm512_loadu_ps(xr + 16 * q), z, _CMP_NEQ_UQ);
            o[q] = (uint16_t)mk;
            nnz += __builtin_popcount(mk);
        }
        if (rem) {
            const __mmask16 mk =
                _mm512_mask_cmp_ps_mask(mrem, _mm512_maskz_loadu_ps(mrem, xr + 16 * full), z,
                                        _CMP_NEQ_UQ);
            o[full] = (uint16_t)mk;
            nnz += __builtin_popcount(mk);
        }
    }
    return nnz;
}

static int64_t nz_masks_c(const float *x, int64_t rows, int64_t cols, int64_t ld, uint16_t *out) {
    const int64_t nch = (cols + 15) / 16;
    int64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t q = 0; q < nch; q++) {
            unsigned mk = 0;
            for (int64_t e = 0; e < 16 && 16 * q + e < cols; e++)
                mk |= (unsigned)(x[r * ld + 16 * q + e] != 0.0f) << e;
            out[r * nch + q] = (uint16_t)mk;
            nnz += __builtin_popcount(mk);
        }
    return nnz;
}

static int64_t nz_masks(const float *x, int64_t rows, int64_t cols, int64_t ld, uint16_t *out) {
#if SNNRT_X86
    if (avx512()) return nz_masks_512(x, rows, cols, ld, out);
#endif
    return nz_masks_c(x, rows, cols, ld, out);
}

/* Any bit in [lo, hi) of a mask row. */
static int mask_any(const uint16_t *row, int64_t lo, int64_t hi) {
    while (lo < hi) {
        const int64_t q = lo >> 4, e = lo & 15;
        const int64_t span = (hi - lo) < 16 - e ? (hi - lo) : 16 - e;
        const unsigned sel = (unsigned)(((1u << span) - 1) << e);
        if (row[q] & sel) return 1;
        lo += span;
    }
    return 0;
}

/* A list per group, groups given by their first stored row (rows [start, start + G)): the
 * positions (stored columns, ascending) where any of the group's rows is non-zero.
 * lists has room for ngroups * cols entries; lens[g] gets each length. */
static void lists_or_rows(const uint16_t *mk, int64_t cols, const int64_t *start, int64_t ngroups,
                          int64_t G, int32_t *lists, int64_t *lens) {
    const int64_t nch = (cols + 15) / 16;
    for (int64_t g = 0; g < ngroups; g++) {
        int32_t *l = lists + g * cols;
        int64_t n = 0;
        for (int64_t q = 0; q < nch; q++) {
            unsigned u = 0;
            for (int64_t r = start[g]; r < start[g] + G; r++) u |= mk[r * nch + q];
            while (u) {
                l[n++] = (int32_t)(16 * q + __builtin_ctz(u));
                u &= u - 1;
            }
        }
        lens[g] = n;
    }
}

/* A list per group of stored columns [start, start + G): the stored rows (ascending) that are
 * non-zero somewhere in it. lists has room for ngroups * rows entries. */
static void lists_any_cols(const uint16_t *mk, int64_t rows, int64_t cols, const int64_t *start,
                           int64_t ngroups, int64_t G, int32_t *lists, int64_t *lens) {
    const int64_t nch = (cols + 15) / 16;
    for (int64_t g = 0; g < ngroups; g++) lens[g] = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < ngroups; g++) {
            const int64_t hi = start[g] + G < cols ? start[g] + G : cols;
            if (mask_any(mk + r * nch, start[g], hi)) lists[g * rows + lens[g]++] = (int32_t)r;
        }
}

/* ------------------------------------------------------------------ tiles */

typedef struct {
    const int32_t *kl; /* the k to sum over, ascending; NULL: 0..nk-1 */
    int64_t nk;
    const float *a;    /* a(r, l) = a[r * ars + l * aks] for the tile's rows */
    int64_t ars, aks;
    const float *b;    /* op(B)(l, j) = b[l * bks + j] for the tile's columns */
    int64_t bks;
    float *c;          /* C at the tile's first element */
    int64_t ldc;
    int rows, cols;    /* rows <= RMAX, cols <= 16 * VMAX */
    int skip;          /* the first `skip` rows are computed but not stored */
    float alpha, beta;
} tile_job;

typedef struct {
    const int32_t *idx; /* row r's list at idx + r * ls, len entries (padded with row k) */
    const float *val;   /* its values (padding 0) */
    int64_t ls, len;
    const float *b;     /* packed op(B) at the panel's first column */
    int64_t bks;
    float *c;
    int64_t ldc;
    int rows, cols;     /* rows <= EV_R (the others are padding), cols <= 16 * EV_VMAX */
    float alpha, beta;
} ev_job;

static float store_val(float acc, float c, float alpha, float beta) {
    const float r = alpha == 1.0f ? acc : alpha * acc;
    return beta == 0.0f ? r : beta == 1.0f ? r + c : r + beta * c;
}

/* Portable versions: the same order of operations (fmaf per element, ascending k). */
static void tile_c(const tile_job *t) {
    float acc[RMAX][16 * VMAX];
    memset(acc, 0, sizeof acc);
    for (int64_t q = 0; q < t->nk; q++) {
        const int64_t l = t->kl ? t->kl[q] : q;
        const float *bp = t->b + l * t->bks, *ap = t->a + l * t->aks;
        for (int r = 0; r < t->rows; r++) {
            const float av = ap[r * t->ars];
            for (int j = 0; j < t->cols; j++) acc[r][j] = __builtin_fmaf(av, bp[j], acc[r][j]);
        }
    }
    for (int r = t->skip; r < t->rows; r++)
        for (int j = 0; j < t->cols; j++) {
            float *cp = t->c + r * t->ldc + j;
            *cp = store_val(acc[r][j], t->beta == 0.0f ? 0.0f : *cp, t->alpha, t->beta);
        }
}

static void ev_c(const ev_job *t) {
    float acc[EV_R][16 * EV_VMAX];
    memset(acc, 0, sizeof acc);
    for (int64_t q = 0; q < t->len; q++)
        for (int r = 0; r < EV_R; r++) {
            const float *bp = t->b + t->idx[r * t->ls + q] * t->bks;
            const float av = t->val[r * t->ls + q];
            for (int j = 0; j < t->cols; j++) acc[r][j] = __builtin_fmaf(av, bp[j], acc[r][j]);
        }
    for (int r = 0; r < t->rows; r++)
        for (int j = 0; j < t->cols; j++) {
            float *cp = t->c + r * t->ldc + j;
            *cp = store_val(acc[r][j], t->beta == 0.0f ? 0.0f : *cp, t->alpha, t->beta);
        }
}

#if SNNRT_X86
static __mmask16 last_mask(int cols, int V) {
    const int rem = cols - 16 * (V - 1);
    return rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1);
}

INLINE TGT512 void store512(float *cp, __m512 acc, __mmask16 mk, float alpha, float beta) {
    __m512 r = alpha == 1.0f ? acc : _mm512_mul_ps(acc, _mm512_set1_ps(alpha));
    if (beta != 0.0f) {
        const __m512 cv = _mm512_maskz_loadu_ps(mk, cp);
        r = beta == 1.0f ? _mm512_add_ps(r, cv) : _mm512_fmadd_ps(_mm512_set1_ps(beta), cv, r);
    }
    _mm512_mask_storeu_ps(cp, mk, r);
}

/* The R x 16V register tile; R and V are constants after inlining. */
INLINE TGT512 void tile512(const int R, const int V, const tile_job *t) {
    __m512 acc[RMAX][VMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    const __mmask16 ml = last_mask(t->cols, V);
    const int32_t *kl = t->kl;
    const float *a = t->a, *b = t->b;
    const int64_t ars = t->ars, aks = t->aks, bks = t->bks, nk = t->nk;
    for (int64_t q = 0; q < nk; q++) {
        const int64_t l = kl ? kl[q] : q;
        const float *bp = b + l * bks, *ap = a + l * aks;
        __m512 bv[VMAX];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            bv[v] = v == V - 1 ? _mm512_maskz_loadu_ps(ml, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(ap[r * ars]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r < t->skip) continue;
        float *cp = t->c + r * t->ldc;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            store512(cp + 16 * v, acc[r][v], v == V - 1 ? ml : (__mmask16)0xFFFF, t->alpha, t->beta);
    }
}

/* The event tile: EV_R rows, each over its own list; BIN: values are 1, add the rows. */
INLINE TGT512 void ev512(const int V, const int BIN, const ev_job *t) {
    __m512 acc[EV_R][EV_VMAX];
#pragma GCC unroll 8
    for (int r = 0; r < EV_R; r++)
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    const int32_t *idx = t->idx;
    const float *val = t->val, *b = t->b;
    const int64_t ls = t->ls, bks = t->bks, len = t->len;
    for (int64_t q = 0; q < len; q++) {
#pragma GCC unroll 8
        for (int r = 0; r < EV_R; r++) {
            const float *bp = b + (int64_t)idx[r * ls + q] * bks;
            if (BIN) {
#pragma GCC unroll 3
                for (int v = 0; v < V; v++)
                    acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_loadu_ps(bp + 16 * v));
            } else {
                const __m512 av = _mm512_set1_ps(val[r * ls + q]);
#pragma GCC unroll 3
                for (int v = 0; v < V; v++)
                    acc[r][v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bp + 16 * v), acc[r][v]);
            }
        }
    }
    const __mmask16 ml = last_mask(t->cols, V);
#pragma GCC unroll 8
    for (int r = 0; r < EV_R; r++) {
        if (r >= t->rows) break;
        float *cp = t->c + r * t->ldc;
#pragma GCC unroll 3
        for (int v = 0; v < V; v++)
            store512(cp + 16 * v, acc[r][v], v == V - 1 ? ml : (__mmask16)0xFFFF, t->alpha, t->beta);
    }
}

#define TILE_FN(R, V) \
    static TGT512 void tile512_##R##_##V(const tile_job *t) { tile512(R, V, t); }
#define TILE_ROW(R) TILE_FN(R, 1) TILE_FN(R, 2) TILE_FN(R, 3) TILE_FN(R, 4)
TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6)
TILE_FN(7, 1) TILE_FN(7, 2) TILE_FN(7, 3) TILE_FN(8, 1) TILE_FN(8, 2) TILE_FN(8, 3)
#define TILE_PTRS(R) {tile512_##R##_1, tile512_##R##_2, tile512_##R##_3, tile512_##R##_4}
static void (*const tile512_tab[RMAX][VMAX])(const tile_job *) = {
    TILE_PTRS(1), TILE_PTRS(2), TILE_PTRS(3), TILE_PTRS(4), TILE_PTRS(5), TILE_PTRS(6),
    {tile512_7_1, tile512_7_2, tile512_7_3, NULL}, {tile512_8_1, tile512_8_2, tile512_8_3, NULL}};

#define EV_FN(V, BIN) \
    static TGT512 void ev512_##V##_##BIN(const ev_job *t) { ev512(V, BIN, t); }
EV_FN(1, 0) EV_FN(2, 0) EV_FN(3, 0) EV_FN(1, 1) EV_FN(2, 1) EV_FN(3, 1)
static void (*const ev512_tab[2][EV_VMAX])(const ev_job *) = {
    {ev512_1_0, ev512_2_0, ev512_3_0}, {ev512_1_1, ev512_2_1, ev512_3_1}};

/* The non-zeros of x[0..n) appended at idx/val (positions base + e), at least 16 slack
 * entries after the end. Returns how many; *nonbin |= any value other than 1. */
TGT512 static int64_t compress_row_512(const float *x, int64_t n, const uint16_t *mk, int32_t *idx,
                                       float *val, int *nonbin) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 one = _mm512_set1_ps(1.0f);
    const int64_t nch = (n + 15) / 16;
    int64_t cnt = 0;
    __mmask16 notone = 0;
    for (int64_t q = 0; q < nch; q++) {
        const __mmask16 m = mk[q];
        if (!m) continue;
        const __m512 v = _mm512_maskz_loadu_ps(m, x + 16 * q);
        notone |= _mm512_mask_cmp_ps_mask(m, v, one, _CMP_NEQ_UQ);
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi32(
                                           m, _mm512_add_epi32(iota, _mm512_set1_epi32((int)(16 * q)))));
        _mm512_storeu_ps(val + cnt, _mm512_maskz_compress_ps(m, v));
        cnt += __builtin_popcount(m);
    }
    if (notone) *nonbin = 1;
    return cnt;
}
#endif

static void run_tile(const tile_job *t) {
#if SNNRT_X86
    if (avx512()) {
        const int V = (t->cols + 15) / 16;
        tile512_tab[t->rows - 1][V - 1](t);
        return;
    }
#endif
    tile_c(t);
}

static void run_ev(const ev_job *t, int bin) {
#if SNNRT_X86
    if (avx512()) {
        ev512_tab[bin][(t->cols + 15) / 16 - 1](t);
        return;
    }
#endif
    (void)bin;
    ev_c(t);
}

/* ------------------------------------------------------------------ tiled kinds */

/* Tile shape for the dense/rows/cols kinds: V vectors wide, R rows, balanced over m. */
static void tile_shape(int64_t m, int64_t n, int *R, int *V) {
    int v = (int)((n + 15) / 16);
    if (v > VMAX) v = VMAX;
    const int rmax = v == 4 ? 6 : 8;
    const int64_t groups = (m + rmax - 1) / rmax;
    *V = v;
    *R = (int)((m + groups - 1) / groups);
}

typedef struct {
    gemm g;
    int R, V;
    int64_t ngroups, npanels;
    int64_t *gstart;          /* first row of each row group (the last one may overlap) */
    const float *bp;          /* op(B) at column 0, row stride bks */
    int64_t bks;
    const int32_t *lists;     /* NULL: dense */
    const int64_t *lens;
    int64_t lstride;
    int per_panel;            /* lists per panel (cols) rather than per row group (rows) */
} tiled;

static void tiled_one(const tiled *p, int64_t t) {
    const int64_t pi = t / p->ngroups, gi = t % p->ngroups;
    const int64_t j0 = pi * 16 * p->V, i0 = p->gstart[gi];
    const int64_t li = p->per_panel ? pi : gi;
    tile_job job = {
        .kl = p->lists ? p->lists + li * p->lstride : NULL,
        .nk = p->lists ? p->lens[li] : p->g.k,
        .a = p->g.a + i0 * a_rs(&p->g),
        .ars = a_rs(&p->g),
        .aks = a_ks(&p->g),
        .b = p->bp + j0,
        .bks = p->bks,
        .c = p->g.c + i0 * p->g.ldc + j0,
        .ldc = p->g.ldc,
        .rows = p->R,
        .cols = (int)(p->g.n - j0 < 16 * p->V ? p->g.n - j0 : 16 * p->V),
        .skip = (int)(gi > 0 ? p->gstart[gi - 1] + p->R - i0 : 0),
        .alpha = p->g.alpha,
        .beta = p->g.beta,
    };
    if (job.skip < 0) job.skip = 0;
    if (job.nk == 0) { /* C = beta * C */
        for (int r = job.skip; r < job.rows; r++)
            for (int j = 0; j < job.cols; j++) {
                float *cp = job.c + r * job.ldc + j;
                *cp = job.beta == 0.0f ? 0.0f : job.beta * *cp;
            }
        return;
    }
    run_tile(&job);
}

static void tiled_run(const tiled *p) {
    const int64_t ntiles = p->ngroups * p->npanels;
    const int par = p->g.par > 1 && ntiles > 1 ? p->g.par : 1;
#pragma omp parallel for schedule(static) num_threads(par) if (par > 1)
    for (int64_t t = 0; t < ntiles; t++) tiled_one(p, t);
}

static void tiled_init(tiled *p, const gemm *g) {
    memset(p, 0, sizeof *p);
    p->g = *g;
    tile_shape(g->m, g->n, &p->R, &p->V);
    p->ngroups = (g->m + p->R - 1) / p->R;
    p->npanels = (g->n + 16 * p->V - 1) / (16 * p->V);
    /* gstart[ngroups], then lens (ngroups or npanels) and panel starts (npanels) */
    p->gstart = scratch_get(S_LOFF, (size_t)(2 * p->ngroups + 2 * p->npanels + 8) * sizeof(int64_t));
    for (int64_t i = 0; i < p->ngroups; i++) {
        const int64_t s = i * p->R;
        p->gstart[i] = s + p->R <= g->m ? s : g->m - p->R;
    }
    if (g->tb) {
        p->bp = pack_b(g, &p->bks);
    } else {
        p->bp = g->b;
        p->bks = g->ldb;
    }
}

/* Masks of the stored A ([m, k] if ta = 0, else [k, m]) and of the stored B. */
static uint16_t *masks_a(const gemm *g, int64_t *nnz) {
    const int64_t rows = g->ta ? g->k : g->m, cols = g->ta ? g->m : g->k;
    uint16_t *mk = scratch_get(S_AMASK, (size_t)(rows * ((cols + 15) / 16)) * sizeof(uint16_t));
    *nnz = nz_masks(g->a, rows, cols, g->lda, mk);
    return mk;
}

static uint16_t *masks_b(const gemm *g, int64_t *nnz) {
    const int64_t rows = g->tb ? g->n : g->k, cols = g->tb ? g->k : g->n;
    uint16_t *mk = scratch_get(S_BMASK, (size_t)(rows * ((cols + 15) / 16)) * sizeof(uint16_t));
    *nnz = nz_masks(g->b, rows, cols, g->ldb, mk);
    return mk;
}

/* Lists for `rows`: per row group, the k where op(A) has a non-zero in one of its rows. */
static void rows_lists(tiled *p, const uint16_t *amk) {
    const gemm *g = &p->g;
    int32_t *lists = scratch_get(S_LIST, (size_t)(p->ngroups * g->k) * sizeof(int32_t));
    int64_t *lens = p->gstart + p->ngroups;
    if (!g->ta)
        lists_or_rows(amk, g->k, p->gstart, p->ngroups, p->R, lists, lens);
    else
        lists_any_cols(amk, g->k, g->m, p->gstart, p->ngroups, p->R, lists, lens);
    p->lists = lists;
    p->lens = lens;
    p->lstride = g->k;
    p->per_panel = 0;
}

/* Lists for `cols`: per column panel, the k where op(B)'s row k is non-zero in the panel. */
static void cols_lists(tiled *p, const uint16_t *bmk) {
    const gemm *g = &p->g;
    const int64_t W = 16 * p->V;
    int32_t *lists = scratch_get(S_LIST, (size_t)(p->npanels * g->k) * sizeof(int32_t));
    int64_t *lens = p->gstart + p->ngroups;
    int64_t *pstart = lens + p->npanels;
    for (int64_t i = 0; i < p->npanels; i++) pstart[i] = i * W;
    if (!g->tb)
        lists_any_cols(bmk, g->k, g->n, pstart, p->npanels, W, lists, lens);
    else {
        /* stored B is [n, k]: OR the panel's rows; the last panel may be narrower */
        const int64_t nch = (g->k + 15) / 16;
        for (int64_t pi = 0; pi < p->npanels; pi++) {
            const int64_t hi = pstart[pi] + W < g->n ? pstart[pi] + W : g->n;
            int32_t *l = lists + pi * g->k;
            int64_t cnt = 0;
            for (int64_t q = 0; q < nch; q++) {
                unsigned u = 0;
                for (int64_t r = pstart[pi]; r < hi; r++) u |= bmk[r * nch + q];
                while (u) {
                    l[cnt++] = (int32_t)(16 * q + __builtin_ctz(u));
                    u &= u - 1;
                }
            }
            lens[pi] = cnt;
        }
    }
    p->lists = lists;
    p->lens = lens;
    p->lstride = g->k;
    p->per_panel = 1;
}

/* ------------------------------------------------------------------ event kind */

/* Per row i of op(A) (rows [i0, i0 + nrows)), its non-zeros as (k, value) in ascending k, at
 * idx/val + (i - i0) * ls; lens per row. Returns 1 if every value is 1. */
static int ev_lists(const gemm *g, int64_t i0, int64_t nrows, const uint16_t *amk, int32_t *idx,
                    float *val, int64_t ls, int64_t *lens) {
    int nonbin = 0;
    if (!g->ta) {
        const int64_t nch = (g->k + 15) / 16;
        for (int64_t r = 0; r < nrows; r++) {
            const float *x = g->a + (i0 + r) * g->lda;
            const uint16_t *mk = amk + (i0 + r) * nch;
#if SNNRT_X86
            if (avx512()) {
                lens[r] = compress_row_512(x, g->k, mk, idx + r * ls, val + r * ls, &nonbin);
                continue;
            }
#endif
            int64_t cnt = 0;
            for (int64_t q = 0; q < nch; q++)
                for (unsigned u = mk[q]; u; u &= u - 1) {
                    const int64_t l = 16 * q + __builtin_ctz(u);
                    idx[r * ls + cnt] = (int32_t)l;
                    val[r * ls + cnt] = x[l];
                    nonbin |= x[l] != 1.0f;
                    cnt++;
                }
            lens[r] = cnt;
        }
    } else {
        /* stored A is [k, m]: walk k ascending, append to the rows present */
        const int64_t nch = (g->m + 15) / 16;
        for (int64_t r = 0; r < nrows; r++) lens[r] = 0;
        for (int64_t l = 0; l < g->k; l++) {
            const uint16_t *mk = amk + l * nch;
            const float *x = g->a + l * g->lda;
            for (int64_t i = i0; i < i0 + nrows; i++) {
                if (!(mk[i >> 4] >> (i & 15) & 1)) continue;
                const int64_t r = i - i0;
                idx[r * ls + lens[r]] = (int32_t)l;
                val[r * ls + lens[r]] = x[i];
                nonbin |= x[i] != 1.0f;
                lens[r]++;
            }
        }
    }
    return !nonbin;
}

static int ev_panel_v(int64_t n) {
    const int64_t v = (n + 15) / 16;
    return v > EV_VMAX ? EV_VMAX : (int)v;
}

static void event_run(const gemm *g, const uint16_t *amk_in) {
    int64_t npad, nnz;
    const float *bp = pack_b(g, &npad);
    const uint16_t *amk = amk_in ? amk_in : masks_a(g, &nnz);
    const int64_t ls = g->k + 16; /* list capacity per row, with compress slack */
    const int64_t blk = g->m < EV_BLOCK ? g->m : EV_BLOCK;
    const int64_t ngb = (blk + EV_R - 1) / EV_R; /* groups per block */
    int32_t *idx = scratch_get(S_LIST, (size_t)(ngb * EV_R * ls) * sizeof(int32_t));
    float *val = scratch_get(S_VAL, (size_t)(ngb * EV_R * ls) * sizeof(float));
    int64_t *lens = scratch_get(S_LOFF, (size_t)(ngb * EV_R + ngb) * sizeof(int64_t));
    int64_t *glen = lens + ngb * EV_R;
    const int V = ev_panel_v(g->n);
    const int64_t W = 16 * V, npanels = (g->n + W - 1) / W;
    for (int64_t i0 = 0; i0 < g->m; i0 += blk) {
        const int64_t nrows = g->m - i0 < blk ? g->m - i0 : blk;
        const int bin = ev_lists(g, i0, nrows, amk, idx, val, ls, lens);
        const int64_t ng = (nrows + EV_R - 1) / EV_R;
        /* pad every row of a group to the group's longest list with (k, 0): row k of the
         * packed B is zero, so the padding adds exact zeros */
        for (int64_t gi = 0; gi < ng; gi++) {
            int64_t mx = 0;
            for (int64_t r = gi * EV_R; r < gi * EV_R + EV_R; r++)
                if (r < nrows && lens[r] > mx) mx = lens[r];
            for (int64_t r = gi * EV_R; r < gi * EV_R + EV_R; r++)
                for (int64_t q = r < nrows ? lens[r] : 0; q < mx; q++) {
                    idx[r * ls + q] = (int32_t)g->k;
                    val[r * ls + q] = 0.0f;
                }
            glen[gi] = mx;
        }
        const int64_t ntiles = ng * npanels;
        const int par = g->par > 1 && ntiles > 1 ? g->par : 1;
#pragma omp parallel for schedule(static) num_threads(par) if (par > 1)
        for (int64_t t = 0; t < ntiles; t++) {
            const int64_t pi = t / ng, gi = t % ng, j0 = pi * W;
            const int64_t rows = nrows - gi * EV_R < EV_R ? nrows - gi * EV_R : EV_R;
            ev_job job = {
                .idx = idx + gi * EV_R * ls,
                .val = val + gi * EV_R * ls,
                .ls = ls,
                .len = glen[gi],
                .b = bp + j0,
                .bks = npad,
                .c = g->c + (i0 + gi * EV_R) * g->ldc + j0,
                .ldc = g->ldc,
                .rows = (int)rows,
                .cols = (int)(g->n - j0 < W ? g->n - j0 : W),
                .alpha = g->alpha,
                .beta = g->beta,
            };
            run_ev(&job, bin);
        }
    }
}

/* ------------------------------------------------------------------ running a kind */

static void run_kind(int kind, const gemm *g, const uint16_t *amk, const uint16_t *bmk) {
    int64_t nnz;
    tiled p;
    switch (kind) {
    case SNNRT_KERNEL_BLAS:
        snnrt_blas_sgemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->b, g->ldb,
                         g->beta, g->c, g->ldc);
        return;
    case SNNRT_KERNEL_ROWS:
        tiled_init(&p, g);
        rows_lists(&p, amk ? amk : masks_a(g, &nnz));
        tiled_run(&p);
        return;
    case SNNRT_KERNEL_COLS:
        tiled_init(&p, g);
        cols_lists(&p, bmk ? bmk : masks_b(g, &nnz));
        tiled_run(&p);
        return;
    case SNNRT_KERNEL_EVENT:
        event_run(g, amk);
        return;
    case SNNRT_KERNEL_DENSE:
    default:
        tiled_init(&p, g);
        tiled_run(&p);
        return;
    }
}

static gemm make_gemm(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc) {
    gemm g = {.ta = ta != 0, .tb = tb != 0, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
              .a = a, .lda = lda, .b = b, .ldb = ldb, .c = c, .ldc = ldc, .par = 1};
    return g;
}

void snnrt_kernel_run(int kind, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc) {
    gemm g = make_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    g.par = threads();
    run_kind(kind, &g, NULL, NULL);
}

/* ------------------------------------------------------------------ statistics */

enum { NSITES = 64 };
typedef struct {
    int used;
    int ta, tb;
    int64_t m, n, k;
    int64_t calls, per_kind[SNNRT_KERNEL_COUNT];
    double seconds;
    double density_sum; /* of the operand the choice measured */
    int64_t density_n;
    /* dispatcher memory: analyses of A / B that did not pay off, in a row, and calls left
     * before measuring again */
    int a_miss, b_miss, a_wait, b_wait;
} site;

static site sites[NSITES];
static site site_overflow; /* memory for calls past NSITES distinct sites */
static int stats_on = -1;  /* -1: read SNNRT_KERNEL_REPORT at the first call */

int snnrt_kernel_report_requested(void) {
    const char *e = getenv("SNNRT_KERNEL_REPORT");
    return e && *e && strcmp(e, "0") != 0;
}

void snnrt_kernel_stats_enable(int on) { stats_on = on != 0; }

void snnrt_kernel_stats_reset(void) { memset(sites, 0, sizeof sites); }

static site *site_find(const gemm *g) {
    uint64_t h = (uint64_t)g->m * 1000003u ^ (uint64_t)g->n * 10007u ^ (uint64_t)g->k * 101u ^
                 (uint64_t)(g->ta * 2 + g->tb);
    for (int i = 0; i < NSITES; i++) {
        site *s = &sites[(h + (uint64_t)i) % NSITES];
        if (!s->used) {
            s->used = 1;
            s->ta = g->ta, s->tb = g->tb, s->m = g->m, s->n = g->n, s->k = g->k;
            return s;
        }
        if (s->ta == g->ta && s->tb == g->tb && s->m == g->m && s->n == g->n && s->k == g->k)
            return s;
    }
    return &site_overflow;
}

static int site_cmp(const void *x, const void *y) {
    const site *a = x, *b = y;
    return a->seconds < b->seconds ? 1 : a->seconds > b->seconds ? -1 : 0;
}

void snnrt_kernel_report(FILE *f) {
    site sorted[NSITES];
    int n = 0;
    double total = 0;
    for (int i = 0; i < NSITES; i++)
        if (sites[i].used && sites[i].calls) sorted[n++] = sites[i], total += sites[i].seconds;
    if (!n) return;
    qsort(sorted, (size_t)n, sizeof sorted[0], site_cmp);
    fprintf(f, "snnrt_sgemm kernels (%s, %d thread%s): %.1f ms in all\n",
            avx512() ? "AVX-512" : "portable", threads(), threads() == 1 ? "" : "s",
            total * 1e3);
    fprintf(f, "  %-2s %-2s %6s %6s %6s  %-6s %8s %10s %9s %8s  %s\n", "tA", "tB", "M", "N",
            "K", "kernel", "calls", "total ms", "us/call", "density", "others");
    for (int i = 0; i < n; i++) {
        const site *s = &sorted[i];
        int best = 0;
        for (int k = 1; k < SNNRT_KERNEL_COUNT; k++)
            if (s->per_kind[k] > s->per_kind[best]) best = k;
        char dens[32] = "-", others[128] = "";
        if (s->density_n) snprintf(dens, sizeof dens, "%.3f", s->density_sum / (double)s->density_n);
        size_t used = 0;
        for (int k = 0; k < SNNRT_KERNEL_COUNT; k++)
            if (k != best && s->per_kind[k] && used < sizeof others)
                used += (size_t)snprintf(others + used, sizeof others - used, "%s%s %lld",
                                         used ? ", " : "", kind_names[k],
                                         (long long)s->per_kind[k]);
        fprintf(f, "  %-2d %-2d %6lld %6lld %6lld  %-6s %8lld %10.2f %9.2f %8s  %s\n", s->ta,
                s->tb, (long long)s->m, (long long)s->n, (long long)s->k, kind_names[best],
                (long long)s->calls, s->seconds * 1e3, s->seconds * 1e6 / (double)s->calls, dens,
                others);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ choosing */

/* Estimated cycles of one tile step (one k): FMAs at 2 per cycle, loads and broadcasts at
 * 2 per cycle, plus loop overhead. */
static double step_cost(int R, int V) {
    const double fma = R * V / 2.0, ld = (R + V) / 2.0;
    return (fma > ld ? fma : ld) + 1.0;
}

/* Whether our dense kernel is used rather than OpenBLAS for a dense product of this shape:
 * always with AVX-512 where a dimension is small (OpenBLAS's packing and tile edges dominate),
 * and for the large shapes measured at least as fast (bench/kernels.c). */
static int own_dense(const gemm *g) {
    if (!avx512()) return 0;
    return 1;
}

enum { MISS_LIMIT = 3, MISS_WAIT = 50 };

static int choose(const gemm *g, site *s, const uint16_t **amk, const uint16_t **bmk,
                  double *density) {
    int R, V;
    tile_shape(g->m, g->n, &R, &V);
    const int64_t ngroups = (g->m + R - 1) / R, npanels = (g->n + 16 * V - 1) / (16 * V);
    const double c_step = step_cost(R, V);
    const double dense = (double)ngroups * (double)npanels * (double)g->k * c_step;
    const int own = own_dense(g);
    double best = own ? dense : dense * 1.25; /* blas: about our dense speed, less for skinny */
    int kind = own ? SNNRT_KERNEL_DENSE : SNNRT_KERNEL_BLAS;
    *density = -1;

    /* op(A) sparse: rows or event. Scanning A costs about m k / 16 steps. */
    const double scan_a = (double)g->m * (double)g->k / 16.0 * 1.5;
    if (s->a_wait > 0) {
        s->a_wait--;
    } else if (scan_a < 0.5 * best) {
        int64_t nnz;
        const uint16_t *mk = masks_a(g, &nnz);
        *amk = mk;
        const double dens = (double)nnz / ((double)g->m * (double)g->k);
        *density = dens;
        int won = 0;
        /* rows: union lists per group; estimate from the density of the union of R rows,
         * counted exactly from the masks for ta = 0 (sampled: the first groups) */
        double frac_union = 1.0;
        if (!g->ta) {
            const int64_t nch = (g->k + 15) / 16, gs = ngroups < 16 ? ngroups : 16;
            int64_t cnt = 0;
            for (int64_t gi = 0; gi < gs; gi++) {
                const int64_t r0 = gi * R + R <= g->m ? gi * R : g->m - R;
                for (int64_t q = 0; q < nch; q++) {
                    unsigned u = 0;
                    for (int64_t r = r0; r < r0 + R; r++) u |= mk[r * nch + q];
                    cnt += __builtin_popcount(u);
                }
            }
            frac_union = (double)cnt / ((double)gs * (double)g->k);
        }
        const double rows = scan_a + dense * frac_union + (double)ngroups * (double)g->k / 8.0;
        if (rows < best) best = rows, kind = SNNRT_KERNEL_ROWS, won = 1;
        /* event: per row its own list; EV_R rows x EV_V vectors per step, loads bound;
         * the padding to the longest row of a group adds about a sixth */
        const int ev_v = ev_panel_v(g->n);
        const double ev_panels = (double)((g->n + 16 * ev_v - 1) / (16 * ev_v));
        const double ev_step = (EV_R * ev_v + EV_R + EV_R) / 2.0 + 1.0;
        const double event = scan_a * 2.0 + (double)g->k * (double)g->n / 16.0 +
                             dens * 1.15 * (double)g->k * (double)((g->m + EV_R - 1) / EV_R) *
                                 ev_panels * ev_step;
        if (event < best) best = event, kind = SNNRT_KERNEL_EVENT, won = 1;
        if (!own && kind != SNNRT_KERNEL_BLAS && best > 0.5 * dense) kind = SNNRT_KERNEL_BLAS;
        s->a_miss = won ? 0 : s->a_miss + 1;
        if (s->a_miss >= MISS_LIMIT) s->a_wait = MISS_WAIT, s->a_miss = 0;
    }

    /* op(B) sparse: cols. Scanning B costs about k n / 16 steps. */
    const double scan_b = (double)g->k * (double)g->n / 16.0 * 1.5;
    if (s->b_wait > 0) {
        s->b_wait--;
    } else if (scan_b < 0.5 * best && (own || kind == SNNRT_KERNEL_BLAS)) {
        int64_t nnz;
        const uint16_t *mk = masks_b(g, &nnz);
        *bmk = mk;
        /* fraction of (k, panel) pairs with a non-zero */
        int64_t hit = 0;
        const int64_t W = 16 * V;
        if (!g->tb) {
            const int64_t nch = (g->n + 15) / 16;
            for (int64_t l = 0; l < g->k; l++)
                for (int64_t pi = 0; pi < npanels; pi++)
                    hit += mask_any(mk + l * nch, pi * W, (pi + 1) * W < g->n ? (pi + 1) * W : g->n);
        } else {
            hit = (int64_t)((double)g->k * (double)npanels); /* tb: estimated dense (rare) */
            const double d = (double)nnz / ((double)g->n * (double)g->k);
            if (d < 0.02) hit = (int64_t)((double)hit * d * (double)W);
        }
        const double frac = (double)hit / ((double)g->k * (double)npanels);
        if (*density < 0) *density = (double)nnz / ((double)g->n * (double)g->k);
        const double cols = scan_b + dense * frac + (double)g->k * (double)npanels / 4.0;
        int won = 0;
        if (cols < best && (own || cols < 0.5 * dense)) best = cols, kind = SNNRT_KERNEL_COLS, won = 1;
        s->b_miss = won ? 0 : s->b_miss + 1;
        if (s->b_miss >= MISS_LIMIT) s->b_wait = MISS_WAIT, s->b_miss = 0;
    }
    /* Threads: split over tiles when the estimate is worth a fork (about 20 us). */
    (void)best;
    return kind;
}

void snnrt_kernel_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float beta, float *c, int64_t ldc) {
    if (stats_on < 0) stats_on = snnrt_kernel_report_requested();
    gemm g = make_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    site *s = site_find(&g);
    const double t0 = stats_on ? now_s() : 0;
    const uint16_t *amk = NULL, *bmk = NULL;
    double density = -1;
    int kind = forced_kind();
    if (kind == SNNRT_KERNEL_AUTO) kind = choose(&g, s, &amk, &bmk, &density);
    g.par = threads();
    if (g.par > 1) {
        /* fork only for products worth more than ~30 us on one thread */
        const double work = (double)g.m * (double)g.n * (double)g.k;
        if (kind != SNNRT_KERNEL_BLAS && work < 3e6) g.par = 1;
    }
    run_kind(kind, &g, amk, bmk);
    last_kind = kind;
    if (stats_on) {
        s->seconds += now_s() - t0;
        s->calls++;
        s->per_kind[kind]++;
        if (density >= 0) s->density_sum += density, s->density_n++;
    }
}
