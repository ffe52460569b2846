/* snnrt_kernels.h: the runtime's own matrix-product kernels and the dispatcher behind
 * snnrt_sgemm (snnrt_kernels.c), for snnrt_blas.c, the trainer's report, tests and bench/.
 *
 * snnrt_sgemm (snnrt.h) keeps cblas semantics exactly. Behind it, snnrt_kernel_sgemm picks,
 * per call, one of the kinds below by shape and by the measured density of the operands:
 *
 *   blas    OpenBLAS (cblas_sgemm), for large dense products where it is as fast;
 *   dense   register-tiled AVX-512 products for every shape, skinny ones (M, N or K small)
 *           included, where OpenBLAS's packing dominates;
 *   rows    op(A) mostly zeros: each tile of rows sums only over the k where one of its rows
 *           is non-zero (zero-column skipping of an input batch);
 *   cols    op(B) mostly zeros: each tile of columns sums only over the k where its part of
 *           B's row k is non-zero (the weight gradient of a sparse input);
 *   event   op(A) very sparse (spikes): each row accumulates only the rows of op(B) selected by
 *           its own non-zeros (event-driven); 0/1 spikes add without multiplying;
 *   shortk  a short k (<= 16, a backward product through a 10-wide layer): whole rows of C, two
 *           at a time, with op(A)'s values held in registers and op(B)'s k rows read once per
 *           16 columns (the dense kind where k > 16 or without AVX-512);
 *   narrow  a narrow C (n <= 12: S W^T of a 10-wide layer), rows of C in the vector lanes;
 *   groups  A^T B with B mostly zeros (the weight gradient acc^T x of a sparse input): C made
 *           transposed, each group of 4 columns of C summing only over the rows of B where one
 *           of its 4 values is non-zero (the dense kind without AVX-512).
 *
 * The own kinds sum every output element over k in ascending order with one accumulator,
 * skipping only exact-zero terms, so they give the same float32 result whichever is chosen and
 * whatever the thread count (up to the sign of a zero). Only blas-versus-own can change the
 * rounding, and that choice depends on the CPU (with AVX-512 the own kinds serve every
 * product; without, OpenBLAS serves all but very sparse ones), never on timing, so a run is
 * reproducible. Skipping a zero term also skips 0 * inf = NaN: a NaN in the skipped operand's
 * partner does not reach C through a zero (it does through every non-zero).
 */
#ifndef SNNRT_KERNELS_H
#define SNNRT_KERNELS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    SNNRT_KERNEL_AUTO = -1,
    SNNRT_KERNEL_BLAS = 0,
    SNNRT_KERNEL_DENSE,
    SNNRT_KERNEL_ROWS,
    SNNRT_KERNEL_COLS,
    SNNRT_KERNEL_EVENT,
    SNNRT_KERNEL_SHORTK,
    SNNRT_KERNEL_NARROW,
    SNNRT_KERNEL_GROUPS,
    SNNRT_KERNEL_COUNT
} snnrt_kernel_kind;

/* "blas", "dense", "rows", "cols", "event", "shortk", "narrow", "groups" ("auto" for
 * SNNRT_KERNEL_AUTO); NULL if unknown. */
const char *snnrt_kernel_name(int kind);
/* The kind named `name` (as snnrt_kernel_name spells it), or -2 if none. */
int snnrt_kernel_from_name(const char *name);

/* Whether this CPU runs the AVX-512 kernels (else the own kinds run a portable C version,
 * same results, slower, and auto prefers blas for dense products). */
int snnrt_kernel_have_avx512(void);
/* Tests: 0 makes the kernels behave as on a CPU without AVX-512 (the portable path), 1 back
 * to what the CPU supports. */
void snnrt_kernel_use_avx512(int on);

/* The dispatcher behind snnrt_sgemm: same arguments and semantics. Callers guarantee
 * m, n, k >= 1, alpha != 0 and every size and leading dimension <= INT_MAX (snnrt_sgemm
 * handles the rest). Chooses a kind (or the forced one), runs it, and records the call in the
 * statistics when they are enabled. */
void snnrt_kernel_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float beta, float *c, int64_t ldc);

/* The dispatcher behind snnrt_sgemm_bias: C = alpha op(A) op(B) + bias on every row, the
 * preconditions of snnrt_kernel_sgemm. The bits of filling C with the bias and beta 1. */
void snnrt_kernel_sgemm_bias(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                             float alpha, const float *a, int64_t lda, const float *b,
                             int64_t ldb, const float *bias, float *c, int64_t ldc);

/* Tests: the bits set in a OR b over nw words, as the rows kind's grouping counts them (portable:
 * the scalar loop, else the AVX-512 one where the CPU has VPOPCNTDQ). */
int snnrt_kernel_popcount_or(const uint64_t *a, const uint64_t *b, int64_t nw, int portable);

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols (snnrt_transpose): 16 x 16
 * blocks through registers where the CPU has AVX-512, the last rows (rows % 16) one by one. */
void snnrt_kernel_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                            int64_t ldd);

/* Runs one kind regardless of the choice the dispatcher would make (tests, bench), same
 * preconditions as snnrt_kernel_sgemm. Every kind serves every shape and layout. */
void snnrt_kernel_run(int kind, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc);
/* The same with a bias (snnrt_kernel_sgemm_bias). */
void snnrt_kernel_run_bias(int kind, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                           int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                           int64_t ldb, const float *bias, float *c, int64_t ldc);

/* The kind the calling thread's last snnrt_kernel_sgemm ran (SNNRT_KERNEL_AUTO before any). */
int snnrt_kernel_last(void);

/* Threads: the own kinds split a product over the OpenMP threads (by output tiles, so the
 * result does not depend on the count) in snnrt_kernel_run always, and in snnrt_sgemm only for
 * products of at least SNNRT_KERNEL_FORK multiply-adds (environment; default 0: never, as
 * measured best on a shared 2-vCPU machine). OpenBLAS keeps its own threads.
 * Inside a team of row blocks (snnrt_team.c), a large product that reads the batch input is
 * done jointly by the team's threads over the whole batch ("joint products" in
 * snnrt_kernels.c): every member calls snnrt_sgemm with its own block, and each call returns
 * when the whole product is done. The statistics then show the whole batch's shape. */

/* Forces every later snnrt_sgemm to one kind (SNNRT_KERNEL_AUTO: choose again). The
 * environment variable SNNRT_KERNEL=<name> does the same from the first call. */
void snnrt_kernel_force(int kind);

/* Tests: member `rank` of a team arrives `us` microseconds late at every joint weight
 * gradient (the others precompute their blocks' partials meanwhile); rank -1: none. */
void snnrt_kernel_joint_delay(int32_t rank, int32_t us);

/* The plain cblas_sgemm call (snnrt_blas.c), the blas kind. */
void snnrt_blas_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, float *c, int64_t ldc);

/* Statistics per call site, a site being a distinct (trans_a, trans_b, m, n, k): calls per
 * kind, total time, measured density of the operand the choice looked at. Collected when
 * enabled: by snnrt_kernel_stats_enable(1), or from the first call when the environment has
 * SNNRT_KERNEL_REPORT=1. */
void snnrt_kernel_stats_enable(int on);
void snnrt_kernel_stats_reset(void);
/* One line per site: shape, the kind chosen most often (and the others' counts), calls, total
 * and per-call milliseconds, density. Prints nothing if no call was recorded. */
void snnrt_kernel_report(FILE *f);
/* Whether the environment asks for the report (SNNRT_KERNEL_REPORT set and not "0"). */
int snnrt_kernel_report_requested(void);

/* Frees the calling thread's scratch buffers (they are kept between calls otherwise). */
void snnrt_kernel_scratch_free(void);

#endif
