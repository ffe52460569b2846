/* snnrt_kernels.c: the matrix products behind snnrt_sgemm: own tiled, skinny and sparse
 * kernels, a dispatcher that chooses between them and OpenBLAS, and a per-site report.
 *
 * Why not OpenBLAS for everything: a training step of a spiking network asks for products
 * that a BLAS serves badly. Per time step it multiplies a [B, H] matrix of 0/1 spikes (10 to
 * 25 % ones) by a [H, 10] weight, and back; with a dimension of 10 OpenBLAS spends its time
 * packing operands for register tiles it mostly leaves idle, and it multiplies every zero. The
 * input batch of an image set is half zeros too. So each product is cut here into register
 * tiles of R rows x 16V columns (R <= 8, V <= 4: up to 24 zmm accumulators), and each tile
 * sums over a list of k:
 *
 *   dense  k = 0..K-1;
 *   rows   the k where any of the tile's rows of op(A) is non-zero (one list per row group,
 *          the union of the rows' non-zeros): zero-column skipping of an input batch. With
 *          op(A) stored row-major the groups are made greedily (group_items): rows in order of
 *          their non-zero count, each group seeded with the sparsest unused row and filled with
 *          the rows (among the next 64) that add fewest k to its union. On a Fashion-MNIST
 *          batch (half the pixels 0) groups of 6 keep 0.63 of the dense work, where count
 *          order alone kept 0.77: x W1^T 128 x 1000 x 784 on one thread 1063 -> 977 us
 *          (dense 1260), inside the trainer about 9 % less a call (bench/RESULTS.md);
 *   cols   the k where the tile's columns of op(B)'s row k are not all zero (one list per
 *          column panel): the weight gradient of a sparse input;
 *   event  per row of op(A) its own list of (k, value), 8 rows interleaved, each list padded
 *          to the group's longest with a zero row of B: event-driven accumulation of the rows
 *          of B that spikes select (0/1 values add without multiplying);
 *   groups the cols kind's product (op(A) = A^T, B sparse) made transposed, with a list per
 *          group of 4 columns of C instead of per panel of 64: on a Fashion-MNIST batch 0.60
 *          of the work kept instead of 0.875 (see "groups kind" below).
 *
 * Two more kinds serve the per-time-step products of a 10-wide output layer, where a tile of
 * few steps or few columns spends its time on setup and on loads rather than on FMAs (on this
 * host 512-bit loads, not FMAs, bound the tiles: measured, bench/RESULTS.md "Layer-2 kernels"):
 *
 *   shortk k <= 16 (dY W: [B, 10] x [10, H]): rows of C whole, two at a time, op(A)'s 2k
 *          values broadcast into registers once and op(B)'s k rows loaded once per 16 columns
 *          for both rows (one load per two FMAs);
 *   narrow n <= 12 (S W^T: [B, H] x [H, 10]): C computed transposed, 32 rows per pass with the
 *          rows in the lanes (every lane used, where a tile uses 10 of 16), op(A)'s 16 x 16
 *          blocks transposed through a small buffer, one broadcast of b(l, j) per 32 rows.
 *
 * Tried and left out (measured): a `scatter` kind for dW = dY^T S (each spike adds dY's row
 * into a transposed accumulator, then one transpose) ran 2.5x slower than the dense tiles at
 * density 0.15: compressing the spike rows (vpcompressd, ~3 cycles per 16 elements even after
 * the rework below) and a read-modify-write per spike cost more than the 10 FMAs per 16 columns
 * they save. The event kind on S W^T loses to narrow inside a training step for the same reason.
 * Sharing packed panels of W1^T between the trainer's two row blocks (one block packs a panel,
 * the other reads it) made fc1 slower (555 -> 715 us a block): the reader's tiles then read
 * lines dirty in the other core's cache, and each core pulls all of W1 through its L2 anyway.
 *
 * Every own kind sums each element of C over k in ascending order in one accumulator, with
 * fused multiply-adds; skipping a k only drops exact-zero terms, so all of them give the same
 * bits (but for the sign of a zero), and neither the choice among them nor the thread count
 * changes a result. OpenBLAS sums in another order; with AVX-512 the own kinds serve every
 * product (they measured faster on every shape of a training step, bench/RESULTS.md), so
 * blas-or-own depends on the CPU alone; without AVX-512, OpenBLAS serves dense products and
 * an own (portable) kind only one that skips most of the work.
 *
 * Choosing: a sample of 32 rows of each operand gives the density and how much a group of
 * rows or a panel of columns would skip; a cost model (calibrated with bench/kernels.c) picks
 * the kind. A call site (a distinct trans_a, trans_b, m, n, k) keeps its choice for up to 32
 * calls while a 4-row probe of op(A)'s density stays near the value it was chosen at (spikes
 * thin out or thicken over the time steps). The kernels then measure what they need
 * exactly: 16-bit non-zero masks of an operand in one vectorized pass (the event kind
 * compresses each row in the same pass) and the lists from them.
 *
 * op(B) is used in place when it is stored row-major (trans_b = 0) and packed (transposed,
 * columns padded to a multiple of 16, a zero row appended) otherwise and for `event`; on one
 * thread the tiled kinds pack B^T one column panel at a time, just before the panel's tiles,
 * so the packed panel is still in L2 when they read it. Work is split over OpenMP threads by
 * output tiles, never over k (tiles handed out dynamically, so a preempted thread delays one
 * tile, not half the product), by snnrt_kernel_run always and by snnrt_sgemm for products
 * above SNNRT_KERNEL_FORK multiply-adds (default: never; see fork_min for the measurement
 * behind that).
 *
 * The AVX-512 code is compiled for that target function by function and runs only where the
 * CPU reports it (__builtin_cpu_supports); elsewhere the same kinds run as portable C (the
 * compiler vectorizes it for the runtime's AVX2 baseline) with the same order of operations.
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

#include <limits.h>
#include <math.h>
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
int omp_get_thread_num(void);
#else
static int omp_get_thread_num(void) { return 0; }
#endif

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { RMAX = 8, VMAX = 4, EV_R = 8, EV_VMAX = 3 };

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

static const char *const kind_names[SNNRT_KERNEL_COUNT] = {
    "blas", "dense", "rows", "cols", "event", "shortk", "narrow", "groups"};

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

/* Products of at least this many multiply-adds split over the OpenMP threads; 0: none.
 * Default 0: on the shared 2-vCPU machine this was tuned on, a fork inside a training step
 * measured slower (a preempted worker holds up the join, and its spinning afterwards slows
 * the main thread), although an isolated 128 x 1000 x 784 product ran 1.6x faster on two
 * threads (bench/RESULTS.md). SNNRT_KERNEL_FORK=N sets it (e.g. 20000000). */
static int64_t fork_min_v = -1;

static int64_t fork_min(void) {
    if (fork_min_v < 0) {
        const char *e = getenv("SNNRT_KERNEL_FORK");
        fork_min_v = e && *e ? strtoll(e, NULL, 10) : 0;
        if (fork_min_v < 0) fork_min_v = 0;
    }
    return fork_min_v;
}

static int threads(void) {
#ifdef _OPENMP
    return omp_in_parallel() || snnrt_pool_inside() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------ scratch */

/* Per-thread growable buffers, 64-byte aligned, kept between calls. */
enum { S_BPACK, S_AMASK, S_BMASK, S_LIST, S_LOFF, S_VAL, S_PERM, S_BITS, S_GA, S_GLEN, S_GROW,
       S_GTAIL, S_COUNT };
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

/* A buffer kept for the process (shared by a team's members, unlike scratch), grown to hold
 * `bytes` (contents not kept); NULL if memory is short. */
static void *grow(void **buf, size_t *cap, size_t bytes) {
    if (*cap < bytes) {
        free(*buf);
        *buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        *cap = *buf ? bytes : 0;
    }
    return *buf;
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
    int par;      /* threads to use */
    int hint_bin; /* op(A) looks like 0/1 (the event kind tries positions only) */
    const float *bias; /* non-NULL: C = alpha op(A) op(B) + bias[j] on every row, beta 0
                        * (snnrt_sgemm_bias); the tiled kinds add it as they store */
} gemm;

/* a(i, l) = a[i * ars + l * aks] */
static int64_t a_rs(const gemm *g) { return g->ta ? 1 : g->lda; }
static int64_t a_ks(const gemm *g) { return g->ta ? g->lda : 1; }

static int64_t round16(int64_t x) { return (x + 15) & ~(int64_t)15; }

#if SNNRT_X86
/* r[l] lane j <- r[j] lane l: a 16 x 16 block through registers (unpack, shuffle, two lane
 * shuffles). */
INLINE TGT512 void transpose16_regs(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* dst[l * ldd + j] = src[j * lds + l] for j < 16 (rows jv.. read as 0) and l < lv (of 16).
 * Inlined where jv and lv are constants (whole blocks: no masks). */
INLINE TGT512 void transpose16_inl(const float *src, int64_t lds, int jv, int lv, float *dst,
                                   int64_t ldd) {
    const __mmask16 lm = lv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lv) - 1);
    __m512 r[16];
    for (int j = 0; j < 16; j++)
        r[j] = j < jv ? _mm512_maskz_loadu_ps(lm, src + j * lds) : _mm512_setzero_ps();
    transpose16_regs(r);
    for (int l = 0; l < lv; l++) _mm512_storeu_ps(dst + l * ldd, r[l]);
}

TGT512 static void transpose16_512(const float *src, int64_t lds, int jv, int lv, float *dst,
                                   int64_t ldd) {
    transpose16_inl(src, lds, jv, lv, dst, ldd);
}

/* dst[l * ldd + (j - j0)] = b[j * ldb + l] for the rows j0 <= j < min(j0 + w, n) of b and l < k
 * (B^T's columns j0.. packed; a last block of fewer than 16 rows writes zeros for the rest).
 * Whole 16 x 16 blocks go through the inlined transpose with constant extents (no masks, no
 * call): inside the trainer the pack of W1^T had been 0.2 ms of thread time per iteration with
 * every block a call with masked loads, and took a third less this way. */
TGT512 static void transpose_cols512(const float *b, int64_t ldb, int64_t n, int64_t k, int64_t j0,
                                     int64_t w, float *dst, int64_t ldd) {
    for (int64_t jb = j0; jb < j0 + w && jb < n; jb += 16) {
        const int jv = (int)(n - jb < 16 ? n - jb : 16);
        for (int64_t l0 = 0; l0 < k; l0 += 16) {
            const int lv = (int)(k - l0 < 16 ? k - l0 : 16);
            if (jv == 16 && lv == 16)
                transpose16_inl(b + jb * ldb + l0, ldb, 16, 16, dst + l0 * ldd + (jb - j0), ldd);
            else
                transpose16_512(b + jb * ldb + l0, ldb, jv, lv, dst + l0 * ldd + (jb - j0), ldd);
        }
    }
}
#endif

#if SNNRT_X86
/* snnrt_kernel_transpose's whole blocks of 16 rows: 16 x 16 blocks through registers, the last
 * one of a row band narrower (masked loads, its stores still whole rows of 16). */
TGT512 static void transpose_rows512(const float *src, int64_t rows16, int64_t cols, int64_t lds,
                                     float *dst, int64_t ldd) {
    for (int64_t i0 = 0; i0 < rows16; i0 += 16)
        for (int64_t j0 = 0; j0 < cols; j0 += 16) {
            if (cols - j0 >= 16)
                transpose16_inl(src + i0 * lds + j0, lds, 16, 16, dst + j0 * ldd + i0, ldd);
            else
                transpose16_512(src + i0 * lds + j0, lds, 16, (int)(cols - j0), dst + j0 * ldd + i0,
                                ldd);
        }
}
#endif

void snnrt_kernel_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                            int64_t ldd) {
    int64_t done = 0;
#if SNNRT_X86
    if (avx512()) {
        done = rows / 16 * 16;
        transpose_rows512(src, done, cols, lds, dst, ldd);
    }
#endif
    for (int64_t i = done; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * ldd + i] = src[i * lds + j];
}

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
#if SNNRT_X86
        if (avx512()) {
            /* j blocks outer: each reads 16 rows of B from start to end */
            const int64_t nj = np / 16;
            const int par = g->par > 1 && k * n > 100000 ? g->par : 1;
#pragma omp parallel for schedule(static) num_threads(par) if (par > 1)
            for (int64_t bj = 0; bj < nj; bj++)
                transpose_cols512(g->b, g->ldb, n, k, 16 * bj, 16, p + 16 * bj, np);
            memset(p + k * np, 0, (size_t)np * sizeof(float));
            *npad_out = np;
            return p;
        }
#endif
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
    const float *ar[RMAX]; /* a(r, l) = ar[r][l * aks] for the tile's rows */
    int64_t aks;
    const float *b;    /* op(B)(l, j) = b[l * bks + j] for the tile's columns */
    int64_t bks;
    float *cr[RMAX];   /* C's row r at the tile's first column */
    int rows, cols;    /* rows <= RMAX, cols <= 16 * VMAX */
    int skip;          /* the first `skip` rows are computed but not stored */
    float alpha, beta;
    const float *bias; /* non-NULL: added to every row (gemm.bias at the tile's first column) */
    int stream;        /* store C with non-temporal stores (tiled.stream) */
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

/* One block's part of a sum tile (joint sums): a raw sum over its own list, or made before. */
typedef struct {
    const int32_t *kl;  /* the k to sum over, ascending; NULL: 0..nk-1 */
    int64_t nk;
    const float *a;     /* a(r, l) = a[r * ars + l * aks] for the tile's rows */
    int64_t ars, aks;
    const float *b;     /* op(B)(l, j) = b[l * bks + j] for the tile's columns */
    int64_t bks;
    const float *pre;   /* non-NULL: the part's sums, [R, 16V] (then the rest is unused) */
} part_job;

enum { SUM_PARTS_MAX = SNNRT_MAX_SHARDS };

typedef struct {
    int nparts;
    float *out;         /* non-NULL: the raw sum stored here as [R, 16V], not in C */
    float *cr[RMAX];    /* C's row r at the tile's first column */
    int rows, cols, skip;
    float alpha;
    int stream;
    part_job part[SUM_PARTS_MAX];
} sum_job;

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
        const float *bp = t->b + l * t->bks;
        for (int r = 0; r < t->rows; r++) {
            const float av = t->ar[r][l * t->aks];
            for (int j = 0; j < t->cols; j++) acc[r][j] = __builtin_fmaf(av, bp[j], acc[r][j]);
        }
    }
    for (int r = t->skip; r < t->rows; r++)
        for (int j = 0; j < t->cols; j++) {
            float *cp = t->cr[r] + j;
            *cp = t->bias ? store_val(acc[r][j], t->bias[j], t->alpha, 1.0f)
                          : store_val(acc[r][j], t->beta == 0.0f ? 0.0f : *cp, t->alpha, t->beta);
        }
}

static void tile_sum_c(const sum_job *t, int R, int V) {
    const int W = 16 * V;
    float sum[RMAX * 16 * VMAX], acc[RMAX * 16 * VMAX];
    for (int k = 0; k < t->nparts; k++) {
        const part_job *pj = &t->part[k];
        if (pj->pre)
            memcpy(acc, pj->pre, (size_t)(R * W) * sizeof(float));
        else {
            memset(acc, 0, sizeof acc);
            for (int64_t q = 0; q < pj->nk; q++) {
                const int64_t l = pj->kl ? pj->kl[q] : q;
                for (int r = 0; r < R; r++) {
                    const float av = pj->a[r * pj->ars + l * pj->aks];
                    for (int j = 0; j < t->cols; j++)
                        acc[r * W + j] = __builtin_fmaf(av, pj->b[l * pj->bks + j], acc[r * W + j]);
                }
            }
        }
        for (int j = 0; j < R * W; j++) sum[j] = k == 0 ? acc[j] : sum[j] + acc[j];
    }
    if (t->out) {
        memcpy(t->out, sum, (size_t)(R * W) * sizeof(float));
        return;
    }
    for (int r = t->skip; r < t->rows; r++)
        for (int j = 0; j < t->cols; j++) t->cr[r][j] = t->alpha * sum[r * W + j];
}

static void ev_c(const ev_job *t, int bin) {
    float acc[EV_R][16 * EV_VMAX];
    memset(acc, 0, sizeof acc);
    for (int64_t q = 0; q < t->len; q++)
        for (int r = 0; r < EV_R; r++) {
            const float *bp = t->b + t->idx[r * t->ls + q] * t->bks;
            const float av = bin ? 1.0f : t->val[r * t->ls + q];
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

/* stream: a whole vector goes around the caches (tiled.stream: beta 0, cp 64-byte aligned). */
INLINE TGT512 void store512(float *cp, __m512 acc, __mmask16 mk, float alpha, float beta,
                            const float *bias, int stream) {
    __m512 r = alpha == 1.0f ? acc : _mm512_mul_ps(acc, _mm512_set1_ps(alpha));
    if (bias) { /* what beta 1 over a C filled with the bias gave, without reading C */
        r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, bias));
    } else if (beta != 0.0f) {
        const __m512 cv = _mm512_maskz_loadu_ps(mk, cp);
        r = beta == 1.0f ? _mm512_add_ps(r, cv) : _mm512_fmadd_ps(_mm512_set1_ps(beta), cv, r);
    }
    if (stream && mk == (__mmask16)0xFFFF) _mm512_stream_ps(cp, r);
    else _mm512_mask_storeu_ps(cp, mk, r);
}

/* The tile's k loop: acc[r][v] += a(r, l) * op(B)(l, 16v..16v+15) for l in kl[0..nk) (or
 * 0..nk-1), with a(r, l) = ar[r][l * aks] and op(B)(l, j) = b[l * bks + j]; the last vector's
 * columns masked by ml. R and V are constants after inlining, acc stays in registers. */
INLINE TGT512 void tile512_k(const int R, const int V, __m512 acc[RMAX][VMAX],
                             const float *const ar_in[RMAX], const int32_t *kl, int64_t nk,
                             int64_t aks, const float *b, int64_t bks, __mmask16 ml) {
    const float *ar[RMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) ar[r] = ar_in[r];
    for (int64_t q = 0; q < nk; q++) {
        const int64_t l = kl ? kl[q] : q;
        const float *bp = b + l * bks;
        const int64_t ao = l * aks;
        __m512 bv[VMAX];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            bv[v] = v == V - 1 ? _mm512_maskz_loadu_ps(ml, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(ar[r][ao]);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
}

/* The R x 16V register tile; R and V are constants after inlining. */
INLINE TGT512 void tile512(const int R, const int V, const tile_job *t) {
    __m512 acc[RMAX][VMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    const __mmask16 ml = last_mask(t->cols, V);
    tile512_k(R, V, acc, t->ar, t->kl, t->nk, t->aks, t->b, t->bks, ml);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r < t->skip) continue;
        float *cp = t->cr[r];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            store512(cp + 16 * v, acc[r][v], v == V - 1 ? ml : (__mmask16)0xFFFF, t->alpha, t->beta,
                     t->bias ? t->bias + 16 * v : NULL, t->stream);
    }
    if (t->stream) _mm_sfence(); /* before another thread, told by a plain store, reads C */
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
            store512(cp + 16 * v, acc[r][v], v == V - 1 ? ml : (__mmask16)0xFFFF, t->alpha, t->beta,
                     NULL, 0);
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

/* The sum tile (joint sums, below): C's tile = alpha * (P_0 + P_1 + ...), each P_k its own
 * accumulator over its own list, or read where it was made before (pre); the running sum of
 * the parts before the last goes through an L1 buffer. With `out` the raw sum is stored there
 * as [R, 16V] instead (a precomputed part). */
INLINE TGT512 void tile512_sum(const int R, const int V, const sum_job *t) {
    _Alignas(64) float sbuf[RMAX * 16 * VMAX];
    __m512 acc[RMAX][VMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps(); /* nparts >= 1 */
    const __mmask16 ml = last_mask(t->cols, V);
    for (int k = 0; k < t->nparts; k++) {
        const part_job *pj = &t->part[k];
        if (pj->pre) {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) acc[r][v] = _mm512_loadu_ps(pj->pre + (r * V + v) * 16);
        } else {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
#pragma GCC unroll 4
                for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
            const float *ar[RMAX];
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) ar[r] = pj->a + r * pj->ars;
            tile512_k(R, V, acc, ar, pj->kl, pj->nk, pj->aks, pj->b, pj->bks, ml);
        }
        const int last = k == t->nparts - 1;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) {
                float *sp = sbuf + (r * V + v) * 16;
                if (k > 0) acc[r][v] = _mm512_add_ps(_mm512_load_ps(sp), acc[r][v]);
                if (!last) _mm512_store_ps(sp, acc[r][v]);
            }
    }
    if (t->out) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) _mm512_storeu_ps(t->out + (r * V + v) * 16, acc[r][v]);
        return;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r < t->skip || r >= t->rows) continue;
        float *cp = t->cr[r];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            store512(cp + 16 * v, acc[r][v], v == V - 1 ? ml : (__mmask16)0xFFFF, t->alpha, 0.0f, NULL,
                     t->stream);
    }
    if (t->stream) _mm_sfence();
}

#define SUM_FN(R, V) \
    static TGT512 void tile512_sum_##R##_##V(const sum_job *t) { tile512_sum(R, V, t); }
#define SUM_ROW(R) SUM_FN(R, 1) SUM_FN(R, 2) SUM_FN(R, 3) SUM_FN(R, 4)
SUM_ROW(1) SUM_ROW(2) SUM_ROW(3) SUM_ROW(4) SUM_ROW(5) SUM_ROW(6)
SUM_FN(7, 1) SUM_FN(7, 2) SUM_FN(7, 3) SUM_FN(8, 1) SUM_FN(8, 2) SUM_FN(8, 3)
#define SUM_PTRS(R) \
    {tile512_sum_##R##_1, tile512_sum_##R##_2, tile512_sum_##R##_3, tile512_sum_##R##_4}
static void (*const tile512_sum_tab[RMAX][VMAX])(const sum_job *) = {
    SUM_PTRS(1), SUM_PTRS(2), SUM_PTRS(3), SUM_PTRS(4), SUM_PTRS(5), SUM_PTRS(6),
    {tile512_sum_7_1, tile512_sum_7_2, tile512_sum_7_3, NULL},
    {tile512_sum_8_1, tile512_sum_8_2, tile512_sum_8_3, NULL}};

#define EV_FN(V, BIN) \
    static TGT512 void ev512_##V##_##BIN(const ev_job *t) { ev512(V, BIN, t); }
EV_FN(1, 0) EV_FN(2, 0) EV_FN(3, 0) EV_FN(1, 1) EV_FN(2, 1) EV_FN(3, 1)
static void (*const ev512_tab[2][EV_VMAX])(const ev_job *) = {
    {ev512_1_0, ev512_2_0, ev512_3_0}, {ev512_1_1, ev512_2_1, ev512_3_1}};

/* The non-zeros of x[0..n) in ascending position at idx/val, which have 16 entries of slack
 * after the end: one pass, compare and compress (val NULL: positions only). Returns how many;
 * *nonbin |= any value other than 0 and 1. Whole chunks go unmasked with a running index
 * vector, and 0/1-ness is tested as v * v - v == 0 (exact for every float but 0 and 1; NaN and
 * inf stay non-zero) OR'ed over the row: twice as fast as per-chunk masked compares and mask
 * moves (measured, 128 x 1000 spikes: 16 -> 7-9 us). */
TGT512 static int64_t compress_row_512(const float *x, int64_t n, int32_t *idx, float *val,
                                       int *nonbin) {
    __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i s16 = _mm512_set1_epi32(16);
    const __m512 z = _mm512_setzero_ps();
    __m512i bad = _mm512_setzero_si512();
    int64_t cnt = 0, q = 0;
    /* four chunks at a time: one mask move to a general register instead of four (the
     * moves, not the compresses, bounded the loop) */
    for (; q + 64 <= n; q += 64) {
        __m512 v[4];
        __mmask16 m[4];
        for (int u = 0; u < 4; u++) {
            v[u] = _mm512_loadu_ps(x + q + 16 * u);
            m[u] = _mm512_cmp_ps_mask(v[u], z, _CMP_NEQ_UQ);
            bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_fmsub_ps(v[u], v[u], v[u])));
        }
        const uint64_t mm = _cvtmask64_u64(_mm512_kunpackd(
            (__mmask64)_mm512_kunpackw((__mmask32)m[3], (__mmask32)m[2]),
            (__mmask64)_mm512_kunpackw((__mmask32)m[1], (__mmask32)m[0])));
        const int64_t o[4] = {cnt, cnt + __builtin_popcountll(mm & 0xFFFFu),
                              cnt + __builtin_popcountll(mm & 0xFFFFFFFFu),
                              cnt + __builtin_popcountll(mm & 0xFFFFFFFFFFFFu)};
        for (int u = 0; u < 4; u++) {
            _mm512_storeu_si512(idx + o[u], _mm512_maskz_compress_epi32(m[u], iv));
            if (val) _mm512_storeu_ps(val + o[u], _mm512_maskz_compress_ps(m[u], v[u]));
            iv = _mm512_add_epi32(iv, s16);
        }
        cnt += __builtin_popcountll(mm);
    }
    for (; q + 16 <= n; q += 16) {
        const __m512 v = _mm512_loadu_ps(x + q);
        const __mmask16 m = _mm512_cmp_ps_mask(v, z, _CMP_NEQ_UQ);
        bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_fmsub_ps(v, v, v)));
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi32(m, iv));
        if (val) _mm512_storeu_ps(val + cnt, _mm512_maskz_compress_ps(m, v));
        iv = _mm512_add_epi32(iv, s16);
        cnt += __builtin_popcount(m);
    }
    if (q < n) {
        const __mmask16 in = (__mmask16)((1u << (n - q)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(in, x + q);
        const __mmask16 m = _mm512_mask_cmp_ps_mask(in, v, z, _CMP_NEQ_UQ);
        bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_fmsub_ps(v, v, v)));
        _mm512_storeu_si512(idx + cnt, _mm512_maskz_compress_epi32(m, iv));
        if (val) _mm512_storeu_ps(val + cnt, _mm512_maskz_compress_ps(m, v));
        cnt += __builtin_popcount(m);
    }
    if (_mm512_test_epi32_mask(bad, _mm512_set1_epi32(0x7FFFFFFF)))
        *nonbin = 1;
    return cnt;
}

/* compress_row_512 for 0/1 rows: positions only (half the work); *nonbin |= a value other
 * than 1 was seen, and then the positions are still right but the values are needed. */
TGT512 static int64_t compress_idx_512(const float *x, int64_t n, int32_t *idx, int *nonbin) {
    return compress_row_512(x, n, idx, NULL, nonbin);
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
    ev_c(t, bin);
}

/* ------------------------------------------------------------------ tiled kinds */

/* Bytes of C from which the tiled kinds store it non-temporally (tiled_init). */
#define STREAM_MIN_BYTES (2.0 * 1024 * 1024)

/* Whether a kind stores g's C with non-temporal stores (the why: tiled_init). */
static int c_streams(const gemm *g) {
    return avx512() && g->ta && g->beta == 0.0f &&
           (double)g->m * (double)g->n * 4.0 >= STREAM_MIN_BYTES && ((uintptr_t)g->c & 63) == 0 &&
           g->ldc % 16 == 0;
}

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
    int64_t *gstart;          /* first row of each row group (the last one may overlap, or,
                               * rows kind with ta = 0, be shorter) */
    const int32_t *perm;      /* row order (rows kind: similar rows together), NULL: 0..m-1 */
    const float *bp;          /* op(B) at column 0, row stride bks */
    int64_t bks;
    const int32_t *lists;     /* NULL: dense */
    const int64_t *lens;
    int64_t lstride;
    int per_panel;            /* lists per panel (cols) rather than per row group (rows) */
    int panel_pack;           /* op(B) = B^T packed per panel in tiled_run (one thread) */
    float *const *cblk;       /* non-NULL: row i of C is row i % blk_rows of cblk[i / blk_rows]
                               * (a joint product over the row blocks' separate outputs) */
    int64_t blk_rows;
    int stream;               /* C written with non-temporal stores: see tiled_init */
} tiled;

/* Tile t (panel-major). b_panel: op(B)'s columns of the tile's panel packed as [k, 16V], or
 * NULL to read them at p->bp. */
static void tiled_one(const tiled *p, int64_t t, const float *b_panel) {
    const int64_t pi = t / p->ngroups, gi = t % p->ngroups;
    const int64_t j0 = pi * 16 * p->V, i0 = p->gstart[gi];
    const int64_t li = p->per_panel ? pi : gi;
    tile_job job = {
        .kl = p->lists ? p->lists + li * p->lstride : NULL,
        .nk = p->lists ? p->lens[li] : p->g.k,
        .aks = a_ks(&p->g),
        .b = b_panel ? b_panel : p->bp + j0,
        .bks = b_panel ? 16 * p->V : p->bks,
        .rows = (int)(p->g.m - i0 < p->R ? p->g.m - i0 : p->R),
        .cols = (int)(p->g.n - j0 < 16 * p->V ? p->g.n - j0 : 16 * p->V),
        .skip = (int)(gi > 0 ? p->gstart[gi - 1] + p->R - i0 : 0),
        .alpha = p->g.alpha,
        .beta = p->g.beta,
        .bias = p->g.bias ? p->g.bias + j0 : NULL,
        .stream = p->stream,
    };
    const int64_t ars = a_rs(&p->g);
    for (int r = 0; r < p->R; r++) {
        const int64_t i = p->perm ? p->perm[i0 + r] : i0 + r;
        job.ar[r] = p->g.a + i * ars;
        job.cr[r] = p->cblk ? p->cblk[i / p->blk_rows] + (i % p->blk_rows) * p->g.ldc + j0
                            : p->g.c + i * p->g.ldc + j0;
    }
    if (job.nk == 0) { /* C = beta * C, or the bias */
        for (int r = job.skip; r < job.rows; r++)
            for (int j = 0; j < job.cols; j++) {
                float *cp = job.cr[r] + j;
                *cp = job.bias ? job.bias[j] : job.beta == 0.0f ? 0.0f : job.beta * *cp;
            }
        return;
    }
    run_tile(&job);
}

/* Panel pi of a panel_pack product: op(B) = B^T's columns of the panel packed into the
 * calling thread's scratch just before the panel's tiles, so the panel ([k, 16V], 200 KB for
 * k = 784) stays in L2 for all of them and the whole of B^T is never written out. */
static void tiled_panel(const tiled *p, int64_t pi) {
#if SNNRT_X86
    const int64_t W = 16 * p->V, k = p->g.k, j0 = pi * W;
    float *buf = scratch_get(S_BPACK, (size_t)(k * W) * sizeof(float));
    transpose_cols512(p->g.b, p->g.ldb, p->g.n, k, j0, W, buf, W);
    for (int64_t gi = 0; gi < p->ngroups; gi++) tiled_one(p, pi * p->ngroups + gi, buf);
#else
    (void)p, (void)pi;
#endif
}

static void tiled_run(const tiled *p) {
    const int64_t ntiles = p->ngroups * p->npanels;
    if (p->panel_pack) {
        for (int64_t pi = 0; pi < p->npanels; pi++) tiled_panel(p, pi);
        return;
    }
    const int par = p->g.par > 1 && ntiles > 1 ? p->g.par : 1;
    if (par == 1) { /* no OpenMP region at all: its scheduling costs per tile */
        for (int64_t t = 0; t < ntiles; t++) tiled_one(p, t, NULL);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(par)
    for (int64_t t = 0; t < ntiles; t++) tiled_one(p, t, NULL);
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
    /* A C of several MB (Tutorial 5's weight gradient acc^T x, 3.1 MB) does not stay in a
     * core's L2 anyway: writing it around the caches saves reading each line in before its
     * first write. acc^T x in the trainer, 2 threads: 0.69-0.75 -> 0.60-0.65 ms a call; the
     * iteration, 11 alternating pairs in a slow stretch of the host: median 3.35 -> 3.19 ms,
     * every pair faster (9 pairs in a fast stretch: 2.47 -> 2.44, within the noise). The
     * optimizer reads it next, with its own prefetch. Only for op(A)^T op(B), the form of a
     * weight gradient (a product's other forms feed the loops that follow it, which want C in
     * cache), and aligned rows (the stores need 64 bytes); the last vector of a row, if
     * partial, is a plain masked store. */
    p->stream = c_streams(g);
    if (g->tb && avx512() && g->par == 1 && p->npanels > 1) {
        p->panel_pack = 1; /* tiled_run packs panel by panel */
    } else if (g->tb) {
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

/* Rows of 16-bit masks (nz_masks, nch per row) as bitsets of nw 64-bit words (4 masks a
 * word; positions past the row's end are 0). */
static void masks_to_bits(const uint16_t *mk, int64_t rows, int64_t nch, uint64_t *bits,
                          int64_t nw) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t w = 0; w < nw; w++) {
            uint64_t x = 0;
            for (int64_t e = 0; e < 4 && 4 * w + e < nch; e++)
                x |= (uint64_t)mk[r * nch + 4 * w + e] << (16 * e);
            bits[r * nw + w] = x;
        }
}

static int popcount_words(const uint64_t *a, int64_t nw) {
    int c = 0;
    for (int64_t w = 0; w < nw; w++) c += __builtin_popcountll(a[w]);
    return c;
}

static int popcount_or_c(const uint64_t *a, const uint64_t *b, int64_t nw) {
    int c = 0;
    for (int64_t w = 0; w < nw; w++) c += __builtin_popcountll(a[w] | b[w]);
    return c;
}

#if SNNRT_X86
/* Eight words a step (Fashion-MNIST's rows: 13 words, two steps where the scalar loop took 13
 * popcounts); the counts are exact either way, so the groups are the same. */
__attribute__((target("avx512f,avx512vpopcntdq"))) static int popcount_or512(
    const uint64_t *a, const uint64_t *b, int64_t nw) {
    __m512i acc = _mm512_setzero_si512();
    int64_t w = 0;
    for (; w + 8 <= nw; w += 8)
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_or_si512(
                                        _mm512_loadu_si512(a + w), _mm512_loadu_si512(b + w))));
    if (w < nw) {
        const __mmask8 m = (__mmask8)((1u << (nw - w)) - 1);
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_or_si512(
                                        _mm512_maskz_loadu_epi64(m, a + w),
                                        _mm512_maskz_loadu_epi64(m, b + w))));
    }
    return (int)_mm512_reduce_add_epi64(acc);
}
#endif

static int cpu_vpopcnt = -1; /* -1: not asked yet */

/* |a OR b| over nw words, for the greedy grouping's inner loop (group_items). */
static int (*popcount_or_fn(void))(const uint64_t *, const uint64_t *, int64_t) {
#if SNNRT_X86
    if (cpu_vpopcnt < 0) {
        __builtin_cpu_init();
        cpu_vpopcnt = __builtin_cpu_supports("avx512vpopcntdq");
    }
    if (avx512() && cpu_vpopcnt) return popcount_or512;
#endif
    return popcount_or_c;
}

int snnrt_kernel_popcount_or(const uint64_t *a, const uint64_t *b, int64_t nw, int portable) {
    return portable ? popcount_or_c(a, b, nw) : popcount_or_fn()(a, b, nw);
}

/* How far ahead (in count order) a group looks for its next row: on a Fashion-MNIST batch's
 * 128 images (784 pixels, groups of 6) 64 kept 0.64 of the dense work, where count order
 * alone kept 0.77 (a full search gains under 0.01). Over 300 batches of 128: 64 keeps 0.6402
 * in 47 us, 32 keeps 0.6416 in 36 us, 16 0.6476 in 28 us (measured when one thread made the
 * joint x W1^T's lists while the other waited; each member now groups its own block's rows,
 * joint_rows_split). */
enum { GROUP_WIN = 32 };

/* Orders n items (bitsets of nw words, positions < npos) into groups of G (the last one
 * smaller): items in ascending order of their non-zero count; each group starts with the
 * first unused item and takes, G - 1 times, the unused item among the next GROUP_WIN (in
 * count order) that adds fewest positions to the group's union. perm gets the items group by
 * group; with lists, group g's union as ascending positions at lists + g * lstride, its
 * length in lens[g]. Returns the positions kept, summed over the groups' items. work:
 * 3n + npos + 2 int32, u: nw words. */
static int64_t group_items(const uint64_t *bits, int64_t n, int64_t nw, int64_t npos, int G,
                           int32_t *perm, int32_t *work, uint64_t *u, int32_t *lists,
                           int64_t lstride, int64_t *lens) {
    int32_t *ord = work, *cnt = work + n, *used = work + 2 * n, *bucket = work + 3 * n;
    memset(bucket, 0, (size_t)(npos + 2) * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        cnt[i] = popcount_words(bits + i * nw, nw);
        bucket[cnt[i] + 1]++;
        used[i] = 0;
    }
    for (int64_t c = 0; c <= npos; c++) bucket[c + 1] += bucket[c];
    for (int64_t i = 0; i < n; i++) ord[bucket[cnt[i]]++] = (int32_t)i;
    int (*const popcount_or)(const uint64_t *, const uint64_t *, int64_t) = popcount_or_fn();
    int64_t out = 0, p = 0, g = 0, kept = 0;
    while (out < n) {
        while (used[ord[p]]) p++;
        const int32_t s = ord[p];
        used[s] = 1;
        perm[out++] = s;
        memcpy(u, bits + (int64_t)s * nw, (size_t)nw * sizeof(uint64_t));
        int have = cnt[s], rows = 1;
        for (; rows < G && out < n; rows++) {
            int32_t best = -1;
            int bc = INT_MAX, seen = 0;
            for (int64_t q = p + 1; q < n && seen < GROUP_WIN; q++) {
                const int32_t i = ord[q];
                if (used[i]) continue;
                seen++;
                const int c = popcount_or(u, bits + (int64_t)i * nw, nw);
                if (c < bc) {
                    bc = c, best = i;
                    if (c == have) break; /* adds nothing */
                }
            }
            used[best] = 1;
            perm[out++] = best;
            for (int64_t w = 0; w < nw; w++) u[w] |= bits[(int64_t)best * nw + w];
            have = bc;
        }
        kept += (int64_t)have * rows;
        if (lists) {
            int32_t *l = lists + g * lstride;
            int64_t c = 0;
            for (int64_t w = 0; w < nw; w++)
                for (uint64_t x = u[w]; x; x &= x - 1) l[c++] = (int32_t)(64 * w + __builtin_ctzll(x));
            lens[g] = c;
        }
        g++;
    }
    return kept;
}

/* Lists for `rows`: per row group, the k where op(A) has a non-zero in one of its rows. */
static void rows_lists(tiled *p, const uint16_t *amk) {
    const gemm *g = &p->g;
    int32_t *lists = scratch_get(S_LIST, (size_t)(p->ngroups * g->k) * sizeof(int32_t));
    int64_t *lens = p->gstart + p->ngroups;
    if (!g->ta) {
        /* rows grouped greedily (group_items), so a group's rows look alike and the union
         * of their non-zeros is small; groups of R from the first row, the last shorter */
        const int64_t nch = (g->k + 15) / 16, nw = (g->k + 63) / 64;
        uint64_t *bits = scratch_get(S_BITS, (size_t)((g->m + 1) * nw) * sizeof(uint64_t));
        masks_to_bits(amk, g->m, nch, bits, nw);
        int32_t *perm = scratch_get(S_PERM, (size_t)(4 * g->m + g->k + 2) * sizeof(int32_t));
        group_items(bits, g->m, nw, g->k, p->R, perm, perm + g->m, bits + g->m * nw, lists,
                    g->k, lens);
        for (int64_t i = 0; i < p->ngroups; i++) p->gstart[i] = i * p->R;
        p->perm = perm;
    } else
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
 * idx/val + (i - i0) * ls; lens per row. Returns 1 if every value is 1. amk: the masks of
 * the stored A, needed (only) when ta = 1. With `guess_bin` (ta = 0, AVX-512) only the
 * positions are written, and if a value other than 1 shows up the lists are rebuilt with
 * values. */
static int ev_lists(const gemm *g, int64_t i0, int64_t nrows, const uint16_t *amk, int32_t *idx,
                    float *val, int64_t ls, int64_t *lens, int guess_bin) {
    int nonbin = 0;
    if (!g->ta) {
#if SNNRT_X86
        if (avx512() && guess_bin) {
            for (int64_t r = 0; r < nrows && !nonbin; r++)
                lens[r] = compress_idx_512(g->a + (i0 + r) * g->lda, g->k, idx + r * ls, &nonbin);
            if (!nonbin) return 1;
            nonbin = 0;
        }
#endif
        for (int64_t r = 0; r < nrows; r++) {
            const float *x = g->a + (i0 + r) * g->lda;
#if SNNRT_X86
            if (avx512()) {
                lens[r] = compress_row_512(x, g->k, idx + r * ls, val + r * ls, &nonbin);
                continue;
            }
#endif
            int64_t cnt = 0;
            for (int64_t l = 0; l < g->k; l++)
                if (x[l] != 0.0f) {
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

typedef struct {
    const gemm *g;
    const uint16_t *amk;
    const float *bp;
    int64_t npad, ls, W, npanels;
    int32_t *idx_all;
    float *val_all;
    int par;
    int bin_seen; /* cleared (relaxed) once a group finds a value other than 1 */
} ev_plan;

/* One group of EV_R rows: its lists in the thread's slice, padded, then its tiles. */
static void event_group(ev_plan *e, int64_t gi) {
    const gemm *g = e->g;
    const int64_t ls = e->ls, W = e->W;
    const int tid = e->par > 1 ? omp_get_thread_num() : 0;
    int32_t *idx = e->idx_all + (int64_t)tid * EV_R * ls;
    float *val = e->val_all + (int64_t)tid * EV_R * ls;
    int64_t lens[EV_R];
    const int64_t i0 = gi * EV_R, rows = g->m - i0 < EV_R ? g->m - i0 : EV_R;
    const int bin = ev_lists(g, i0, rows, e->amk, idx, val, ls, lens,
                             __atomic_load_n(&e->bin_seen, __ATOMIC_RELAXED));
    if (!bin) __atomic_store_n(&e->bin_seen, 0, __ATOMIC_RELAXED);
    /* pad every row to the group's longest list with (k, 0): row k of the packed B is
     * zero, so the padding adds exact zeros */
    int64_t mx = 0;
    for (int64_t r = 0; r < rows; r++) mx = lens[r] > mx ? lens[r] : mx;
    for (int64_t r = 0; r < EV_R; r++)
        for (int64_t q = r < rows ? lens[r] : 0; q < mx; q++) {
            idx[r * ls + q] = (int32_t)g->k;
            if (!bin) val[r * ls + q] = 0.0f;
        }
    for (int64_t pi = 0; pi < e->npanels; pi++) {
        const int64_t j0 = pi * W;
        ev_job job = {
            .idx = idx,
            .val = val,
            .ls = ls,
            .len = mx,
            .b = e->bp + j0,
            .bks = e->npad,
            .c = g->c + i0 * g->ldc + j0,
            .ldc = g->ldc,
            .rows = (int)rows,
            .cols = (int)(g->n - j0 < W ? g->n - j0 : W),
            .alpha = g->alpha,
            .beta = g->beta,
        };
        run_ev(&job, bin);
    }
}

static void event_run(const gemm *g, int guess_bin) {
    ev_plan e = {.g = g};
    int64_t nnz;
    e.bp = pack_b(g, &e.npad);
    e.amk = g->ta ? masks_a(g, &nnz) : NULL;
    e.ls = g->k + 16; /* list capacity per row, with compress slack */
    const int V = ev_panel_v(g->n);
    e.W = 16 * V;
    e.npanels = (g->n + e.W - 1) / e.W;
    const int64_t ng = (g->m + EV_R - 1) / EV_R;
    e.par = g->par > 1 && ng > 1 ? g->par : 1;
    /* each thread builds one group's lists at a time in its own slice (they stay in L1)
     * and runs the group's tiles at once */
    e.idx_all = scratch_get(S_LIST, (size_t)(e.par * EV_R * e.ls) * sizeof(int32_t));
    e.val_all = scratch_get(S_VAL, (size_t)(e.par * EV_R * e.ls) * sizeof(float));
    e.bin_seen = guess_bin;
    if (e.par == 1) {
        for (int64_t gi = 0; gi < ng; gi++) event_group(&e, gi);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(e.par)
    for (int64_t gi = 0; gi < ng; gi++) event_group(&e, gi);
}

/* ------------------------------------------------------------------ groups kind */

/* C = op(A) B with op(A) = A^T (A stored [k, m]) and B stored [k, n] mostly zeros: the weight
 * gradient acc^T x of a sparse input, skipping zeros per group of GR_R = 4 neighbouring
 * columns of C (pixels) instead of per panel of 64 (the cols kind). Each group has a list of
 * the rows l of B where one of its 4 values is non-zero; a step of the kernel loads GR_V = 4
 * vectors of A's row l (a band of 64 rows of C) and broadcasts the 4 values of B: 16 FMAs for
 * 9 loads. C is made transposed (vectors along its columns), 16 of its columns at a time in
 * an L1 buffer, and stored through 16 x 16 register transposes.
 *
 * Why: on a Fashion-MNIST batch (half the pixels 0) a panel of 64 pixels has a non-zero in
 * 0.875 of the rows, a group of 4 in 0.60. Earlier tries of the same product as x^T acc in
 * the rows kind (groups of 6 pixels, 0.68 kept) lost the gain to transposing all of C^T
 * afterwards (0.28 ms a thread) and to A's rows of 1000 floats, half of them off a line
 * boundary (bench/RESULTS.md, eighth and eleventh sessions); here each unit first copies its
 * band of A into an aligned buffer that stays in L1, and C is transposed 16 columns at a time
 * while they are in L1. acc^T x 1000 x 784 x 128 on one thread (bench/kernels.c): 800 us
 * against 1178 for the cols kind.
 *
 * Each element of C is still one accumulator over l ascending with fma(b(l, j), a(l, i)), the
 * rows skipped being exact zeros of b, so the bits are the other kinds' (up to a zero's sign).
 * Work is cut in units of one band (all columns): smaller units re-read the band of A more
 * often (joint sum of two 64-row blocks on two threads: units of 7 chunks of 16 columns
 * 560 us a call, whole bands 495). */
enum { GR_R = 4, GR_V = 4, GR_BAND = 16 * GR_V };

typedef struct {
    const float *a;       /* a(i, l) = a[l * lda + i], the call's A */
    int64_t lda, k, cap;  /* cap: room for rows per group */
    const float *b;       /* b(l, j) = b[l * ldb + j], the call's B */
    int64_t ldb;
    const float *tail;    /* where n is not a multiple of GR_R: the last group's values, [k][GR_R]
                           * with zeros past n (the kernel reads GR_R values of a row) */
    int64_t tail_gi;      /* that group, or -1 */
    const int32_t *len;   /* per group of GR_R columns of C: how many rows l it sums over */
    const int32_t *row;   /* [group * cap + q]: its q-th row l (ascending) */
} gr_part;

/* One unit's job: C's rows of a band (all columns), summed over nparts products (each its own
 * accumulator, added in part order, then alpha and beta as the tiles' store512); or, `out`,
 * part 0's raw sums stored there as [16 * chunks][GR_BAND]. */
typedef struct {
    int64_t m, n, ldc;
    float *c;
    float alpha, beta;
    int nparts;
    const gr_part *part[SNNRT_MAX_SHARDS];
    const float *pre[SNNRT_MAX_SHARDS]; /* part q's sums of this unit made before, or NULL */
    float *out;
    int stream; /* C written around the caches (c_streams) */
} gr_job;

/* Whether the groups kind runs its own loop (else it is the dense kind: same result). */
static int groups_own(const gemm *g) { return avx512() && g->ta && !g->tb; }

static int64_t gr_units(int64_t m) { return (m + GR_BAND - 1) / GR_BAND; }

/* Floats of a unit's raw sums (gr_job.out) */
static int64_t gr_unit_floats(int64_t n) { return (n + 15) / 16 * 16 * GR_BAND; }

#if SNNRT_X86
/* The part's lists, in this thread's scratch (read by the others of a team until the product
 * is complete). */
TGT512 static void groups_plan(const gemm *g, gr_part *p) {
    const int64_t n = g->n, k = g->k;
    /* room for every row and one more (an entry is written before it is known to count) */
    const int64_t cap = k + 1;
    const int64_t nch = (n + 15) / 16;
    int32_t *len = scratch_get(S_GLEN, (size_t)(4 * nch) * sizeof(int32_t));
    int32_t *rows = scratch_get(S_GROW, (size_t)(4 * nch * cap) * sizeof(int32_t));
    /* a chunk of 16 columns (4 groups) at a time down all rows, without branches: row l goes
     * to the end of each group's list, whose length grows where one of its values is not
     * zero (a branch per group and row would be mispredicted about as often as taken). Groups
     * past n see zeros and stay empty. */
    for (int64_t c = 0; c < nch; c++) {
        const int64_t j0 = 16 * c;
        const __mmask16 in = n - j0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j0)) - 1);
        int32_t *o0 = rows + (4 * c) * cap, *o1 = o0 + cap, *o2 = o1 + cap, *o3 = o2 + cap;
        int32_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;
        for (int64_t l = 0; l < k; l++) {
            const __m512 v = _mm512_maskz_loadu_ps(in, g->b + l * g->ldb + j0);
            const unsigned nz = _mm512_mask_cmp_ps_mask(in, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
            const int32_t lo = (int32_t)l;
            o0[n0] = lo, o1[n1] = lo, o2[n2] = lo, o3[n3] = lo;
            n0 += (nz & 0xF) != 0, n1 += (nz & 0xF0) != 0;
            n2 += (nz & 0xF00) != 0, n3 += (nz & 0xF000) != 0;
        }
        len[4 * c] = n0, len[4 * c + 1] = n1, len[4 * c + 2] = n2, len[4 * c + 3] = n3;
    }
    *p = (gr_part){.a = g->a, .lda = g->lda, .k = k, .cap = cap, .b = g->b, .ldb = g->ldb,
                   .tail_gi = -1, .len = len, .row = rows};
    if (n % GR_R) {
        float *tail = scratch_get(S_GTAIL, (size_t)(k * GR_R) * sizeof(float));
        const int64_t j0 = n / GR_R * GR_R;
        for (int64_t l = 0; l < k; l++)
            for (int64_t r = 0; r < GR_R; r++)
                tail[l * GR_R + r] = j0 + r < n ? g->b[l * g->ldb + j0 + r] : 0.0f;
        p->tail = tail;
        p->tail_gi = n / GR_R;
    }
}

/* Group gi's sums for the band whose copy of A is ab (band_copy): acc[r][v] = column GR_R * gi
 * + r of C, rows 16v ... of the band. */
INLINE TGT512 void groups_sums(const gr_part *p, const float *ab, int64_t gi, __m512 acc[GR_R][GR_V]) {
#pragma GCC unroll 4
    for (int r = 0; r < GR_R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < GR_V; v++) acc[r][v] = _mm512_setzero_ps();
    const int tail = gi == p->tail_gi;
    const float *b = tail ? p->tail : p->b + gi * GR_R;
    const int32_t *row = p->row + gi * p->cap;
    const int64_t ldb = tail ? GR_R : p->ldb;
    const int32_t len = p->len[gi];
    for (int32_t q = 0; q < len; q++) {
        const float *ar = ab + row[q] * GR_BAND, *br = b + row[q] * ldb;
        __m512 av[GR_V];
#pragma GCC unroll 4
        for (int v = 0; v < GR_V; v++) av[v] = _mm512_loadu_ps(ar + 16 * v);
#pragma GCC unroll 4
        for (int r = 0; r < GR_R; r++) {
            const __m512 s = _mm512_set1_ps(br[r]);
#pragma GCC unroll 4
            for (int v = 0; v < GR_V; v++) acc[r][v] = _mm512_fmadd_ps(s, av[v], acc[r][v]);
        }
    }
}

/* The band of A from row i0 of C (w <= GR_BAND of them) as rows of GR_BAND floats, zeros past
 * w: aligned loads in L1 for the kernel, where A's own rows (1000 floats in Tutorial 5) put
 * every other load across two lines (a copy of all of A before the product, its rows padded,
 * took 25 us a block on the joint sum's critical path; this one is spread over the units). */
INLINE TGT512 void band_copy(const gr_part *p, int64_t i0, int64_t w, float *dst) {
    __mmask16 mk[GR_V];
    for (int v = 0; v < GR_V; v++) {
        const int64_t left = w - 16 * v;
        mk[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    }
    for (int64_t l = 0; l < p->k; l++) {
        const float *src = p->a + l * p->lda + i0;
#pragma GCC unroll 4
        for (int v = 0; v < GR_V; v++)
            _mm512_store_ps(dst + l * GR_BAND + 16 * v, _mm512_maskz_loadu_ps(mk[v], src + 16 * v));
    }
}

/* Unit u of the job (see gr_job). */
TGT512 static void groups_unit(const gr_job *j, int64_t u) {
    const int64_t nch = (j->n + 15) / 16, i0 = u * GR_BAND;
    const int64_t w = j->m - i0 < GR_BAND ? j->m - i0 : GR_BAND;
    _Alignas(64) float buf[16 * GR_BAND]; /* 16 columns of C, each its band of rows */
    const float *ab[SNNRT_MAX_SHARDS];
    int64_t rows = 0;
    for (int q = 0; q < j->nparts; q++) rows += j->pre[q] ? 0 : j->part[q]->k;
    float *bands = scratch_get(S_GA, (size_t)(rows + 1) * GR_BAND * sizeof(float));
    for (int q = 0; q < j->nparts; q++) {
        if (j->pre[q]) continue;
        band_copy(j->part[q], i0, w, bands);
        ab[q] = bands;
        bands += j->part[q]->k * GR_BAND;
    }
    for (int64_t ch = 0; ch < nch; ch++) {
        float *t = j->out ? j->out + ch * 16 * GR_BAND : buf;
        for (int q4 = 0; q4 < 16 / GR_R; q4++) {
            const int64_t gi = ch * (16 / GR_R) + q4;
            float *tr = t + q4 * GR_R * GR_BAND; /* a group past n has an empty list: zeros */
            for (int q = 0; q < j->nparts; q++) {
                __m512 acc[GR_R][GR_V];
                const float *pre = j->pre[q] ? j->pre[q] + (ch * 16 + q4 * GR_R) * GR_BAND : NULL;
                if (pre) {
                    for (int r = 0; r < GR_R; r++)
                        for (int v = 0; v < GR_V; v++)
                            acc[r][v] = _mm512_load_ps(pre + r * GR_BAND + 16 * v);
                } else {
                    groups_sums(j->part[q], ab[q], gi, acc);
                }
#pragma GCC unroll 4
                for (int r = 0; r < GR_R; r++)
#pragma GCC unroll 4
                    for (int v = 0; v < GR_V; v++) {
                        float *sp = tr + r * GR_BAND + 16 * v;
                        _mm512_store_ps(sp, q > 0 ? _mm512_add_ps(_mm512_load_ps(sp), acc[r][v])
                                                  : acc[r][v]);
                    }
            }
        }
        if (j->out) continue;
        /* C(i0 + 16v + l, 16 ch + c) = t[c][16v + l] */
        const int64_t p0 = ch * 16;
        const int cols = (int)(j->n - p0 < 16 ? j->n - p0 : 16);
        const __mmask16 mk = cols == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
        for (int v = 0; v < GR_V && i0 + 16 * v < j->m; v++) {
            __m512 r[16];
            for (int c = 0; c < 16; c++) r[c] = _mm512_load_ps(t + c * GR_BAND + 16 * v);
            transpose16_regs(r);
            const int64_t i = i0 + 16 * v, rows = j->m - i < 16 ? j->m - i : 16;
            float *cp = j->c + i * j->ldc + p0;
            if (rows == 16) {
#pragma GCC unroll 16
                for (int l = 0; l < 16; l++)
                    store512(cp + l * j->ldc, r[l], mk, j->alpha, j->beta, NULL, j->stream);
            } else {
                for (int64_t l = 0; l < rows; l++)
                    store512(cp + l * j->ldc, r[l], mk, j->alpha, j->beta, NULL, j->stream);
            }
        }
    }
    if (j->stream) _mm_sfence(); /* before another thread, told by a plain store, reads C */
}
#endif

/* The groups kind on the calling thread (the dense kind where it has no own loop). */
static void groups_run(const gemm *g) {
#if SNNRT_X86
    if (groups_own(g)) {
        gr_part p;
        groups_plan(g, &p);
        gr_job j = {.m = g->m, .n = g->n, .ldc = g->ldc, .c = g->c, .alpha = g->alpha,
                    .beta = g->beta, .nparts = 1, .part = {&p}, .stream = c_streams(g)};
        const int64_t units = gr_units(g->m);
        for (int64_t u = 0; u < units; u++) groups_unit(&j, u);
        return;
    }
#endif
    tiled p;
    tiled_init(&p, g);
    tiled_run(&p);
}

/* ------------------------------------------------------------------ shortk kind */

/* A short k (<= SK_MAX): the tile loop's per-tile setup and its 24 stores dominate a tile of
 * only k steps, so here a pair of rows of C is computed whole, op(A)'s 2k values broadcast
 * into registers once, and each 16 columns load op(B)'s k rows once for both rows. The same
 * FMA chain as the tiles (ascending k, one accumulator, from zero), so the same bits. */
enum { SK_MAX = 16 };

#if SNNRT_X86
/* Rows i .. i + R - 1 of C (R = 1 or 2), K constant after inlining. */
INLINE TGT512 void shortk_rows512(const int K, const int R, const gemm *g, const float *b,
                                  int64_t bks, int64_t i) {
    const int64_t ars = a_rs(g), aks = a_ks(g), n = g->n;
    const float alpha = g->alpha, beta = g->beta;
    __m512 av[2][SK_MAX];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int l = 0; l < K; l++) av[r][l] = _mm512_set1_ps(g->a[(i + r) * ars + l * aks]);
    float *cr[2] = {g->c + i * g->ldc, g->c + (i + R - 1) * g->ldc};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 acc[2];
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int l = 0; l < K; l++) {
            __m512 bv = _mm512_loadu_ps(b + l * bks + j);
            __asm__("" : "+v"(bv)); /* one load for both rows, not one folded into each FMA */
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(av[r][l], bv, acc[r]);
        }
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) store512(cr[r] + j, acc[r], (__mmask16)0xFFFF, alpha, beta, NULL, 0);
    }
    if (j < n) {
        const __mmask16 ml = (__mmask16)((1u << (n - j)) - 1);
        __m512 acc[2];
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int l = 0; l < K; l++) {
            const __m512 bv = _mm512_maskz_loadu_ps(ml, b + l * bks + j);
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(av[r][l], bv, acc[r]);
        }
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) store512(cr[r] + j, acc[r], ml, alpha, beta, NULL, 0);
    }
}

/* Rows [i0, i1): pairs while k <= 12 (2k broadcasts and the B rows fit the 32 registers),
 * single rows above. */
#define SK_FN(K)                                                                               \
    static TGT512 void shortk512_##K(const gemm *g, const float *b, int64_t bks, int64_t i0,   \
                                     int64_t i1) {                                             \
        int64_t i = i0;                                                                        \
        if ((K) <= 12)                                                                         \
            for (; i + 2 <= i1; i += 2) shortk_rows512((K), 2, g, b, bks, i);                  \
        for (; i < i1; i++) shortk_rows512((K), 1, g, b, bks, i);                              \
    }
SK_FN(1) SK_FN(2) SK_FN(3) SK_FN(4) SK_FN(5) SK_FN(6) SK_FN(7) SK_FN(8)
SK_FN(9) SK_FN(10) SK_FN(11) SK_FN(12) SK_FN(13) SK_FN(14) SK_FN(15) SK_FN(16)
static void (*const shortk512_tab[SK_MAX])(const gemm *, const float *, int64_t, int64_t,
                                           int64_t) = {
    shortk512_1,  shortk512_2,  shortk512_3,  shortk512_4,  shortk512_5,  shortk512_6,
    shortk512_7,  shortk512_8,  shortk512_9,  shortk512_10, shortk512_11, shortk512_12,
    shortk512_13, shortk512_14, shortk512_15, shortk512_16};
#endif

/* Whether shortk runs its own loop (else it is the dense kind: same result). */
static int shortk_own(const gemm *g) { return avx512() && g->k <= SK_MAX; }

static void shortk_run(const gemm *g) {
#if SNNRT_X86
    if (shortk_own(g)) {
        const float *b = g->b;
        int64_t bks = g->ldb;
        if (g->tb) b = pack_b(g, &bks);
        void (*fn)(const gemm *, const float *, int64_t, int64_t, int64_t) = shortk512_tab[g->k - 1];
        const int64_t nb = (g->m + 15) / 16; /* blocks of 16 rows (even: pairs stay whole) */
        const int par = g->par > 1 && nb > 1 ? g->par : 1;
        if (par == 1) {
            fn(g, b, bks, 0, g->m);
            return;
        }
#pragma omp parallel for schedule(dynamic, 1) num_threads(par)
        for (int64_t bi = 0; bi < nb; bi++)
            fn(g, b, bks, 16 * bi, 16 * bi + 16 < g->m ? 16 * bi + 16 : g->m);
        return;
    }
#endif
    tiled p;
    tiled_init(&p, g);
    tiled_run(&p);
}

/* ------------------------------------------------------------------ narrow kind */

/* A narrow C (n <= NW_MAX, the 10 outputs of a classifier layer): the tiles would keep one
 * accumulator per row of C with 10 of 16 lanes used and a broadcast load of A per multiply-
 * add. Here C is computed transposed: 32 rows of C at a time, one accumulator per column j
 * and block of 16 rows (the rows in the lanes); op(A)'s 16 x 16 blocks are transposed through
 * a small buffer, so for each l a vector of 16 rows' a(i, l) multiplies the broadcast b(l, j),
 * every lane used and one broadcast shared by 32 rows. Same FMA chain per element as the tiles
 * (ascending l, one accumulator from zero), so the same bits. */
enum { NW_MAX = 12 };

#if SNNRT_X86
INLINE TGT512 void narrow512(const int N, const gemm *g, int64_t i0, int64_t i1) {
    __attribute__((aligned(64))) float at[2][16 * 16];
    __attribute__((aligned(64))) float ct[16 * 16];
    const int64_t ars = a_rs(g), aks = a_ks(g), k = g->k;
    const int64_t bls = g->tb ? 1 : g->ldb, bjs = g->tb ? g->ldb : 1; /* b(l, j) */
    for (int64_t r0 = i0; r0 < i1; r0 += 32) {
        const int rv[2] = {(int)(i1 - r0 < 16 ? i1 - r0 : 16),
                           (int)(i1 - r0 - 16 < 0 ? 0 : i1 - r0 - 16 < 16 ? i1 - r0 - 16 : 16)};
        __m512 acc[2][NW_MAX];
#pragma GCC unroll 12
        for (int j = 0; j < N; j++) acc[0][j] = acc[1][j] = _mm512_setzero_ps();
        for (int64_t l0 = 0; l0 < k; l0 += 16) {
            const int lv = (int)(k - l0 < 16 ? k - l0 : 16);
            for (int h = 0; h < 2; h++) {
                if (!rv[h]) continue;
                if (aks == 1 && rv[h] == 16 && lv == 16)
                    transpose16_inl(g->a + (r0 + 16 * h) * ars + l0, ars, 16, 16, at[h], 16);
                else if (aks == 1) /* at[h][l * 16 + r] = a(r0 + 16h + r, l0 + l) */
                    transpose16_512(g->a + (r0 + 16 * h) * ars + l0, ars, rv[h], lv, at[h], 16);
                else
                    for (int l = 0; l < lv; l++)
                        for (int r = 0; r < 16; r++)
                            at[h][l * 16 + r] = r < rv[h] ? g->a[(r0 + 16 * h + r) * ars + (l0 + l) * aks] : 0.0f;
            }
            const float *bl = g->b + l0 * bls;
            for (int l = 0; l < lv; l++, bl += bls) {
                const __m512 a0 = _mm512_load_ps(at[0] + 16 * l), a1 = _mm512_load_ps(at[1] + 16 * l);
#pragma GCC unroll 12
                for (int j = 0; j < N; j++) {
                    const __m512 bv = _mm512_set1_ps(bl[j * bjs]);
                    acc[0][j] = _mm512_fmadd_ps(a0, bv, acc[0][j]);
                    acc[1][j] = _mm512_fmadd_ps(a1, bv, acc[1][j]);
                }
            }
        }
        const __mmask16 mj = (__mmask16)((1u << N) - 1);
        for (int h = 0; h < 2; h++) {
            if (!rv[h]) continue;
#pragma GCC unroll 12
            for (int j = 0; j < N; j++) _mm512_store_ps(ct + 16 * j, acc[h][j]);
            /* ct[j][r] -> at[0][r][j] */
            transpose16_512(ct, 16, N, rv[h], at[0], 16);
            for (int r = 0; r < rv[h]; r++)
                store512(g->c + (r0 + 16 * h + r) * g->ldc, _mm512_load_ps(at[0] + 16 * r), mj,
                         g->alpha, g->beta, NULL, 0);
        }
    }
}

#define NW_FN(N) \
    static TGT512 void narrow512_##N(const gemm *g, int64_t i0, int64_t i1) { narrow512((N), g, i0, i1); }
NW_FN(1) NW_FN(2) NW_FN(3) NW_FN(4) NW_FN(5) NW_FN(6) NW_FN(7) NW_FN(8) NW_FN(9) NW_FN(10)
NW_FN(11) NW_FN(12)
static void (*const narrow512_tab[NW_MAX])(const gemm *, int64_t, int64_t) = {
    narrow512_1, narrow512_2, narrow512_3, narrow512_4,  narrow512_5,  narrow512_6,
    narrow512_7, narrow512_8, narrow512_9, narrow512_10, narrow512_11, narrow512_12};
#endif

/* Whether narrow runs its own loop (else it is the dense kind: same result). */
static int narrow_own(const gemm *g) { return avx512() && g->n <= NW_MAX; }

static void narrow_run(const gemm *g) {
#if SNNRT_X86
    if (narrow_own(g)) {
        void (*fn)(const gemm *, int64_t, int64_t) = narrow512_tab[g->n - 1];
        const int64_t nb = (g->m + 31) / 32;
        const int par = g->par > 1 && nb > 1 ? g->par : 1;
        if (par == 1) {
            fn(g, 0, g->m);
            return;
        }
#pragma omp parallel for schedule(dynamic, 1) num_threads(par)
        for (int64_t bi = 0; bi < nb; bi++) fn(g, 32 * bi, 32 * bi + 32 < g->m ? 32 * bi + 32 : g->m);
        return;
    }
#endif
    tiled p;
    tiled_init(&p, g);
    tiled_run(&p);
}

/* ------------------------------------------------------------------ running a kind */

/* For a kind that does not add a bias as it stores: C filled with the bias, then beta 1 (the
 * same operations, so the same bits). */
static gemm bias_into_c(const gemm *g) {
    gemm h = *g;
    for (int64_t i = 0; i < g->m; i++) memcpy(g->c + i * g->ldc, g->bias, (size_t)g->n * sizeof(float));
    h.bias = NULL;
    h.beta = 1.0f;
    return h;
}

static void run_kind(int kind, const gemm *g) {
    int64_t nnz;
    tiled p;
    if (g->bias && kind != SNNRT_KERNEL_DENSE && kind != SNNRT_KERNEL_ROWS &&
        kind != SNNRT_KERNEL_COLS) {
        const gemm h = bias_into_c(g);
        run_kind(kind, &h);
        return;
    }
    switch (kind) {
    case SNNRT_KERNEL_BLAS:
        snnrt_blas_sgemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->b, g->ldb,
                         g->beta, g->c, g->ldc);
        return;
    case SNNRT_KERNEL_ROWS:
        tiled_init(&p, g);
        rows_lists(&p, masks_a(g, &nnz));
        tiled_run(&p);
        return;
    case SNNRT_KERNEL_COLS:
        tiled_init(&p, g);
        cols_lists(&p, masks_b(g, &nnz));
        tiled_run(&p);
        return;
    case SNNRT_KERNEL_EVENT:
        event_run(g, g->hint_bin);
        return;
    case SNNRT_KERNEL_SHORTK:
        shortk_run(g);
        return;
    case SNNRT_KERNEL_NARROW:
        narrow_run(g);
        return;
    case SNNRT_KERNEL_GROUPS:
        groups_run(g);
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
              .a = a, .lda = lda, .b = b, .ldb = ldb, .c = c, .ldc = ldc, .par = 1,
              .hint_bin = 1};
    return g;
}

void snnrt_kernel_run(int kind, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc) {
    gemm g = make_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    g.par = threads();
    run_kind(kind, &g);
}

void snnrt_kernel_run_bias(int kind, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                           int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                           int64_t ldb, const float *bias, float *c, int64_t ldc) {
    gemm g = make_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
    g.par = threads();
    g.bias = bias;
    run_kind(kind, &g);
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
    int kind, hint_bin;  /* the last choice, kept for up to DECIDE_EVERY calls while op(A)'s */
    double dens_at;      /* density (probed on a few rows) stays near this */
    int64_t until;       /* calls count at which to choose again */
} site;

/* Two tables of sites: the statistics, shared by the threads (under the lock, and only while
 * statistics are on), and each thread's own choices (no lock). With one shared table the lock
 * and the call counter's cache line went back and forth between the two row blocks' threads at
 * every call: `pick` was 3 % of the CPU of a two-thread training step. Each thread then chooses
 * for itself, which changes nothing but speed (every own kind gives the same bits). */
static site sites[NSITES];
static site site_overflow; /* memory for calls past NSITES distinct sites */
static _Thread_local site choices[NSITES];
static _Thread_local site choice_overflow;
static int stats_on = -1;  /* -1: read SNNRT_KERNEL_REPORT at the first call */
static char sites_lock;    /* guards `sites` */

static void lock(void) {
    while (__atomic_test_and_set(&sites_lock, __ATOMIC_ACQUIRE)) {
    }
}
static void unlock(void) { __atomic_clear(&sites_lock, __ATOMIC_RELEASE); }

int snnrt_kernel_report_requested(void) {
    const char *e = getenv("SNNRT_KERNEL_REPORT");
    return e && *e && strcmp(e, "0") != 0;
}

void snnrt_kernel_stats_enable(int on) { stats_on = on != 0; }

void snnrt_kernel_stats_reset(void) {
    lock();
    memset(sites, 0, sizeof sites);
    memset(&site_overflow, 0, sizeof site_overflow);
    unlock();
    memset(choices, 0, sizeof choices);
    memset(&choice_overflow, 0, sizeof choice_overflow);
}

/* g's site in table t (NSITES entries, open addressing), or the overflow entry. */
static site *site_find(site *t, site *overflow, const gemm *g) {
    uint64_t h = (uint64_t)g->m * 1000003u ^ (uint64_t)g->n * 10007u ^ (uint64_t)g->k * 101u ^
                 (uint64_t)(g->ta * 2 + g->tb);
    for (int i = 0; i < NSITES; i++) {
        site *s = &t[(h + (uint64_t)i) % NSITES];
        if (!s->used) {
            s->used = 1;
            s->ta = g->ta, s->tb = g->tb, s->m = g->m, s->n = g->n, s->k = g->k;
            return s;
        }
        if (s->ta == g->ta && s->tb == g->tb && s->m == g->m && s->n == g->n && s->k == g->k)
            return s;
    }
    return overflow;
}

static int site_cmp(const void *x, const void *y) {
    const site *a = x, *b = y;
    return a->seconds < b->seconds ? 1 : a->seconds > b->seconds ? -1 : 0;
}

void snnrt_kernel_report(FILE *f) {
    site sorted[NSITES];
    int n = 0;
    double total = 0;
    lock();
    for (int i = 0; i < NSITES; i++) {
        int64_t t = 0;
        for (int k = 0; k < SNNRT_KERNEL_COUNT; k++) t += sites[i].per_kind[k];
        if (sites[i].used && t) {
            sorted[n] = sites[i];
            sorted[n].calls = t; /* the calls timed (statistics may start late) */
            total += sites[i].seconds;
            n++;
        }
    }
    unlock();
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
        if (s->density_n && s->density_sum >= 0) snprintf(dens, sizeof dens, "%.3f", s->density_sum / (double)s->density_n);
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

/* Estimated cost of one event step (one list entry of each of EV_R rows), in the units of
 * step_cost: a load of the index, of V vectors of B, a broadcast of the value unless 0/1.
 * Calibrated with bench/kernels.c against the dense kind (Zen 5, shared core). */
static double ev_step_cost(int V, int bin) {
    return (EV_R * (1 + V) + (bin ? 0 : EV_R)) / 1.5 + 0.7;
}

/* Whether our dense kernel is used rather than OpenBLAS for a dense product of this shape.
 * Measured (bench/kernels.c) at least as fast as OpenBLAS's Haswell kernels on every shape of
 * a training step, so always where AVX-512 runs; without it OpenBLAS. */
static int own_dense(void) { return avx512(); }

enum { SAMPLE = 32, PROBE = 4 };

#if SNNRT_X86
/* nz_masks_512 of one row that also tells whether every non-zero is 1. */
TGT512 static int64_t row_masks_bin_512(const float *x, int64_t cols, uint16_t *out, int *bin) {
    const int64_t nch = (cols + 15) / 16;
    const __m512 z = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    int64_t nnz = 0;
    __mmask16 notone = 0;
    for (int64_t q = 0; q < nch; q++) {
        const __mmask16 in = 16 * q + 16 <= cols ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - 16 * q)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(in, x + 16 * q);
        const __mmask16 m = _mm512_mask_cmp_ps_mask(in, v, z, _CMP_NEQ_UQ);
        notone |= _mm512_mask_cmp_ps_mask(m, v, one, _CMP_NEQ_UQ);
        out[q] = (uint16_t)m;
        nnz += __builtin_popcount(m);
    }
    if (notone) *bin = 0;
    return nnz;
}
#endif

/* Masks of `ns` stored rows spread evenly over `rows` (row s * rows / ns); *binary = every
 * non-zero seen is 1. Returns the non-zeros seen. */
static int64_t sample_masks(const float *x, int64_t rows, int64_t cols, int64_t ld, int64_t ns,
                            uint16_t *out, int *binary) {
    const int64_t nch = (cols + 15) / 16;
    int64_t nnz = 0;
    *binary = 1;
    for (int64_t si = 0; si < ns; si++) {
        const float *xr = x + (si * rows / ns) * ld;
#if SNNRT_X86
        if (avx512()) {
            nnz += row_masks_bin_512(xr, cols, out + si * nch, binary);
            continue;
        }
#endif
        nnz += nz_masks_c(xr, 1, cols, ld, out + si * nch);
        for (int64_t l = 0; l < cols && *binary; l++)
            if (xr[l] != 0.0f && xr[l] != 1.0f) *binary = 0;
    }
    return nnz;
}

/* The kind for this product, from its shape and the density of a sample of each operand's
 * rows; *density gets the sampled density of the operand that decided (or -1). Only the
 * speed depends on the estimate: the own kinds give equal results. */
/* Density of op(A)'s stored matrix on `ns` rows spread over it (the probe that decides whether
 * a site's last choice still holds: spike density changes over the time steps). */
static double probe_a(const gemm *g, int64_t ns) {
    const int64_t rows = g->ta ? g->k : g->m, cols = g->ta ? g->m : g->k;
    if (ns > rows) ns = rows;
    uint16_t *mk = scratch_get(S_AMASK, (size_t)(ns * ((cols + 15) / 16)) * sizeof(uint16_t));
    int bin;
    return (double)sample_masks(g->a, rows, cols, g->lda, ns, mk, &bin) / ((double)ns * (double)cols);
}

/* The fraction of (sampled row, range of w columns) pairs with a non-zero: what a list per
 * range of w columns keeps (mk: ns rows of nz_masks over n columns, nch chunks each). */
static double range_hits(const uint16_t *mk, int64_t ns, int64_t nch, int64_t n, int64_t w) {
    const int64_t nr = (n + w - 1) / w;
    int64_t hit = 0;
    for (int64_t si = 0; si < ns; si++)
        for (int64_t ri = 0; ri < nr; ri++)
            hit += mask_any(mk + si * nch, ri * w, (ri + 1) * w < n ? (ri + 1) * w : n);
    return (double)hit / ((double)ns * (double)nr);
}

static int choose(gemm *g, double *density, double *dens_probe) {
    int R, V;
    tile_shape(g->m, g->n, &R, &V);
    const int64_t ngroups = (g->m + R - 1) / R, npanels = (g->n + 16 * V - 1) / (16 * V);
    const double m = (double)g->m, n = (double)g->n, k = (double)g->k;
    const double dense = (double)ngroups * (double)npanels * k * step_cost(R, V);
    const int own = own_dense();
    double best = own ? dense : 1.25 * dense;
    int kind = own ? SNNRT_KERNEL_DENSE : SNNRT_KERNEL_BLAS;
    double dens_a = -1, dens_b = -1;
    *density = -1;

    /* op(A): sample stored rows */
    {
        const int64_t rows = g->ta ? g->k : g->m, cols = g->ta ? g->m : g->k;
        const int64_t nch = (cols + 15) / 16, ns = rows < SAMPLE ? rows : SAMPLE;
        uint16_t *mk = scratch_get(S_AMASK, (size_t)(ns * nch) * sizeof(uint16_t));
        int bin;
        const int64_t nnz = sample_masks(g->a, rows, cols, g->lda, ns, mk, &bin);
        dens_a = (double)nnz / ((double)ns * (double)cols);
        g->hint_bin = bin;
        double ufrac = 1.0, group_cost = 0.0; /* fraction of (row group, k) the rows kind
                                               * keeps; cost of making the groups */
        if (!g->ta) {
            /* the sampled rows grouped as rows_lists groups all of them: 32 rows have fewer
             * alike rows to choose from than 128, so the sample keeps more (Fashion-MNIST
             * batches: 0.69-0.74 where the whole batch keeps 0.63-0.66); pulled towards the
             * density to match */
            const int64_t nw = (cols + 63) / 64;
            uint64_t *bits = scratch_get(S_BITS, (size_t)((ns + 1) * nw) * sizeof(uint64_t));
            int32_t *work = scratch_get(S_PERM, (size_t)(4 * ns + cols + 2) * sizeof(int32_t));
            masks_to_bits(mk, ns, nch, bits, nw);
            const int64_t kept = group_items(bits, ns, nw, cols, R, work, work + ns,
                                             bits + ns * nw, NULL, 0, NULL);
            const double f = (double)kept / ((double)ns * (double)cols);
            ufrac = f > dens_a ? dens_a + 0.65 * (f - dens_a) : f;
            /* the grouping: up to GROUP_WIN candidates per added row, nw words each */
            const int64_t win = g->m - 1 < GROUP_WIN ? g->m - 1 : GROUP_WIN;
            group_cost = (double)ngroups * (R - 1) * (double)win * (double)((g->k + 63) / 64);
        } else {
            int64_t hit = 0;
            for (int64_t si = 0; si < ns; si++)
                for (int64_t gi = 0; gi < ngroups; gi++) {
                    const int64_t lo = gi * R, hi = lo + R < g->m ? lo + R : g->m;
                    hit += mask_any(mk + si * nch, lo, hi);
                }
            ufrac = (double)hit / ((double)ns * (double)ngroups);
        }
        /* masks (a pass over A), row counts and the OR of each group's rows: about 10 per
         * 16 elements; a list entry per kept k: 3; the greedy grouping about 1 per candidate
         * word (35 us of 977 on x W1^T 128 x 1000 x 784; measured, bench/kernels.c) */
        const double rows_cost = dense * ufrac + m * k / 16.0 * 10.0 +
                                 (double)ngroups * ufrac * k * 3.0 + group_cost;
        if (rows_cost < best) best = rows_cost, kind = SNNRT_KERNEL_ROWS;
        const int ev_v = ev_panel_v(g->n);
        const double ev_panels = (double)((g->n + 16 * ev_v - 1) / (16 * ev_v));
        /* compressing a row costs about 8 per 16 elements (vpcompressd, four chunks per mask
         * move; 5 in isolation, more inside a training step), ta = 1 (masks, then a scalar
         * walk) about 16 */
        const double event = m * k / 16.0 * (g->ta ? 16.0 : 8.0) + k * n / 16.0 * 2.0 +
                             dens_a * 1.15 * k * (double)((g->m + EV_R - 1) / EV_R) * ev_panels *
                                 ev_step_cost(ev_v, bin);
        if (event < best) best = event, kind = SNNRT_KERNEL_EVENT;
    }

    /* op(B) stored row-major: sample its rows, count (row, panel) pairs with a non-zero */
    if (!g->tb) {
        const int64_t nch = (g->n + 15) / 16, ns = g->k < SAMPLE ? g->k : SAMPLE;
        uint16_t *mk = scratch_get(S_BMASK, (size_t)(ns * nch) * sizeof(uint16_t));
        int bin;
        const int64_t nnz = sample_masks(g->b, g->k, g->n, g->ldb, ns, mk, &bin);
        dens_b = (double)nnz / ((double)ns * n);
        const double frac = range_hits(mk, ns, nch, g->n, 16 * V);
        /* masks of B, then a test per (row of B, panel) */
        const double cols = dense * frac + k * n / 16.0 * 4.0 + k * (double)npanels * 5.0;
        if (cols < best) best = cols, kind = SNNRT_KERNEL_COLS;
        if (groups_own(g)) {
            /* (row of B, group of GR_R columns) pairs with a non-zero; a step of 16 FMAs and 9
             * loads per kept pair and band (about 0.9 of a 6 x 4 tile's cost per FMA, C model),
             * the copy of A and the lists (about 2 and 6 per 16 elements), 60 per 16 x 16
             * transposed block of C */
            const int64_t ngr = (g->n + GR_R - 1) / GR_R;
            const double gfrac = range_hits(mk, ns, nch, g->n, GR_R);
            const double bands = (double)((g->m + GR_BAND - 1) / GR_BAND);
            const double groups = bands * (double)ngr * gfrac * k * 8.0 + k * m / 16.0 * 2.0 +
                                  k * n / 16.0 * 6.0 + m * n / 256.0 * 60.0;
            if (groups < best) best = groups, kind = SNNRT_KERNEL_GROUPS;
        }
    }
    /* a short k: rows of C whole, k B loads per 16 columns shared by a pair of rows (about
     * 0.7 of the tiles' time on 128 x 1000 x 10, bench/RESULTS.md "Layer-2 kernels") */
    if (shortk_own(g)) {
        const double chunks = (double)((g->n + 15) / 16);
        const double sk = g->k <= 12 ? (double)((g->m + 1) / 2) * chunks * k * 0.8
                                     : m * chunks * k * 0.6;
        if (sk < best) best = sk, kind = SNNRT_KERNEL_SHORTK;
    }
    /* a narrow C: 32 rows per pass, n broadcasts of B per l shared by 32 rows, A transposed
     * on the way (about 0.85 of the tiles' time on 128 x 10 x 1000, 0.75 on 64 rows) */
    if (narrow_own(g)) {
        const double nw = (double)((g->m + 31) / 32) * k * (n + 8.0);
        if (nw < best) best = nw, kind = SNNRT_KERNEL_NARROW;
    }
    if (!own && kind != SNNRT_KERNEL_BLAS && best > 0.6 * dense) kind = SNNRT_KERNEL_BLAS;
    *density = kind == SNNRT_KERNEL_COLS || kind == SNNRT_KERNEL_GROUPS ? dens_b : dens_a;
    *dens_probe = probe_a(g, PROBE);
    return kind;
}

/* A site's choice is kept for up to this many calls while a probe of op(A)'s density (4 rows,
 * every PROBE_EVERY-th call) stays within 25 % (+ 0.01) of its value at the choice: a time
 * step's products repeat every step, but spikes thin out or thicken over the steps. The choice
 * among own kinds changes only the speed, never the result. Probing every call cost about 3 %
 * of a two-thread Tutorial 5 iteration (row_masks_bin_512 in perf). */
enum { DECIDE_EVERY = 32, PROBE_EVERY = 4 };

/* The kind for g (forced, or the calling thread's choice for g's shape, kept or made again),
 * with g->hint_bin set; *density gets the sampled density when a choice was made (else -1). */
static int pick(gemm *g, double *density) {
    int kind = forced_kind();
    *density = -1;
    site *s = site_find(choices, &choice_overflow, g);
    const int64_t calls = s->calls++;
    if (kind != SNNRT_KERNEL_AUTO) return kind;
    int again = calls >= s->until || s == &choice_overflow;
    if (!again && calls % PROBE_EVERY == 0) {
        const double d = probe_a(g, PROBE);
        again = fabs(d - s->dens_at) > 0.25 * s->dens_at + 0.01;
    }
    if (!again) {
        g->hint_bin = s->hint_bin;
        return s->kind;
    }
    double dens_at;
    kind = choose(g, density, &dens_at);
    s->kind = kind;
    s->hint_bin = g->hint_bin;
    s->dens_at = dens_at;
    s->until = calls + 1 + DECIDE_EVERY;
    return kind;
}

/* The statistics of one call of g (statistics on). */
static void record(const gemm *g, int kind, double density, double seconds) {
    lock();
    site *s = site_find(sites, &site_overflow, g);
    s->calls++;
    s->seconds += seconds;
    s->per_kind[kind]++;
    if (density >= 0) s->density_sum += density, s->density_n++;
    unlock();
}

/* ------------------------------------------------------------------ joint products */

/* --profile: the seconds since *t0 go to phase ph of this member's training call, and *t0
 * moves on (nothing while profiling is off or in an evaluation's forward). */
static inline void prof_mark(int32_t rank, snnrt_prof_phase ph, double *t0) {
    if (!snnrt_profile_on || !snnrt_profile_call) return;
    const double t = snnrt_now();
    snnrt_profile_add(rank, ph, t - *t0);
    *t0 = t;
}

/* Inside a team of row blocks (snnrt_team.c), a product that reads the batch input is done
 * once for the whole batch by all members together:
 *
 *   rows form  C_k = x_k op(B) (the input layer: x W1^T): one product of the whole x, M = B,
 *              row i of C in block i / rows's C; work handed out by column panel, each member
 *              packing the panels it takes (W1^T is packed once per batch, not once per block);
 *   sum form   C_k = op(A_k)^T x_k where C_k is block k's gradient of a parameter (the input
 *              layer's weight gradient acc^T x): C = (1/n) sum_k C_k into block 0's gradient, the
 *              parameter marked joint so the blocks' sum skips it ("joint sums" below).
 *
 * Every member calls the same products in the same order (same code, equal rows). In the rows
 * form rank 0 checks at a barrier that the members' calls agree, chooses the kind (a tiled one:
 * dense, rows or cols) and makes the lists; a member takes units from a shared counter. Each
 * element of C is still one accumulator over k in ascending order, so the rows form gives the
 * bits of the per-block products (up to the sign of a zero). */
enum { JOINT_MIN = 1 << 22 }; /* multiply-adds below which a product is not worth the barriers */
enum { JOINT_NONE, JOINT_ROWS, JOINT_SUM };

static struct {
    int ok, kind;
    gemm g;                /* the whole batch's product */
    tiled p;
    float *cblk[SNNRT_MAX_SHARDS];
    snnrt_units split;     /* the units, a share per member (snnrt_pool.c) */
    int64_t units;         /* units in all */
    int64_t chunk;         /* tiles per unit where no panel is packed */
    int split_lists;       /* rows kind, rows form: each member groups its own block's rows */
    int32_t *perm;         /* then the shared row order, [n * rows] (grown as needed) */
    size_t perm_cap;
    double density, t0;
} jt;

/* The joint form of g for member `rank` of t, from g alone (every member decides the same). */
static int joint_form(const snnrt_team *t, int32_t rank, const gemm *g, int32_t *param) {
    if (t->n < 2 || !avx512() || (double)g->m * (double)g->n * (double)g->k < JOINT_MIN)
        return JOINT_NONE;
    const int fk = forced_kind();
    if (fk != SNNRT_KERNEL_AUTO && fk != SNNRT_KERNEL_DENSE && fk != SNNRT_KERNEL_ROWS &&
        fk != SNNRT_KERNEL_COLS && fk != SNNRT_KERNEL_GROUPS)
        return JOINT_NONE;
    const float *xk = t->x + rank * t->rows * t->x_cols;
    if (!g->ta && g->m == t->rows && g->a == xk && g->lda == t->x_cols) return JOINT_ROWS;
    if (g->ta && !g->tb && g->k == t->rows && g->b == xk && g->ldb == t->x_cols &&
        g->beta == 0.0f && !g->bias && g->ldc == g->n)
        for (int32_t i = 0; i < t->m->n_params; i++)
            if (t->grads[rank][i] == g->c && t->m->params[i].size == g->m * g->n) {
                *param = i;
                return JOINT_SUM;
            }
    return JOINT_NONE;
}

/* Rank 0, once every member's call is known: do they agree? (They do when the generated code
 * is what made them; anything else runs per block.) The whole batch's product without C. */
static int joint_agree(const snnrt_team *t) {
    const gemm *g0 = t->call[0];
    for (int32_t k = 1; k < t->n; k++) {
        const gemm *g = t->call[k];
        if (g->ta != g0->ta || g->tb != g0->tb || g->m != g0->m || g->n != g0->n ||
            g->k != g0->k || g->alpha != g0->alpha || g->beta != g0->beta ||
            g->lda != g0->lda || g->ldb != g0->ldb || g->ldc != g0->ldc || g->b != g0->b ||
            g->bias != g0->bias)
            return 0;
    }
    jt.g = *g0;
    jt.g.par = 1;
    jt.g.m = t->n * t->rows;
    jt.g.a = t->x;
    for (int32_t k = 0; k < t->n; k++) jt.cblk[k] = ((const gemm *)t->call[k])->c;
    return 1;
}

/* The rows kind's grouping for the rows form split by member: member r groups the rows of its
 * own block (joint_rows_part) into the groups from r * ceil(rows / R). The greedy grouping
 * looks only GROUP_WIN rows ahead, so groups within a block keep about what groups over the
 * whole batch keep, and the lists no longer hold up the other members (one thread made them in
 * 36-50 us a batch while the other waited). A block's last group, if shorter than R, is a tile
 * of R rows ending at the block's end whose first rows (the previous group's) are not stored,
 * as tiled_init does for the last group of a product. */
static int joint_rows_split(const snnrt_team *t) {
    tiled *p = &jt.p;
    const int64_t R = p->R, per = (t->rows + R - 1) / R, ng = t->n * per;
    if (t->rows < R) return 0;
    if (!grow((void **)&jt.perm, &jt.perm_cap, (size_t)(t->n * t->rows) * sizeof(int32_t)))
        return 0;
    p->ngroups = ng;
    p->gstart = scratch_get(S_LOFF, (size_t)(2 * ng + 2 * p->npanels + 8) * sizeof(int64_t));
    p->lens = p->gstart + ng;
    p->lists = scratch_get(S_LIST, (size_t)(ng * jt.g.k) * sizeof(int32_t));
    p->lstride = jt.g.k;
    p->per_panel = 0;
    p->perm = jt.perm;
    for (int32_t r = 0; r < t->n; r++)
        for (int64_t q = 0; q < per; q++) {
            const int64_t end = (r + 1) * t->rows, s0 = r * t->rows + q * R;
            p->gstart[r * per + q] = s0 + R <= end ? s0 : end - R;
        }
    return 1;
}

/* Member `rank`'s part of joint_rows_split: masks, groups and lists of its block's rows. */
static void joint_rows_part(const snnrt_team *t, int32_t rank) {
    const gemm *g = &jt.g;
    tiled *p = &jt.p;
    const int64_t rows = t->rows, r0 = rank * rows, k = g->k, R = p->R;
    const int64_t nch = (k + 15) / 16, nw = (k + 63) / 64, per = (rows + R - 1) / R;
    uint16_t *mk = scratch_get(S_AMASK, (size_t)(rows * nch) * sizeof(uint16_t));
    nz_masks(g->a + r0 * g->lda, rows, k, g->lda, mk);
    uint64_t *bits = scratch_get(S_BITS, (size_t)((rows + 1) * nw) * sizeof(uint64_t));
    masks_to_bits(mk, rows, nch, bits, nw);
    int32_t *work = scratch_get(S_PERM, (size_t)(3 * rows + k + 2) * sizeof(int32_t));
    int32_t *perm = jt.perm + r0;
    group_items(bits, rows, nw, k, (int)R, perm, work, bits + rows * nw,
                (int32_t *)p->lists + rank * per * k, k, (int64_t *)p->lens + rank * per);
    for (int64_t i = 0; i < rows; i++) perm[i] += (int32_t)r0;
}

/* Tiles per unit of a product that n members share (no panel packing): a column panel's row
 * groups cut in n runs (a run may go on into the next panel). Against units of 8 tiles (48
 * rows) this took 0.91 of the time for Tutorial 5's acc^T x at 2 threads when that was one such
 * product (9 pairs of alternating runs, every pair faster; median 632 -> 573 us a call). Long
 * runs keep each member's reads of A's lines and writes of C's rows apart from the other's;
 * that this is the cause is a guess, not measured. */
static int64_t run_tiles(const tiled *p, int32_t n) { return (p->ngroups + n - 1) / n; }

/* Rank 0: the kind and the lists for jt.g (or, split_lists, where each member puts them), and
 * the units. */
static void joint_plan(const snnrt_team *t) {
    jt.t0 = stats_on ? now_s() : 0;
    int kind = pick(&jt.g, &jt.density);
    if (kind != SNNRT_KERNEL_DENSE && kind != SNNRT_KERNEL_ROWS && kind != SNNRT_KERNEL_COLS)
        kind = SNNRT_KERNEL_DENSE;
    jt.kind = kind;
    int64_t nnz;
    tiled_init(&jt.p, &jt.g);
    jt.split_lists = kind == SNNRT_KERNEL_ROWS && !jt.g.ta && joint_rows_split(t);
    if (kind == SNNRT_KERNEL_ROWS && !jt.split_lists) rows_lists(&jt.p, masks_a(&jt.g, &nnz));
    else if (kind == SNNRT_KERNEL_COLS) cols_lists(&jt.p, masks_b(&jt.g, &nnz));
    jt.p.cblk = jt.cblk;
    jt.p.blk_rows = t->rows;
    jt.chunk = run_tiles(&jt.p, t->n);
    jt.units = jt.p.panel_pack ? jt.p.npanels
                               : (jt.p.ngroups * jt.p.npanels + jt.chunk - 1) / jt.chunk;
    snnrt_units_init(&jt.split, jt.units, t->n);
}

/* Member `rank`'s units: its own share of panels first (the same rows of W1 as it updates in
 * the optimizer step and as its share of the weight gradient: their lines stay in its core's
 * caches, snnrt_pool.c), then what the others have left. */
static void joint_work(int32_t rank) {
    const tiled *p = &jt.p;
    const int64_t ntiles = p->ngroups * p->npanels;
    for (;;) {
        const int64_t u = snnrt_units_next(&jt.split, rank);
        if (u < 0) return;
        if (p->panel_pack) {
            tiled_panel(p, u);
            continue;
        }
        const int64_t t1 = (u + 1) * jt.chunk < ntiles ? (u + 1) * jt.chunk : ntiles;
        for (int64_t ti = u * jt.chunk; ti < t1; ti++) tiled_one(p, ti, NULL);
    }
}

static void dispatch(gemm *g);

/* ------------------------------------------------------------------ joint sums */

/* The sum form without waiting. Members reach a weight gradient acc^T x at different times:
 * the blocks' time loops before it take longer on one vCPU of the shared machine than on the
 * other (Tutorial 5, 2 threads: one member waited 180-280 us an iteration at the old form's
 * first barrier), and the old form also had every member copy its A into one buffer and rank 0
 * plan the whole product (about 50 us) before anyone began.
 *
 * Now C = (1/n) (P_0 + P_1 + ... + P_{n-1}), P_k = op(A_k)^T x_k over block k's rows alone,
 * the sum in block order, so the result does not depend on who comes first or takes what
 * (the same bits every run; not those of one product over the whole batch: each P_k is its
 * own accumulator). Every member plans its own block's product on arrival (kind, masks,
 * lists: the tile grid is the same for all, being that of C) and publishes it. Until every
 * block is published, a member computes the published blocks' tiles of P_k into the block's
 * slots (precomputed partials); then all take units of C's tiles, each tile summing its
 * blocks' partials, from a slot where one was precomputed, else computed there, and storing
 * C once. A unit of tiles is the same for both, so a slot is used when the whole unit was
 * precomputed (a flag per block and unit). Units are bands of rows of C, handed out as affine
 * units (snnrt_units): a member's own band first, the one whose rows of the parameter it also
 * packs in x W1^T and updates in the optimizer step. */
static struct {
    tiled part[SUM_PARTS_MAX];     /* member k's product P_k (its own scratch holds the lists) */
    const gemm *call[SUM_PARTS_MAX];
    int32_t param[SUM_PARTS_MAX];
    int ready[SUM_PARTS_MAX];      /* part k published (atomic) */
    snnrt_units pre[SUM_PARTS_MAX]; /* block k's units to precompute, a share per member */
    uint8_t *pre_done[SUM_PARTS_MAX]; /* [units]: block k's unit precomputed (atomic bytes) */
    size_t pre_cap[SUM_PARTS_MAX];
    float *slots[SUM_PARTS_MAX];   /* block k's precomputed tiles, [ntiles, R * 16V] */
    size_t slot_cap[SUM_PARTS_MAX];
    int nready, all, ok;           /* published parts; all published; then: the calls agree */
    int finished;                  /* members done with C (the last one resets the above) */
    int groups;                    /* -1 until the first member chooses: 1 the groups kind for
                                    * every part (units of groups_unit), 0 the tiles */
    gr_part gpart[SUM_PARTS_MAX];  /* member k's groups plan (its own scratch holds it) */
    snnrt_units fin;               /* C's units, a share per member (set with `all`) */
    float alpha;                   /* C = alpha * the sum (set when all are published) */
    int32_t delay_rank, delay_us;  /* tests: a member that arrives late */
} js = {.delay_rank = -1, .groups = -1};

void snnrt_kernel_joint_delay(int32_t rank, int32_t us) {
    js.delay_rank = rank;
    js.delay_us = us;
}

/* A unit: SUM_UNIT_GROUPS whole rows of tiles (row-major), so that a member's share of C is
 * a band of rows, the same as its share of the parameter in the optimizer step and in x W1^T's
 * pack (snnrt_pool.c: the lines stay in its core's caches). */
enum { SUM_UNIT_GROUPS = 2 };

static int64_t sum_chunk(const tiled *p) { return SUM_UNIT_GROUPS * p->npanels; }

static int64_t sum_units(const tiled *p) {
    return (p->ngroups * p->npanels + sum_chunk(p) - 1) / sum_chunk(p);
}

/* The sum job of tile t in unit u: every block's part, from its slot where the unit was
 * precomputed (pre_done), or, `only` >= 0, block `only`'s part alone into its slot. */
static void sum_job_at(int32_t n, int64_t t, int64_t u, int32_t only, sum_job *job) {
    const tiled *p0 = &js.part[only >= 0 ? only : 0]; /* the grid (every part's); C */
    const int64_t pi = t % p0->npanels, gi = t / p0->npanels; /* row-major */
    const int64_t j0 = pi * 16 * p0->V, i0 = p0->gstart[gi], tf = (int64_t)p0->R * 16 * p0->V;
    job->rows = (int)(p0->g.m - i0 < p0->R ? p0->g.m - i0 : p0->R);
    job->cols = (int)(p0->g.n - j0 < 16 * p0->V ? p0->g.n - j0 : 16 * p0->V);
    job->skip = (int)(gi > 0 ? p0->gstart[gi - 1] + p0->R - i0 : 0);
    job->alpha = only >= 0 ? 1.0f : js.alpha; /* js.alpha: set once all are published */
    job->stream = p0->stream;
    job->out = only >= 0 ? js.slots[only] + t * tf : NULL;
    for (int r = 0; r < p0->R; r++) job->cr[r] = p0->g.c + (i0 + r) * p0->g.ldc + j0;
    job->nparts = only >= 0 ? 1 : n;
    for (int32_t q = 0; q < job->nparts; q++) {
        const int32_t k = only >= 0 ? only : q;
        const tiled *p = &js.part[k];
        const int64_t li = p->per_panel ? pi : gi;
        part_job *pj = &job->part[q];
        pj->pre = only < 0 && js.pre_done[k] && __atomic_load_n(&js.pre_done[k][u], __ATOMIC_ACQUIRE)
                      ? js.slots[k] + t * tf
                      : NULL;
        pj->kl = p->lists ? p->lists + li * p->lstride : NULL;
        pj->nk = p->lists ? p->lens[li] : p->g.k;
        pj->ars = a_rs(&p->g);
        pj->aks = a_ks(&p->g);
        pj->a = p->g.a + i0 * pj->ars;
        pj->b = p->bp + j0;
        pj->bks = p->bks;
    }
}

/* As run_tile: the tile's own width (a last panel may be narrower than the others). */
static void run_sum_tile(const tiled *p0, const sum_job *job) {
    const int V = (job->cols + 15) / 16;
#if SNNRT_X86
    if (avx512()) {
        tile512_sum_tab[p0->R - 1][V - 1](job);
        return;
    }
#endif
    tile_sum_c(job, p0->R, V);
}

/* Unit u of the groups kind: C's (only < 0, from each block's slot where the unit was
 * precomputed) or block `only`'s raw sums into its slot. */
static void groups_sum_unit(int32_t n, int64_t u, int32_t only) {
#if SNNRT_X86
    const gemm *g0 = js.call[only >= 0 ? only : 0]; /* C: block 0's gradient */
    gr_job j = {.m = g0->m, .n = g0->n, .ldc = g0->ldc, .c = g0->c, .beta = 0.0f,
                .alpha = only >= 0 ? 1.0f : js.alpha, .nparts = only >= 0 ? 1 : n,
                .out = only >= 0 ? js.slots[only] + u * gr_unit_floats(g0->n) : NULL,
                .stream = only < 0 && c_streams(g0)};
    for (int32_t q = 0; q < j.nparts; q++) {
        const int32_t k = only >= 0 ? only : q;
        j.part[q] = &js.gpart[k];
        j.pre[q] = only < 0 && js.pre_done[k] && __atomic_load_n(&js.pre_done[k][u], __ATOMIC_ACQUIRE)
                       ? js.slots[k] + u * gr_unit_floats(g0->n)
                       : NULL;
    }
    groups_unit(&j, u);
#else
    (void)n, (void)u, (void)only; /* joint sums need AVX-512 (joint_form) */
#endif
}

/* Tiles of unit u: C's (only < 0) or block `only`'s part into its slots. */
static void sum_unit(int32_t n, int64_t u, int32_t only) {
    if (__atomic_load_n(&js.groups, __ATOMIC_ACQUIRE) == 1) {
        groups_sum_unit(n, u, only);
        return;
    }
    const tiled *p0 = &js.part[only >= 0 ? only : 0];
    const int64_t ntiles = p0->ngroups * p0->npanels, chunk = sum_chunk(p0);
    sum_job job;
    for (int64_t t = u * chunk; t < (u + 1) * chunk && t < ntiles; t++) {
        sum_job_at(n, t, u, only, &job);
        run_sum_tile(p0, &job);
    }
}

/* Member `rank` precomputes one unit of a published block, if any is left (from its own share
 * of C's units first: it will likely sum those); returns whether it did. */
static int sum_precompute(int32_t n, int32_t rank) {
    for (int32_t k = 0; k < n; k++) {
        if (!__atomic_load_n(&js.ready[k], __ATOMIC_ACQUIRE) || !js.slots[k] || !js.pre_done[k])
            continue;
        const int64_t u = snnrt_units_next(&js.pre[k], rank);
        if (u < 0) continue;
        sum_unit(n, u, k);
        __atomic_store_n(&js.pre_done[k][u], 1, __ATOMIC_RELEASE);
        return 1;
    }
    return 0;
}

/* Whether the published calls make one sum: same product, same parameter, each into its own
 * block's gradient. (They do when the generated code made them.) */
static int sum_agree(const snnrt_team *t) {
    const gemm *g0 = js.call[0];
    for (int32_t k = 1; k < t->n; k++) {
        const gemm *g = js.call[k];
        if (g->ta != g0->ta || g->tb != g0->tb || g->m != g0->m || g->n != g0->n ||
            g->k != g0->k || g->alpha != g0->alpha || g->ldc != g0->ldc ||
            js.param[k] != js.param[0]) /* equal m and n: the same tile grid */
            return 0;
    }
    return 1;
}

static void joint_sum(snnrt_team *t, int32_t rank, gemm *g, int32_t param) {
    const int32_t n = t->n;
    const double t0 = stats_on ? now_s() : 0;
    if (rank == js.delay_rank && js.delay_us > 0) {
        struct timespec ts = {0, (long)js.delay_us * 1000L};
        nanosleep(&ts, NULL);
    }
    double pt = snnrt_profile_now();
    /* this block's part, published */
    double density;
    int kind = pick(g, &density);
    if (kind != SNNRT_KERNEL_DENSE && kind != SNNRT_KERNEL_ROWS && kind != SNNRT_KERNEL_COLS &&
        kind != SNNRT_KERNEL_GROUPS)
        kind = SNNRT_KERNEL_DENSE;
    /* the groups kind's units are not the tiles': every part is made the way the first member
     * to arrive chose (joint_form: ta = 1, tb = 0 and AVX-512, so groups_own holds) */
    int first = -1;
    __atomic_compare_exchange_n(&js.groups, &first, kind == SNNRT_KERNEL_GROUPS, 0,
                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    const int groups = __atomic_load_n(&js.groups, __ATOMIC_ACQUIRE);
    if (groups) kind = SNNRT_KERNEL_GROUPS;
    else if (kind == SNNRT_KERNEL_GROUPS) kind = SNNRT_KERNEL_COLS;
    int64_t units, slot_floats;
    if (groups) {
#if SNNRT_X86
        groups_plan(g, &js.gpart[rank]);
#endif
        units = gr_units(g->m);
        slot_floats = units * gr_unit_floats(g->n);
    } else {
        tiled *p = &js.part[rank];
        tiled_init(p, g);
        int64_t nnz;
        if (kind == SNNRT_KERNEL_ROWS) rows_lists(p, masks_a(g, &nnz));
        else if (kind == SNNRT_KERNEL_COLS) cols_lists(p, masks_b(g, &nnz));
        units = sum_units(p);
        slot_floats = p->ngroups * p->npanels * (int64_t)p->R * 16 * p->V;
    }
    if (grow((void **)&js.pre_done[rank], &js.pre_cap[rank], (size_t)units))
        memset(js.pre_done[rank], 0, (size_t)units);
    grow((void **)&js.slots[rank], &js.slot_cap[rank], (size_t)slot_floats * sizeof(float));
    snnrt_units_init(&js.pre[rank], units, n);
    js.call[rank] = g;
    js.param[rank] = param;
    last_kind = kind;
    __atomic_store_n(&js.ready[rank], 1, __ATOMIC_RELEASE);
    if (__atomic_add_fetch(&js.nready, 1, __ATOMIC_ACQ_REL) == n) {
        js.ok = sum_agree(t);
        snnrt_units_init(&js.fin, units, n);
        js.alpha = js.call[0]->alpha / (float)n; /* the blocks' weight rows / B */
        __atomic_store_n(&js.all, 1, __ATOMIC_RELEASE);
    }

    prof_mark(rank, SNNRT_PROF_JOINT_LISTS, &pt);

    /* until every block is published: the published blocks' partials */
    for (int32_t r = 0; !__atomic_load_n(&js.all, __ATOMIC_ACQUIRE);) {
        if (sum_precompute(n, rank)) {
            r = 0;
            prof_mark(rank, SNNRT_PROF_JOINT_TILES, &pt);
        } else {
            snnrt_team_pause(r++);
            prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
        }
    }

    if (js.ok) {
        for (int64_t u; (u = snnrt_units_next(&js.fin, rank)) >= 0;) sum_unit(n, u, -1);
    } else {
        /* each block its own product, summed with the others' by the blocks' combine; once
         * no member still reads another's lists */
        snnrt_team_barrier(t);
        prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
        dispatch(g);
    }
    prof_mark(rank, SNNRT_PROF_JOINT_TILES, &pt);
    if (__atomic_add_fetch(&js.finished, 1, __ATOMIC_ACQ_REL) == n) {
        for (int32_t k = 0; k < n; k++) js.ready[k] = 0;
        js.nready = js.all = js.finished = 0;
        __atomic_store_n(&js.groups, -1, __ATOMIC_RELEASE);
    }
    snnrt_team_barrier(t); /* C is complete */
    prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
    if (rank == 0 && js.ok) {
        t->joint[param] = 1;
        if (stats_on) {
            gemm whole = *g;
            whole.k = n * t->rows;
            record(&whole, kind, density, now_s() - t0);
        }
    }
}

static void joint_sgemm(snnrt_team *t, int32_t rank, gemm *g, int form, int32_t param) {
    if (form == JOINT_SUM) {
        joint_sum(t, rank, g, param);
        return;
    }
    double pt = snnrt_profile_now();
    t->call[rank] = g;
    snnrt_team_barrier(t); /* every member's call is known */
    prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
    if (rank == 0) {
        jt.ok = joint_agree(t);
        if (jt.ok) joint_plan(t);
        prof_mark(rank, SNNRT_PROF_JOINT_LISTS, &pt);
    }
    snnrt_team_barrier(t);
    prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
    if (!jt.ok) { /* read before any member can reach the next joint call's first barrier */
        dispatch(g);
        prof_mark(rank, SNNRT_PROF_JOINT_TILES, &pt);
        return;
    }
    if (jt.split_lists) {
        joint_rows_part(t, rank);
        prof_mark(rank, SNNRT_PROF_JOINT_LISTS, &pt);
        snnrt_team_barrier(t); /* every block's groups and lists are made */
        prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
    }
    joint_work(rank);
    last_kind = jt.kind;
    prof_mark(rank, SNNRT_PROF_JOINT_TILES, &pt);
    snnrt_team_barrier(t); /* C is complete */
    prof_mark(rank, SNNRT_PROF_JOINT_WAIT, &pt);
    if (rank == 0 && stats_on) record(&jt.g, jt.kind, jt.density, now_s() - jt.t0);
}

/* The product on the calling thread alone (or split over OpenMP threads where allowed). */
static void dispatch(gemm *g) {
    const double t0 = stats_on ? now_s() : 0;
    double density;
    const int kind = pick(g, &density);
    g->par = threads();
    if (g->par > 1 && kind != SNNRT_KERNEL_BLAS) {
        const double work = (double)g->m * (double)g->n * (double)g->k;
        if (fork_min() <= 0 || work < (double)fork_min()) g->par = 1;
    }
    run_kind(kind, g);
    last_kind = kind;
    if (stats_on) record(g, kind, density, now_s() - t0);
}

static void kernel_sgemm(gemm g) {
    if (stats_on < 0) stats_on = snnrt_kernel_report_requested();
    int32_t rank, param = -1;
    snnrt_team *t = snnrt_team_current(&rank);
    const int form = t ? joint_form(t, rank, &g, &param) : JOINT_NONE;
    if (form != JOINT_NONE) joint_sgemm(t, rank, &g, form, param);
    else dispatch(&g);
}

void snnrt_kernel_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float beta, float *c, int64_t ldc) {
    kernel_sgemm(make_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}

void snnrt_kernel_sgemm_bias(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                             float alpha, const float *a, int64_t lda, const float *b,
                             int64_t ldb, const float *bias, float *c, int64_t ldc) {
    gemm g = make_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc);
    g.bias = bias;
    kernel_sgemm(g);
}
