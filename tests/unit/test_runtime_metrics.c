/* test_runtime_metrics.c: argmax with ties (snnrt_metrics.c) and snnrt_sgemm (snnrt_blas.c).
 *
 * Ties matter: rate-decoded scores are small spike counts and often equal; PyTorch's
 * max/argmax return the lowest index, so must we. snnrt_sgemm is checked in all four
 * transpose combinations, with leading dimensions larger than the matrices, against a
 * double-precision loop, plus the k = 0 and beta cases CBLAS handles differently.
 */
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <math.h>

static void test_argmax_ties(void) {
    const float a[5] = {1, 3, 3, 0, 3};
    CU_ASSERT_EQUAL(snnrt_argmax(a, 5), 1);
    const float zeros[10] = {0};
    CU_ASSERT_EQUAL(snnrt_argmax(zeros, 10), 0); /* no spikes at all: class 0 */
    const float last[4] = {-1, -2, -3, 5};
    CU_ASSERT_EQUAL(snnrt_argmax(last, 4), 3);
    const float neg[3] = {-5, -1, -1};
    CU_ASSERT_EQUAL(snnrt_argmax(neg, 3), 1);
    CU_ASSERT_EQUAL(snnrt_argmax(a, 1), 0);
}

static void test_argmax_nan(void) {
    const float n1[3] = {NAN, 2, 1};
    CU_ASSERT_EQUAL(snnrt_argmax(n1, 3), 1);
    const float n2[3] = {1, NAN, 2};
    CU_ASSERT_EQUAL(snnrt_argmax(n2, 3), 2);
    const float n3[2] = {NAN, NAN};
    CU_ASSERT_EQUAL(snnrt_argmax(n3, 2), 0);
}

static void test_count_correct(void) {
    const float scores[4 * 3] = {
        2, 2, 0, /* tie 0/1 -> 0 */
        0, 5, 5, /* tie 1/2 -> 1 */
        1, 1, 1, /* all equal -> 0 */
        0, 0, 9, /* 2 */
    };
    const int32_t labels[4] = {0, 2, 0, 2};
    CU_ASSERT_EQUAL(snnrt_count_correct(scores, labels, 4, 3), 3);
}

static void ref_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++)
                s += (double)(ta ? a[l * lda + i] : a[i * lda + l]) *
                     (tb ? b[j * ldb + l] : b[l * ldb + j]);
            c[i * ldc + j] = (float)(alpha * s + beta * c[i * ldc + j]);
        }
}

static void test_sgemm(void) {
    enum { M = 13, N = 9, K = 17, LD = 24 };
    static float a[LD * LD], b[LD * LD], c[LD * LD], r[LD * LD];
    snnrt_rng g;
    snnrt_rng_seed(&g, 3, 0);
    for (int i = 0; i < LD * LD; i++) a[i] = snnrt_rng_float(&g) - 0.5f, b[i] = snnrt_rng_float(&g) - 0.5f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int i = 0; i < LD * LD; i++) c[i] = r[i] = (float)(i % 5);
            snnrt_sgemm(ta, tb, M, N, K, 0.5f, a, LD, b, LD, 2.0f, c, LD);
            ref_gemm(ta, tb, M, N, K, 0.5f, a, LD, b, LD, 2.0f, r, LD);
            double maxerr = 0;
            for (int i = 0; i < LD * LD; i++) maxerr = fmax(maxerr, fabs((double)c[i] - r[i]));
            CU_ASSERT(maxerr < 1e-5);
        }
    /* beta = 0 ignores what C held (even NaN), k = 0 leaves beta * C */
    for (int i = 0; i < LD * LD; i++) c[i] = NAN;
    snnrt_sgemm(0, 0, M, N, K, 1.0f, a, LD, b, LD, 0.0f, c, LD);
    for (int i = 0; i < LD * LD; i++) r[i] = 0.0f;
    ref_gemm(0, 0, M, N, K, 1.0f, a, LD, b, LD, 0.0f, r, LD);
    CU_ASSERT(fabsf(c[0] - r[0]) < 1e-5f && !isnan(c[LD * (M - 1) + N - 1]));
    for (int i = 0; i < LD * LD; i++) c[i] = 3.0f;
    snnrt_sgemm(0, 0, M, N, 0, 1.0f, a, 0, b, LD, 0.5f, c, LD);
    CU_ASSERT_EQUAL(c[0], 1.5f);
    CU_ASSERT_EQUAL(c[LD * (M - 1) + N - 1], 1.5f);
    CU_ASSERT_EQUAL(c[N], 3.0f); /* outside the N columns: untouched */
}

void test_runtime_metrics_register(void) {
    CU_pSuite s = CU_add_suite("runtime_metrics", NULL, NULL);
    CU_add_test(s, "argmax ties to the lowest index", test_argmax_ties);
    CU_add_test(s, "argmax with NaN", test_argmax_nan);
    CU_add_test(s, "count correct", test_count_correct);
    CU_add_test(s, "sgemm vs reference", test_sgemm);
}
