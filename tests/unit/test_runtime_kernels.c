/* test_runtime_kernels.c: snnrt_sgemm's own kernels and dispatcher (snnrt_kernels.c).
 *
 * Every kind (blas, dense, rows, cols, event) and the automatic choice is compared with a
 * double-precision loop on random problems: all four transpose combinations, beta 0, 1 and
 * general, alpha 1 and not, leading dimensions larger than the matrices, sizes that are not
 * multiples of 16, skinny shapes (a dimension of 1 to 32) and the operand kinds a spiking
 * network produces: dense, 0/1 spikes at 15 % and mostly-zero inputs. The tolerance is
 * 1e-5 times the sum of |terms| of each element (float32 rounding in any summation order).
 *
 * Beyond tolerance, the file checks what the dispatcher relies on: the own kinds agree bit for
 * bit with each other (each sums over ascending k, skipping only exact zeros), with any thread
 * count, and on the portable path (as on a CPU without AVX-512); beta = 0 ignores NaN in C;
 * columns past n and rows past m are never written; the report names the sites and kinds.
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    float *a, *b, *c0;
} prob;

enum { DENSE, SPIKES, HALF_ZERO, ALL_ZERO, RARE_SPIKES, ALL_ONE };

static void fill(snnrt_rng *g, float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        const float u = snnrt_rng_float(g);
        switch (kind) {
        case SPIKES: x[i] = snnrt_rng_float(g) < 0.15f ? 1.0f : 0.0f; break;
        case HALF_ZERO: x[i] = snnrt_rng_float(g) < 0.5f ? 0.0f : u; break;
        case ALL_ZERO: x[i] = 0.0f; break;
        case RARE_SPIKES: x[i] = snnrt_rng_float(g) < 0.01f ? 1.0f : 0.0f; break;
        case ALL_ONE: x[i] = 1.0f; break;
        default: x[i] = u - 0.5f;
        }
    }
}

static int ld_extra = -1; /* padding of every leading dimension; -1: random 0..2 */

/* A random problem; op(A) of kind ka, op(B) of kind kb. */
static prob make(snnrt_rng *g, int ta, int tb, int64_t m, int64_t n, int64_t k, int ka, int kb,
                 float alpha, float beta) {
    prob p = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta};
    const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    p.lda = ac + (ld_extra >= 0 ? ld_extra : (int64_t)snnrt_rng_below(g, 3));
    p.ldb = bc + (ld_extra >= 0 ? ld_extra : (int64_t)snnrt_rng_below(g, 3));
    p.ldc = n + (ld_extra >= 0 ? ld_extra : (int64_t)snnrt_rng_below(g, 3));
    p.a = malloc(sizeof(float) * (size_t)(ar * p.lda));
    p.b = malloc(sizeof(float) * (size_t)(br * p.ldb));
    p.c0 = malloc(sizeof(float) * (size_t)((m + 1) * p.ldc));
    fill(g, p.a, ar * p.lda, ka);
    fill(g, p.b, br * p.ldb, kb);
    fill(g, p.c0, (m + 1) * p.ldc, DENSE);
    return p;
}

static void drop(prob *p) { free(p->a), free(p->b), free(p->c0); }

/* Checks c against the double reference: every element within 1e-5 * sum |terms| (+ beta
 * part), everything outside the m x n block unchanged. Returns 1 if all is well. */
static int check(const prob *p, const float *c) {
    for (int64_t i = 0; i <= p->m; i++)
        for (int64_t j = 0; j < p->ldc; j++) {
            const float old = p->c0[i * p->ldc + j];
            if (i == p->m || j >= p->n) {
                if (memcmp(&c[i * p->ldc + j], &old, sizeof old)) return 0;
                continue;
            }
            double s = 0, mag = 0;
            for (int64_t l = 0; l < p->k; l++) {
                const double av = p->ta ? p->a[l * p->lda + i] : p->a[i * p->lda + l];
                const double bv = p->tb ? p->b[j * p->ldb + l] : p->b[l * p->ldb + j];
                s += av * bv;
                mag += fabs(av * bv);
            }
            const double cb = p->beta == 0.0f ? 0.0 : (double)p->beta * old;
            const double want = p->alpha * s + cb;
            const double tol = 1e-5 * (fabs(p->alpha) * mag + fabs(cb)) + 1e-30;
            if (!(fabs((double)c[i * p->ldc + j] - want) <= tol)) return 0;
        }
    return 1;
}

static float *run(const prob *p, int kind) {
    float *c = malloc(sizeof(float) * (size_t)((p->m + 1) * p->ldc));
    memcpy(c, p->c0, sizeof(float) * (size_t)((p->m + 1) * p->ldc));
    if (kind == SNNRT_KERNEL_AUTO)
        snnrt_sgemm(p->ta, p->tb, p->m, p->n, p->k, p->alpha, p->a, p->lda, p->b, p->ldb,
                    p->beta, c, p->ldc);
    else
        snnrt_kernel_run(kind, p->ta, p->tb, p->m, p->n, p->k, p->alpha, p->a, p->lda, p->b,
                         p->ldb, p->beta, c, p->ldc);
    return c;
}

/* Same values, +0 and -0 equal. */
static int same(const prob *p, const float *x, const float *y) {
    for (int64_t i = 0; i < (p->m + 1) * p->ldc; i++)
        if (x[i] != y[i] && !(isnan(x[i]) && isnan(y[i]))) return 0;
    return 1;
}

static const int64_t sizes[] = {1, 2, 3, 7, 10, 16, 17, 31, 33, 64, 100, 130};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* One random problem through every kind: each within tolerance, the own kinds identical. */
static int one(snnrt_rng *g, int ta, int tb, int64_t m, int64_t n, int64_t k, int ka, int kb,
               float alpha, float beta, int *fails) {
    prob p = make(g, ta, tb, m, n, k, ka, kb, alpha, beta);
    float *own = NULL;
    int ok = 1;
    for (int kind = SNNRT_KERNEL_AUTO; kind < SNNRT_KERNEL_COUNT; kind++) {
        float *c = run(&p, kind);
        if (!check(&p, c)) {
            ok = 0;
            if ((*fails)++ < 5)
                fprintf(stderr, "\n  kernel %s: ta %d tb %d m %lld n %lld k %lld a%d b%d "
                                "alpha %g beta %g: wrong\n", snnrt_kernel_name(kind), ta, tb,
                        (long long)m, (long long)n, (long long)k, ka, kb, alpha, beta);
        }
        if (kind >= SNNRT_KERNEL_DENSE) {
            if (!own) own = c, c = NULL;
            else if (!same(&p, own, c)) {
                ok = 0;
                if ((*fails)++ < 5)
                    fprintf(stderr, "\n  kernel %s differs from dense: ta %d tb %d m %lld n "
                                    "%lld k %lld\n", snnrt_kernel_name(kind), ta, tb,
                            (long long)m, (long long)n, (long long)k);
            }
        }
        free(c);
    }
    free(own);
    drop(&p);
    return ok;
}

static void sweep(int portable) {
    snnrt_kernel_use_avx512(!portable);
    snnrt_rng g;
    snnrt_rng_seed(&g, 42 + (uint64_t)portable, 7);
    int fails = 0, cases = 0;
    const float betas[3] = {0.0f, 1.0f, 0.5f};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int rep = 0; rep < 40; rep++) {
                const int64_t m = sizes[snnrt_rng_below(&g, NSIZES)];
                const int64_t n = sizes[snnrt_rng_below(&g, NSIZES)];
                const int64_t k = sizes[snnrt_rng_below(&g, NSIZES)];
                const int ka = (int)snnrt_rng_below(&g, 4), kb = (int)snnrt_rng_below(&g, 4);
                const float beta = betas[rep % 3];
                const float alpha = rep % 4 == 3 ? -0.75f : 1.0f;
                one(&g, ta, tb, m, n, k, ka, kb, alpha, beta, &fails);
                cases++;
            }
    snnrt_kernel_use_avx512(1);
    CU_ASSERT_EQUAL(fails, 0);
    CU_ASSERT(cases == 160);
}

static void test_random_avx512(void) { sweep(0); }
static void test_random_portable(void) { sweep(1); }

/* The products of a Tutorial 5 step at a small batch: skinny (10 outputs), spikes, inputs. */
/* The layer-1 products of the Tutorial 5 trainer at their exact shapes (batch 128 and 64:
 * two threads' row blocks): x W1^T (rows groups 128 images of 784 inputs), acc^T x (cols
 * groups 784 pixel columns over 128 or 64 rows: one- and two-word bitsets, the transposed
 * panels double-buffered), beta 0 and 1, alpha 1 and not. Half the inputs zero in a pattern
 * with structure (each row zero outside its own window, as an image's background), so groups
 * really skip. Rows, cols, groups and dense must agree bit for bit, on AVX-512 and portable
 * (groups only has its own loop for acc^T x with AVX-512). */
static void test_layer1_shapes(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 31, 3);
    int fails = 0;
    for (int portable = 0; portable < 2; portable++) {
        snnrt_kernel_use_avx512(!portable);
        for (int half = 0; half < 2; half++) {
            const int64_t B = half ? 64 : 128, H = 1000, I = 784;
            float *x = malloc(sizeof(float) * (size_t)(B * I));
            float *w = malloc(sizeof(float) * (size_t)(H * I));
            float *acc = malloc(sizeof(float) * (size_t)(B * H));
            fill(&g, w, H * I, DENSE);
            fill(&g, acc, B * H, DENSE);
            for (int64_t i = 0; i < B; i++) {
                const int64_t lo = (int64_t)snnrt_rng_below(&g, 300), hi = lo + 200 + (int64_t)snnrt_rng_below(&g, 280);
                for (int64_t l = 0; l < I; l++)
                    x[i * I + l] = l < lo || l >= hi || snnrt_rng_float(&g) < 0.2f ? 0.0f : snnrt_rng_float(&g);
            }
            for (int v = 0; v < 2; v++) {
                const float alpha = v ? -0.75f : 1.0f, beta = (float)v;
                /* x W1^T: [B, H]; acc^T x: [H, I] */
                for (int which = 0; which < 2; which++) {
                    const int64_t m = which ? H : B, n = which ? I : H;
                    enum { NK = 4 };
                    float *c[NK];
                    const int kinds[NK] = {SNNRT_KERNEL_DENSE, SNNRT_KERNEL_ROWS, SNNRT_KERNEL_COLS,
                                           SNNRT_KERNEL_GROUPS};
                    for (int q = 0; q < NK; q++) {
                        c[q] = malloc(sizeof(float) * (size_t)(m * n));
                        for (int64_t e = 0; e < m * n; e++) c[q][e] = (float)(e % 7) - 3.0f;
                        if (which)
                            snnrt_kernel_run(kinds[q], 1, 0, H, I, B, alpha, acc, H, x, I, beta, c[q], I);
                        else
                            snnrt_kernel_run(kinds[q], 0, 1, B, H, I, alpha, x, I, w, I, beta, c[q], H);
                    }
                    for (int q = 1; q < NK; q++)
                        for (int64_t e = 0; e < m * n; e++)
                            if (c[q][e] != c[0][e]) {
                                if (fails++ < 5)
                                    fprintf(stderr, "\n  layer 1 (%s, B %lld, portable %d): %s differs "
                                                    "from dense at %lld\n", which ? "acc^T x" : "x W1^T",
                                            (long long)B, portable, snnrt_kernel_name(kinds[q]), (long long)e);
                                break;
                            }
                    for (int q = 0; q < NK; q++) free(c[q]);
                }
            }
            free(x), free(w), free(acc);
        }
    }
    snnrt_kernel_use_avx512(1);
    CU_ASSERT_EQUAL(fails, 0);
}

/* The grouping's popcount of a OR b: the vector loop against the scalar one for every length up
 * to 20 words (whole steps of 8 and masked tails) on random and all-ones words. */
static void test_popcount_or(void) {
    uint64_t a[20], b[20], x = 0x9e3779b97f4a7c15ull;
    for (int rep = 0; rep < 50; rep++)
        for (int64_t nw = 1; nw <= 20; nw++) {
            for (int w = 0; w < 20; w++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                a[w] = rep == 0 ? ~0ull : x;
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                b[w] = rep == 1 ? 0 : x & (x >> 3);
            }
            int want = 0;
            for (int64_t w = 0; w < nw; w++) want += __builtin_popcountll(a[w] | b[w]);
            CU_ASSERT_EQUAL(snnrt_kernel_popcount_or(a, b, nw, 1), want);
            CU_ASSERT_EQUAL(snnrt_kernel_popcount_or(a, b, nw, 0), want);
        }
}

/* snnrt_transpose: every element where it belongs, nothing else written (sentinels around and
 * between dst's rows), on whole 16 x 16 blocks, a narrower last column block and rows past the
 * last multiple of 16 (the scalar path); leading dimensions larger than the extents. */
static void test_transpose(void) {
    const int64_t shapes[][2] = {{1, 1}, {16, 16}, {17, 33}, {64, 1000}, {70, 5}, {3, 40}, {32, 16}};
    for (size_t q = 0; q < sizeof shapes / sizeof *shapes; q++) {
        const int64_t rows = shapes[q][0], cols = shapes[q][1], lds = cols + 3, ldd = rows + 5;
        float *src = malloc((size_t)(rows * lds) * sizeof(float));
        float *dst = malloc((size_t)((cols + 1) * ldd) * sizeof(float));
        for (int64_t i = 0; i < rows * lds; i++) src[i] = (float)i * 0.5f - 7.0f;
        for (int64_t i = 0; i < (cols + 1) * ldd; i++) dst[i] = -1234.5f;
        snnrt_transpose(src, rows, cols, lds, dst, ldd);
        int bad = 0;
        for (int64_t j = 0; j <= cols; j++)
            for (int64_t i = 0; i < ldd; i++) {
                const float want = j < cols && i < rows ? src[i * lds + j] : -1234.5f;
                bad += dst[j * ldd + i] != want;
            }
        if (bad) fprintf(stderr, "\n  transpose %lld x %lld: %d wrong\n", (long long)rows, (long long)cols, bad);
        CU_ASSERT_EQUAL(bad, 0);
        free(src);
        free(dst);
    }
}

/* snnrt_sgemm_bias: every kind, on the AVX-512 and the portable path, gives the bits of C
 * filled with the bias and beta 1 (the tiled kinds add the bias as they store, the others fill
 * C first); C's columns past n and its row past m stay untouched. op(A) with whole zero rows
 * (a rows-kind group with nothing to sum: C is the bias), alpha 1 and not, every transpose
 * combination; then the public entry: k = 0 and alpha = 0 give the bias. */
static void test_bias(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 47, 5);
    const int kinds[] = {SNNRT_KERNEL_BLAS,  SNNRT_KERNEL_DENSE,  SNNRT_KERNEL_ROWS,
                         SNNRT_KERNEL_COLS,  SNNRT_KERNEL_EVENT,  SNNRT_KERNEL_SHORTK,
                         SNNRT_KERNEL_NARROW};
    const int64_t shapes[][3] = {{13, 37, 29}, {128, 100, 78}, {6, 10, 200}, {40, 1000, 12}, {1, 17, 3}};
    int fails = 0, checked = 0;
    for (int portable = 0; portable < 2; portable++) {
        snnrt_kernel_use_avx512(!portable);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int t = 0; t < 4; t++) {
                const int ta = t & 1, tb = t >> 1;
                const float alpha = t == 3 ? -0.5f : 1.0f;
                prob p = make(&g, ta, tb, shapes[si][0], shapes[si][1], shapes[si][2],
                              si % 2 ? SPIKES : HALF_ZERO, DENSE, alpha, 1.0f);
                for (int64_t i = 0; i < p.m; i += 3) /* every third row of op(A) zero */
                    for (int64_t l = 0; l < p.k; l++) *(ta ? &p.a[l * p.lda + i] : &p.a[i * p.lda + l]) = 0.0f;
                float *bias = malloc(sizeof(float) * (size_t)p.n);
                fill(&g, bias, p.n, DENSE);
                float *want = malloc(sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                float *got = malloc(sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                for (size_t q = 0; q < sizeof kinds / sizeof kinds[0]; q++) {
                    memcpy(want, p.c0, sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                    memcpy(got, p.c0, sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                    for (int64_t i = 0; i < p.m; i++) memcpy(want + i * p.ldc, bias, sizeof(float) * (size_t)p.n);
                    snnrt_kernel_run(kinds[q], ta, tb, p.m, p.n, p.k, alpha, p.a, p.lda, p.b, p.ldb,
                                     1.0f, want, p.ldc);
                    snnrt_kernel_run_bias(kinds[q], ta, tb, p.m, p.n, p.k, alpha, p.a, p.lda, p.b,
                                          p.ldb, bias, got, p.ldc);
                    checked++;
                    if (memcmp(want, got, sizeof(float) * (size_t)((p.m + 1) * p.ldc)) && fails++ < 5)
                        fprintf(stderr, "\n  bias: %s (portable %d) %lldx%lldx%lld ta %d tb %d differs\n",
                                snnrt_kernel_name(kinds[q]), portable, (long long)p.m, (long long)p.n,
                                (long long)p.k, ta, tb);
                }
                /* the dispatcher's choice, through the public entries (the same choice for
                 * the same shape: the OpenBLAS of the portable path sums in its own order) */
                memcpy(want, p.c0, sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                for (int64_t i = 0; i < p.m; i++) memcpy(want + i * p.ldc, bias, sizeof(float) * (size_t)p.n);
                snnrt_sgemm(ta, tb, p.m, p.n, p.k, alpha, p.a, p.lda, p.b, p.ldb, 1.0f, want, p.ldc);
                memcpy(got, p.c0, sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                snnrt_sgemm_bias(ta, tb, p.m, p.n, p.k, alpha, p.a, p.lda, p.b, p.ldb, bias, got, p.ldc);
                if (memcmp(want, got, sizeof(float) * (size_t)((p.m + 1) * p.ldc)) && fails++ < 5)
                    fprintf(stderr, "\n  bias: snnrt_sgemm_bias (portable %d) differs\n", portable);
                /* k = 0 and alpha = 0: the bias on every row */
                for (int e = 0; e < 2; e++) {
                    memcpy(got, p.c0, sizeof(float) * (size_t)((p.m + 1) * p.ldc));
                    snnrt_sgemm_bias(ta, tb, p.m, p.n, e ? p.k : 0, e ? 0.0f : alpha, p.a, p.lda, p.b,
                                     p.ldb, bias, got, p.ldc);
                    for (int64_t i = 0; i <= p.m; i++)
                        for (int64_t j = 0; j < p.ldc; j++) {
                            const float w = i < p.m && j < p.n ? bias[j] : p.c0[i * p.ldc + j];
                            if (memcmp(&got[i * p.ldc + j], &w, sizeof w) && fails++ < 5)
                                fprintf(stderr, "\n  bias: %s at %lld, %lld\n", e ? "alpha 0" : "k 0",
                                        (long long)i, (long long)j);
                        }
                }
                free(bias), free(want), free(got);
                drop(&p);
            }
    }
    snnrt_kernel_use_avx512(1);
    CU_ASSERT(checked > 0);
    CU_ASSERT_EQUAL(fails, 0);
}

/* A weight gradient of several MB is written with non-temporal stores (snnrt_kernels.c,
 * tiled_init): the same bits as plain stores. The aligned C streams; the same product into C
 * one float further on (rows not 64-byte aligned) does not. Rows whose last vector is whole
 * and partial (N 790 in rows of 800), alpha 1 and not; C's columns past N stay untouched. */
static void test_streamed_c(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 77, 1);
    int fails = 0;
    const int64_t K = 96, M = 700, ns[2] = {784, 790}, ldcs[2] = {784, 800};
    float *a = malloc(sizeof(float) * (size_t)(K * M));
    float *b = malloc(sizeof(float) * (size_t)(K * 800));
    fill(&g, a, K * M, DENSE);
    fill(&g, b, K * 800, HALF_ZERO);
    for (int cs = 0; cs < 2; cs++)
        for (int v = 0; v < 2; v++) {
            const int64_t N = ns[cs], ldc = ldcs[cs], cn = M * ldc + 16;
            const float alpha = v ? -0.75f : 1.0f;
            float *c1 = aligned_alloc(64, sizeof(float) * (size_t)cn);
            float *c2 = aligned_alloc(64, sizeof(float) * (size_t)cn);
            const int kinds[2] = {SNNRT_KERNEL_DENSE, SNNRT_KERNEL_COLS};
            for (int q = 0; q < 2; q++) {
                for (int64_t e = 0; e < cn; e++) c1[e] = c2[e] = (float)(e % 7) - 3.0f;
                snnrt_kernel_run(kinds[q], 1, 0, M, N, K, alpha, a, M, b, N, 0.0f, c1, ldc);
                snnrt_kernel_run(kinds[q], 1, 0, M, N, K, alpha, a, M, b, N, 0.0f, c2 + 1, ldc);
                int64_t bad = -1;
                for (int64_t i = 0; i < M && bad < 0; i++)
                    for (int64_t j = 0; j < ldc && bad < 0; j++) {
                        const int64_t e = i * ldc + j;
                        if (j < N ? c1[e] != c2[e + 1] : c1[e] != (float)(e % 7) - 3.0f) bad = e;
                    }
                if (bad >= 0 && fails++ < 5)
                    fprintf(stderr, "\n  streamed C (%s, N %lld, alpha %g): differs at %lld\n",
                            snnrt_kernel_name(kinds[q]), (long long)N, alpha, (long long)bad);
            }
            free(c1), free(c2);
        }
    free(a), free(b);
    CU_ASSERT_EQUAL(fails, 0);
}

static void test_snn_shapes(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 5, 5);
    int fails = 0;
    const int64_t B = 37, H = 203, I = 77, O = 10;
    for (int beta = 0; beta < 2; beta++) {
        one(&g, 0, 1, B, H, I, HALF_ZERO, DENSE, 1.0f, (float)beta, &fails); /* x W1^T */
        one(&g, 0, 1, B, O, H, SPIKES, DENSE, 1.0f, (float)beta, &fails);    /* spk W2^T */
        one(&g, 0, 0, B, H, O, DENSE, DENSE, 1.0f, (float)beta, &fails);     /* dmem W2 */
        one(&g, 1, 0, O, H, B, DENSE, SPIKES, 1.0f, (float)beta, &fails);    /* dmem^T spk */
        one(&g, 1, 0, H, I, B, DENSE, HALF_ZERO, 1.0f, (float)beta, &fails); /* acc^T x */
        one(&g, 1, 1, H, O, B, SPIKES, DENSE, 1.0f, (float)beta, &fails);    /* spk^T as A */
        one(&g, 0, 0, B, 600, 40, SPIKES, DENSE, 1.0f, (float)beta, &fails); /* wide event */
    }
    CU_ASSERT_EQUAL(fails, 0);
}

/* The three per-step layer-2 products of the Tutorial 5 trainer at their exact shapes (batch
 * 128, and 64: the row blocks of two threads), hidden 1000, 10 outputs, beta 0 and 1, spikes
 * at densities 0, 0.15 and 1 and non-binary operands in their place, odd leading dimensions;
 * then every k <= 17 (shortk's 16 instances and the dense fallback) and n <= 17 (narrow's 12
 * and the fallback). AVX-512 and portable. Every kind against the reference and the dense
 * kind's bits (one()). */
static void layer2(int portable) {
    snnrt_kernel_use_avx512(!portable);
    snnrt_rng g;
    snnrt_rng_seed(&g, 21, (uint64_t)portable);
    int fails = 0;
    const int spk[5] = {ALL_ZERO, SPIKES, ALL_ONE, HALF_ZERO, DENSE};
    for (int mi = 0; mi < 2; mi++) {
        const int64_t B = mi ? 64 : 128, H = 1000, O = 10;
        for (int beta = 0; beta < 2; beta++)
            for (int s = 0; s < 5; s++) {
                ld_extra = s == 3 ? 3 : s == 1 ? 1 : -1;
                one(&g, 0, 1, B, O, H, spk[s], DENSE, 1.0f, (float)beta, &fails); /* spk W2^T */
                one(&g, 0, 0, B, H, O, DENSE, DENSE, 1.0f, (float)beta, &fails);  /* dmem W2 */
                one(&g, 1, 0, O, H, B, DENSE, spk[s], 1.0f, (float)beta, &fails); /* dmem^T spk */
            }
    }
    const int64_t ns[] = {1, 2, 5, 9, 10, 11, 12, 13, 16, 17};
    const int64_t ks[] = {1, 2, 3, 7, 10, 12, 13, 15, 16, 17};
    for (int i = 0; i < 10; i++)
        for (int tb = 0; tb < 2; tb++) {
            ld_extra = i % 3 == 0 ? 1 : -1;
            const float beta = (float)(i % 2);
            /* narrow: n small, k spanning whole and partial 16-blocks, rows past 32 and odd */
            one(&g, 0, tb, i % 2 ? 64 : 45, ns[i], 1000 + i, i % 2 ? SPIKES : DENSE, DENSE,
                1.0f, beta, &fails);
            one(&g, 1, tb, 37, ns[i], 33, DENSE, DENSE, -0.75f, beta, &fails);
            /* shortk: every short k, n with a tail, odd rows */
            one(&g, 0, tb, 33, 1000, ks[i], DENSE, i % 2 ? SPIKES : DENSE, 1.0f, beta, &fails);
            one(&g, 1, tb, 7, 17, ks[i], DENSE, DENSE, 0.5f, beta, &fails);
            one(&g, 0, tb, 2, 16, ks[i], ALL_ONE, DENSE, 1.0f, beta, &fails);
        }
    ld_extra = -1;
    snnrt_kernel_use_avx512(1);
    CU_ASSERT_EQUAL(fails, 0);
}

static void test_layer2_avx512(void) { layer2(0); }
static void test_layer2_portable(void) { layer2(1); }

/* The dispatcher picks the kinds made for the layer-2 shapes where AVX-512 runs. */
static void test_layer2_choice(void) {
    if (!snnrt_kernel_have_avx512()) return;
    snnrt_rng g;
    snnrt_rng_seed(&g, 23, 1);
    for (int mi = 0; mi < 2; mi++) {
        const int64_t B = mi ? 64 : 128;
        prob f = make(&g, 0, 1, B, 10, 1000, SPIKES, DENSE, 1.0f, 0.0f);
        free(run(&f, SNNRT_KERNEL_AUTO));
        CU_ASSERT_EQUAL(snnrt_kernel_last(), SNNRT_KERNEL_NARROW);
        drop(&f);
        prob d = make(&g, 0, 0, B, 1000, 10, DENSE, DENSE, 1.0f, 0.0f);
        free(run(&d, SNNRT_KERNEL_AUTO));
        CU_ASSERT_EQUAL(snnrt_kernel_last(), SNNRT_KERNEL_SHORTK);
        drop(&d);
    }
    CU_ASSERT_EQUAL(snnrt_kernel_from_name("shortk"), SNNRT_KERNEL_SHORTK);
    CU_ASSERT_EQUAL(snnrt_kernel_from_name("narrow"), SNNRT_KERNEL_NARROW);
}

/* More rows than the event kind's block (512), so it runs in several blocks. */
static void test_event_blocks(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 9, 9);
    int fails = 0;
    one(&g, 0, 1, 1100, 10, 50, SPIKES, DENSE, 1.0f, 1.0f, &fails);
    one(&g, 1, 0, 1030, 21, 40, SPIKES, DENSE, 0.5f, 0.0f, &fails);
    CU_ASSERT_EQUAL(fails, 0);
}

/* Thread count changes nothing; beta = 0 ignores NaN in C. */
static void test_threads_and_nan(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 11, 1);
    const int32_t before = snnrt_get_threads();
    prob p = make(&g, 0, 1, 150, 300, 200, HALF_ZERO, DENSE, 1.0f, 1.0f);
    for (int kind = SNNRT_KERNEL_DENSE; kind < SNNRT_KERNEL_COUNT; kind++) {
        snnrt_set_threads(1);
        float *c1 = run(&p, kind);
        snnrt_set_threads(2);
        float *c2 = run(&p, kind);
        CU_ASSERT(same(&p, c1, c2));
        CU_ASSERT(check(&p, c2));
        free(c1), free(c2);
    }
    snnrt_set_threads(before);
    for (int64_t i = 0; i < (p.m + 1) * p.ldc; i++)
        if (i / p.ldc < p.m && i % p.ldc < p.n) p.c0[i] = NAN;
    p.beta = 0.0f;
    for (int kind = SNNRT_KERNEL_AUTO; kind < SNNRT_KERNEL_COUNT; kind++) {
        float *c = run(&p, kind);
        CU_ASSERT(check(&p, c));
        free(c);
    }
    drop(&p);
}

/* The dispatcher skips zeros of rare spikes, not of dense operands, and records sites. */
static void test_choice_and_report(void) {
    snnrt_rng g;
    snnrt_rng_seed(&g, 13, 1);
    snnrt_kernel_stats_reset();
    snnrt_kernel_stats_enable(1);
    prob p = make(&g, 0, 1, 128, 200, 1000, RARE_SPIKES, DENSE, 1.0f, 1.0f);
    float *c = run(&p, SNNRT_KERNEL_AUTO);
    CU_ASSERT(check(&p, c));
    const int sparse = snnrt_kernel_last();
    CU_ASSERT(sparse == SNNRT_KERNEL_ROWS || sparse == SNNRT_KERNEL_EVENT);
    free(c);
    prob d = make(&g, 0, 1, 64, 100, 200, DENSE, DENSE, 1.0f, 0.0f);
    c = run(&d, SNNRT_KERNEL_AUTO);
    CU_ASSERT(check(&d, c));
    if (snnrt_kernel_have_avx512()) CU_ASSERT_EQUAL(snnrt_kernel_last(), SNNRT_KERNEL_DENSE);
    free(c);
    drop(&d);
    prob q = make(&g, 1, 0, 10, 100, 64, DENSE, DENSE, 1.0f, 0.0f);
    for (int i = 0; i < 3; i++) free(run(&q, SNNRT_KERNEL_AUTO));
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    snnrt_kernel_report(f);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "snnrt_sgemm kernels"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "  128    200   1000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "   10    100     64"));
    snnrt_kernel_stats_enable(0);
    snnrt_kernel_stats_reset();
    drop(&p), drop(&q);
    /* forcing a kind */
    snnrt_kernel_force(SNNRT_KERNEL_COLS);
    prob r = make(&g, 0, 0, 20, 30, 40, DENSE, DENSE, 1.0f, 0.0f);
    c = run(&r, SNNRT_KERNEL_AUTO);
    CU_ASSERT_EQUAL(snnrt_kernel_last(), SNNRT_KERNEL_COLS);
    CU_ASSERT(check(&r, c));
    free(c);
    snnrt_kernel_force(SNNRT_KERNEL_AUTO);
    drop(&r);
    CU_ASSERT_EQUAL(snnrt_kernel_from_name("event"), SNNRT_KERNEL_EVENT);
    CU_ASSERT_EQUAL(snnrt_kernel_from_name("nope"), -2);
    snnrt_kernel_scratch_free();
}

void test_runtime_kernels_register(void) {
    CU_pSuite s = CU_add_suite("runtime_kernels", NULL, NULL);
    CU_add_test(s, "every kind vs reference, random shapes (AVX-512)", test_random_avx512);
    CU_add_test(s, "every kind vs reference, random shapes (portable)", test_random_portable);
    CU_add_test(s, "SNN product shapes", test_snn_shapes);
    CU_add_test(s, "snnrt_transpose", test_transpose);
    CU_add_test(s, "the grouping's popcount", test_popcount_or);
    CU_add_test(s, "layer-1 shapes: rows, cols and dense agree", test_layer1_shapes);
    CU_add_test(s, "event kind over several row blocks", test_event_blocks);
    CU_add_test(s, "weight gradients of several MB: streamed stores, same bits", test_streamed_c);
    CU_add_test(s, "a bias added as C is stored: the bits of filling C first", test_bias);
    CU_add_test(s, "layer-2 shapes, short k, narrow n (AVX-512)", test_layer2_avx512);
    CU_add_test(s, "layer-2 shapes, short k, narrow n (portable)", test_layer2_portable);
    CU_add_test(s, "layer-2 shapes: dispatcher's choice", test_layer2_choice);
    CU_add_test(s, "thread count and NaN in C with beta 0", test_threads_and_nan);
    CU_add_test(s, "choice, report, forcing", test_choice_and_report);
}
