/* snnrt_blas.c: matrix products through OpenBLAS or the runtime's own kernels, and the
 * thread count.
 *
 * Generated code calls snnrt_sgemm (declared in snnrt.h) instead of cblas_sgemm so that it
 * needs no BLAS header and so that a different runtime (another BLAS, a GPU) can serve the same
 * object. The wrapper handles the degenerate cases and hands every product to the dispatcher
 * of snnrt_kernels.c, which runs either its own kernels (skinny, sparse, event-driven) or
 * row-major cblas_sgemm (snnrt_blas_sgemm, here). Sizes are int64_t at the seam but int in
 * CBLAS, so the (never expected) case of a dimension or leading dimension past INT_MAX takes a
 * plain OpenMP loop instead of truncating; k = 0 scales C by beta, which CBLAS would reject
 * for its leading-dimension checks when lda = 0.
 *
 * Threads: --threads N sets both OpenMP's team size (runtime loops, generated loops) and
 * OpenBLAS's own pool. Without it both keep their defaults (OMP_NUM_THREADS,
 * OPENBLAS_NUM_THREADS, else every CPU).
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

void openblas_set_num_threads(int num_threads); /* OpenBLAS extension, also in its cblas.h */
#ifdef _OPENMP
/* Declared here rather than through <omp.h>, which not every compiler install ships
 * (clang without libomp-dev) although the OpenMP runtime library is there. */
int omp_get_max_threads(void);
void omp_set_num_threads(int n);
#endif

static void sgemm_naive(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                        float *c, int64_t ldc) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t l = 0; l < k; l++) {
                const float av = ta ? a[l * lda + i] : a[i * lda + l];
                const float bv = tb ? b[j * ldb + l] : b[l * ldb + j];
                s += (double)av * bv;
            }
            c[i * ldc + j] = (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]) + alpha * (float)s;
        }
}

void snnrt_blas_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, float *c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, beta, c, (int)ldc);
}

void snnrt_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
        ldc > INT_MAX) {
        sgemm_naive(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    snnrt_kernel_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void snnrt_sgemm_bias(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      const float *bias, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f || m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX ||
        ldb > INT_MAX || ldc > INT_MAX) {
        for (int64_t i = 0; i < m; i++) memcpy(c + i * ldc, bias, (size_t)n * sizeof(float));
        snnrt_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, 1.0f, c, ldc);
        return;
    }
    snnrt_kernel_sgemm_bias(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, bias, c, ldc);
}

void snnrt_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                     int64_t ldd) {
    if (rows <= 0 || cols <= 0) return;
    snnrt_kernel_transpose(src, rows, cols, lds, dst, ldd);
}

void snnrt_set_threads(int32_t n) {
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int32_t snnrt_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
