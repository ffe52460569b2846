/* bench/kernels.c: microbenchmark of snnrt_sgemm's kernels on the products of a Tutorial 5
 * training step (batch B, 784-H-10), each kind against OpenBLAS, on real input data.
 *
 *   cc -O2 -Iruntime bench/kernels.c build/libsnnrt.a -lopenblas -lz -lm -fopenmp -o /tmp/kb
 *   /tmp/kb [--data DIR] [--batch 128] [--hidden 1000] [--steps 25] [--density 0.15] [--reps 30]
 *           [--threads 1] [--only I]   (I: run only the I-th product, from 0)
 *
 * The input x is a batch of Fashion-MNIST images (pixel / 255, about half zeros), the spikes
 * are Bernoulli(density) 0/1, the gradients and weights uniform. For every product it prints
 * the median microseconds per call of each kind, the kind `auto` picks and its time, and the
 * largest difference from OpenBLAS relative to the sum of |terms| (the test's tolerance).
 * The layer-2 products also run at B / 2 rows (a row block of two threads); dW2 accumulates
 * (beta 1) as in the trainer.
 * Timings are medians of `reps` calls (the machine is shared), so compare within one run.
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

#include <math.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int ta, tb;
    int64_t m, n, k;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float beta;
    int64_t ldc;
    int calls_per_iter;
} product;

static int cmp_d(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int use_cpu_clock = 1;

/* Seconds: this thread's CPU time on one thread (robust to other processes on a shared
 * machine), wall time with several threads. */
static double clock_s(void) {
    if (!use_cpu_clock) return snnrt_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void call_kind(const product *p, int kind, float *c) {
    if (kind == SNNRT_KERNEL_AUTO)
        snnrt_sgemm(p->ta, p->tb, p->m, p->n, p->k, 1.0f, p->a, p->lda, p->b, p->ldb, p->beta, c,
                    p->ldc);
    else
        snnrt_kernel_run(kind, p->ta, p->tb, p->m, p->n, p->k, 1.0f, p->a, p->lda, p->b, p->ldb,
                         p->beta, c, p->ldc);
}

/* Median microseconds per call of each of the kinds blas..event and auto (index
 * SNNRT_KERNEL_COUNT) over `reps` rounds; a round times a batch of calls (about 1 ms) of every
 * kind in turn, so a neighbour's load shifts all kinds alike. */
static void time_kinds(const product *p, float *c, int reps, double *us) {
    enum { NK = SNNRT_KERNEL_COUNT + 1 };
    double *t = malloc(sizeof(double) * (size_t)(reps * NK));
    int inner[NK];
    for (int kk = 0; kk < NK; kk++) {
        const int kind = kk == SNNRT_KERNEL_COUNT ? SNNRT_KERNEL_AUTO : kk;
        call_kind(p, kind, c);
        const double t0 = clock_s();
        call_kind(p, kind, c);
        inner[kk] = (int)(1e-3 / (clock_s() - t0 + 1e-7)) + 1;
    }
    for (int r = 0; r < reps; r++)
        for (int kk = 0; kk < NK; kk++) {
            const int kind = kk == SNNRT_KERNEL_COUNT ? SNNRT_KERNEL_AUTO : kk;
            const double t0 = clock_s();
            for (int i = 0; i < inner[kk]; i++) call_kind(p, kind, c);
            t[kk * reps + r] = (clock_s() - t0) / inner[kk];
        }
    for (int kk = 0; kk < NK; kk++) {
        qsort(t + kk * reps, (size_t)reps, sizeof(double), cmp_d);
        us[kk] = t[kk * reps + reps / 2] * 1e6;
    }
    free(t);
}

/* max |c - ref| / sum_l |a b| */
static double rel_err(const product *p, const float *c, const float *ref) {
    double worst = 0;
    for (int64_t i = 0; i < p->m; i++)
        for (int64_t j = 0; j < p->n; j++) {
            double mag = 0;
            for (int64_t l = 0; l < p->k; l++) {
                const double av = p->ta ? p->a[l * p->lda + i] : p->a[i * p->lda + l];
                const double bv = p->tb ? p->b[j * p->ldb + l] : p->b[l * p->ldb + j];
                mag += fabs(av * bv);
            }
            const double d = fabs((double)c[i * p->ldc + j] - ref[i * p->ldc + j]);
            if (mag > 0 && d / mag > worst) worst = d / mag;
        }
    return worst;
}

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    int64_t B = 128, H = 1000, I = 784, O = 10, T = 25;
    double dens = 0.15;
    int reps = 30, nthreads = 1, only = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) B = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) H = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) T = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--density")) dens = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) nthreads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) only = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown flag %s\n", argv[i]); return 2; }
    }
    snnrt_set_threads(nthreads);
    use_cpu_clock = nthreads == 1;
    snnrt_error err;
    snnrt_split tr;
    if (snnrt_split_load(dir, "train", I, O, &tr, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    snnrt_rng g;
    snnrt_rng_seed(&g, 1, 0);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
    for (int64_t i = 0; i < B; i++) idx[i] = (int64_t)snnrt_rng_below(&g, (uint64_t)tr.n);
    float *x = malloc(sizeof(float) * (size_t)(B * I));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)B);
    snnrt_gather(&tr, idx, B, x, lab);
    float *w1 = malloc(sizeof(float) * (size_t)(H * I)), *w2 = malloc(sizeof(float) * (size_t)(O * H));
    float *spk = malloc(sizeof(float) * (size_t)(T * B * H)), *dmem = malloc(sizeof(float) * (size_t)(B * O));
    float *acc = malloc(sizeof(float) * (size_t)(B * H));
    float *dmemT = malloc(sizeof(float) * (size_t)(T * B * O));
    for (int64_t i = 0; i < T * B * O; i++) dmemT[i] = snnrt_rng_float(&g) - 0.5f;
    for (int64_t i = 0; i < H * I; i++) w1[i] = snnrt_rng_float(&g) - 0.5f;
    for (int64_t i = 0; i < O * H; i++) w2[i] = snnrt_rng_float(&g) - 0.5f;
    for (int64_t i = 0; i < T * B * H; i++) spk[i] = snnrt_rng_float(&g) < dens ? 1.0f : 0.0f;
    for (int64_t i = 0; i < B * O; i++) dmem[i] = snnrt_rng_float(&g) - 0.5f;
    for (int64_t i = 0; i < B * H; i++) acc[i] = snnrt_rng_float(&g) - 0.5f;
    int64_t zeros = 0;
    for (int64_t i = 0; i < B * I; i++) zeros += x[i] == 0.0f;

    const product prods[] = {
        {"fc1 fwd  x W1^T", 0, 1, B, H, I, x, I, w1, I, 1.0f, H, 1},
        {"L2 fwd   spk W2^T", 0, 1, B, O, H, spk, H, w2, H, 1.0f, O, 25},
        {"dspk     dmem W2", 0, 0, B, H, O, dmem, O, w2, H, 0.0f, H, 25},
        {"dW2      dmem^T spk", 1, 0, O, H, B, dmem, O, spk, H, 1.0f, H, 25},
        {"dW1      acc^T x", 1, 0, H, I, B, acc, H, x, I, 0.0f, I, 1},
        /* layer 1 with W1 stored transposed ([784, H]): x W1t and dW1t = x^T acc (calls 0) */
        {"fc1 fwd  x W1t (W1 stored [I,H])", 0, 0, B, H, I, x, I, w1, H, 1.0f, H, 0},
        {"dW1t     x^T acc", 1, 0, I, H, B, x, I, acc, H, 0.0f, H, 0},
        {"fc1 fwd  B/2 x W1^T", 0, 1, B / 2, H, I, x, I, w1, I, 1.0f, H, 0},
        {"dW1      B/2 acc^T x", 1, 0, H, I, B / 2, acc, H, x, I, 0.0f, I, 0},
        {"fc1 fwd  B/2 x W1t", 0, 0, B / 2, H, I, x, I, w1, H, 1.0f, H, 0},
        {"dW1t     B/2 x^T acc", 1, 0, I, H, B / 2, x, I, acc, H, 0.0f, H, 0},
        /* the layer-2 products of one of two threads' row blocks (B / 2 rows; calls 0) */
        {"L2 fwd   B/2 spk W2^T", 0, 1, B / 2, O, H, spk, H, w2, H, 1.0f, O, 0},
        {"dspk     B/2 dmem W2", 0, 0, B / 2, H, O, dmem, O, w2, H, 0.0f, H, 0},
        {"dW2      B/2 dmem^T spk", 1, 0, O, H, B / 2, dmem, O, spk, H, 1.0f, H, 0},
        /* the same layer-2 products batched over the T steps (time batching): alternatives
         * to the per-step ones, not counted in the per-iteration total (calls 0) */
        {"L2 fwd   [TB] spk W2^T", 0, 1, T * B, O, H, spk, H, w2, H, 1.0f, O, 0},
        {"dW2      [TB] dmem^T spk", 1, 0, O, H, T * B, dmemT, O, spk, H, 0.0f, H, 0},
        {"dspk     [TB] dmem W2", 0, 0, T * B, H, O, dmemT, O, w2, H, 0.0f, H, 0},
    };
    printf("batch %lld, hidden %lld, x zeros %.1f %%, spike density %.2f, %d thread(s), "
           "AVX-512 %s; median us per call (%s) over %d batches\n",
           (long long)B, (long long)H, 100.0 * (double)zeros / (double)(B * I), dens, nthreads,
           snnrt_kernel_have_avx512() ? "yes" : "no", use_cpu_clock ? "thread CPU time" : "wall time", reps);
    printf("%-24s", "product");
    for (int kind = 0; kind < SNNRT_KERNEL_COUNT; kind++) printf(" %8s", snnrt_kernel_name(kind));
    printf("   %-6s %8s %10s %9s\n", "auto", "us", "us/iter", "rel.err");
    double total_blas = 0, total_auto = 0;
    for (size_t pi = 0; pi < sizeof prods / sizeof prods[0]; pi++) {
        const product *p = &prods[pi];
        if (only >= 0 && (size_t)only != pi) continue;
        const size_t csz = (size_t)(p->m * p->ldc);
        float *c0 = malloc(csz * sizeof(float)), *c = malloc(csz * sizeof(float));
        float *ref = malloc(csz * sizeof(float));
        for (size_t i = 0; i < csz; i++) c0[i] = snnrt_rng_float(&g);
        double us[SNNRT_KERNEL_COUNT + 1];
        double worst = 0;
        memcpy(ref, c0, csz * sizeof(float));
        snnrt_kernel_run(SNNRT_KERNEL_BLAS, p->ta, p->tb, p->m, p->n, p->k, 1.0f, p->a, p->lda,
                         p->b, p->ldb, p->beta, ref, p->ldc);
        for (int kind = 0; kind < SNNRT_KERNEL_COUNT; kind++) {
            memcpy(c, c0, csz * sizeof(float));
            snnrt_kernel_run(kind, p->ta, p->tb, p->m, p->n, p->k, 1.0f, p->a, p->lda, p->b,
                             p->ldb, p->beta, c, p->ldc);
            const double e = rel_err(p, c, ref);
            if (e > worst) worst = e;
        }
        /* beta = 1 accumulates: timing on a fresh copy each time would add a memcpy; the
         * values grow but the work is the same */
        time_kinds(p, c, reps, us);
        const double ua = us[SNNRT_KERNEL_COUNT];
        const char *kname = snnrt_kernel_name(snnrt_kernel_last());
        printf("%-24s", p->name);
        for (int kind = 0; kind < SNNRT_KERNEL_COUNT; kind++) printf(" %8.1f", us[kind]);
        printf("   %-6s %8.1f %10.1f %9.1e\n", kname, ua,
               p->calls_per_iter ? ua * p->calls_per_iter : ua, worst);
        total_blas += us[0] * p->calls_per_iter;
        total_auto += ua * p->calls_per_iter;
        free(c0), free(c), free(ref);
    }
    printf("per training iteration (per-step layer-2 products, not [TB]): blas %.2f ms, "
           "auto %.2f ms\n", total_blas / 1e3, total_auto / 1e3);
    snnrt_split_free(&tr);
    free(idx), free(x), free(lab), free(w1), free(w2), free(spk), free(dmem), free(acc), free(dmemT);
    return 0;
}
