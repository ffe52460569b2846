/* snnrt_optim.c: Adam, AdamW and SGD with momentum, as torch.optim computes them.
 *
 * "As torch.optim computes them" means the same formulas with the same float32 roundings as
 * torch 1.13's single-tensor implementations on an AVX2 CPU, with the step-dependent scalars
 * (bias corrections, step size) computed in double as Python does and then rounded to float.
 * torch's `x.add_(y, alpha=a)` is one fused multiply-add, fma(y, a, x) (Vectorized fmadd),
 * and addcmul's `x + v*t1*t2` becomes fma(v*t1, t2, x); addcdiv's `x + v*t1/t2` is not fused.
 * Written with fma() where torch fuses, the update is bit-for-bit torch's (checked on 100003
 * random elements over 5 steps against torch 1.13: 0 differ; with plain mul+add, 565 did):
 *
 *   Adam   g' = fma(p, wd, g)                          grad.add(param, alpha=wd), if wd != 0
 *          m  = fma(g', 1-b1, m*b1)                    exp_avg.mul_(b1).add_(g, alpha=1-b1)
 *          v  = fma((1-b2)*g', g', v*b2)               exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2)
 *          d  = sqrt(v) / sqrt(1 - b2^t) + eps         eps after the bias-corrected sqrt
 *          p  = p + ((-lr / (1 - b1^t)) * m) / d       param.addcdiv_(m, d, value=-step_size)
 *   AdamW  p  = p * (1 - lr*wd), then Adam with wd = 0
 *   SGD    g' = fma(p, wd, g); buf = g' at the first step, else buf*momentum + g'
 *          (dampening 0); p = fma(buf, -lr, p). With momentum 0: p = fma(g', -lr, p), no state.
 *
 * Hyperparameters arrive as doubles (snnrt_float_decimal turns the descriptor's floats into
 * the decimals they were written as), so (1 - b1) is Python's 0.09999999999999998, rounded to
 * float 0.1f, just as torch rounds a Python scalar for a float tensor.
 *
 * Speed: the update touches every parameter once per iteration (795k for Tutorial 5) while
 * the model's own work per iteration is a few milliseconds, so the loop matters. Compilers do
 * not vectorize sqrtf without -fno-math-errno, so the Adam loop is written with AVX2/FMA
 * intrinsics (the tail uses masked loads so every element sees the same operations), with a
 * plain C loop elsewhere; implicit FMA contraction is off, so only the fusions above happen and
 * gcc and clang builds give the same bits. Very large tensors are cut in chunks that the
 * runtime's threads take from a shared counter.
 * Without hardware FMA (a build for plain x86-64), fma() is the exact C99 function: right, slow.
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

/* GCC contracts a*b+c into an FMA even across intrinsics under -march=x86-64-v3; that would make
 * results depend on the compiler (clang does not contract across statements). Only the fusions
 * written out below happen. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdbool.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#define CHUNK 16384 /* elements per work item; a multiple of 8 */
/* Threads (snnrt_pool.c) only for tensors of 256k elements or more. Measured on this project's
 * 2-vCPU machine: Tutorial 5's update (795k parameters, 28 bytes each) took 0.37 ms on one
 * thread and 0.19 to 0.22 ms on two. (It was 4M while the threads were OpenMP's, whose
 * spinning waits once made one region's barrier cost 10 ms on a busy machine.) */
#define PARALLEL_MIN ((int64_t)1 << 18)

typedef struct {
    float b1, ob1, b2, ob2, neg_step, bc2_sqrt, eps, wd, decay; /* decay: AdamW's 1 - lr*wd */
    int use_wd, use_decay;
} adam_consts;

#if defined(__AVX2__) && defined(__FMA__)
static inline __m256i tail_mask(int64_t left) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lanes);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* The four streams' lines 2 KB ahead of the loop. Inside the trainer the update met its arrays
 * cold (the step's other work had pushed them out of the caches) and waited on them: Tutorial
 * 5's update took 0.61-0.64 ms on two threads, 0.17-0.28 ms with these (alternating runs of the
 * trainer, the step timed alone; 1 KB ahead did less, 4 and 8 KB no better). A prefetch past an
 * array's end is harmless: it never faults. */
static inline void prefetch_ahead(const float *p, const float *g, const float *m, const float *v) {
    _mm_prefetch((const char *)(p + 512), _MM_HINT_T0);
    _mm_prefetch((const char *)(g + 512), _MM_HINT_T0);
    _mm_prefetch((const char *)(m + 512), _MM_HINT_T0);
    _mm_prefetch((const char *)(v + 512), _MM_HINT_T0);
}

/* The same operations 16 lanes wide, where the CPU has AVX-512: on Tutorial 5 the 8-wide loop
 * was bound by its two divides and square root (0.31 ms per step on one thread, where a plain
 * load-add-store pass over the same arrays took 0.24); this one runs at that pass's speed.
 * Lanes are independent, so the bits are those of the 8-wide loop. */
__attribute__((target("avx512f,fma"))) static void adam_range512(
    float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
    const adam_consts *c) {
    const __m512 b1 = _mm512_set1_ps(c->b1), ob1 = _mm512_set1_ps(c->ob1);
    const __m512 b2 = _mm512_set1_ps(c->b2), ob2 = _mm512_set1_ps(c->ob2);
    const __m512 ns = _mm512_set1_ps(c->neg_step), bc2 = _mm512_set1_ps(c->bc2_sqrt);
    const __m512 eps = _mm512_set1_ps(c->eps), wd = _mm512_set1_ps(c->wd);
    const __m512 decay = _mm512_set1_ps(c->decay);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        prefetch_ahead(p + i, g + i, m + i, v + i);
        __m512 pi = _mm512_maskz_loadu_ps(k, p + i), gi = _mm512_maskz_loadu_ps(k, g + i);
        __m512 mi = _mm512_maskz_loadu_ps(k, m + i), vi = _mm512_maskz_loadu_ps(k, v + i);
        if (c->use_decay) pi = _mm512_mul_ps(pi, decay);
        if (c->use_wd) gi = _mm512_fmadd_ps(pi, wd, gi);
        mi = _mm512_fmadd_ps(gi, ob1, _mm512_mul_ps(mi, b1));
        vi = _mm512_fmadd_ps(_mm512_mul_ps(ob2, gi), gi, _mm512_mul_ps(vi, b2));
        const __m512 d = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        pi = _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(ns, mi), d));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, pi);
    }
}
#endif

static void adam_range(float *restrict p, const float *restrict g, float *restrict m,
                       float *restrict v, int64_t n, const adam_consts *c) {
#if defined(__AVX2__) && defined(__FMA__)
    if (snnrt_kernel_have_avx512()) {
        adam_range512(p, g, m, v, n, c);
        return;
    }
    const __m256 b1 = _mm256_set1_ps(c->b1), ob1 = _mm256_set1_ps(c->ob1);
    const __m256 b2 = _mm256_set1_ps(c->b2), ob2 = _mm256_set1_ps(c->ob2);
    const __m256 ns = _mm256_set1_ps(c->neg_step), bc2 = _mm256_set1_ps(c->bc2_sqrt);
    const __m256 eps = _mm256_set1_ps(c->eps), wd = _mm256_set1_ps(c->wd);
    const __m256 decay = _mm256_set1_ps(c->decay);
    for (int64_t i = 0; i < n; i += 8) {
        /* Plain loads and stores for whole vectors: AMD CPUs microcode vmaskmovps stores. */
        if (i % 16 == 0) prefetch_ahead(p + i, g + i, m + i, v + i);
        const int full = n - i >= 8;
        const __m256i mask = full ? _mm256_set1_epi32(-1) : tail_mask(n - i);
        __m256 pi, gi, mi, vi;
        if (full) {
            pi = _mm256_loadu_ps(p + i), gi = _mm256_loadu_ps(g + i);
            mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        } else {
            pi = _mm256_maskload_ps(p + i, mask), gi = _mm256_maskload_ps(g + i, mask);
            mi = _mm256_maskload_ps(m + i, mask), vi = _mm256_maskload_ps(v + i, mask);
        }
        if (c->use_decay) pi = _mm256_mul_ps(pi, decay);
        if (c->use_wd) gi = _mm256_fmadd_ps(pi, wd, gi);
        mi = _mm256_fmadd_ps(gi, ob1, _mm256_mul_ps(mi, b1));
        vi = _mm256_fmadd_ps(_mm256_mul_ps(ob2, gi), gi, _mm256_mul_ps(vi, b2));
        __m256 d = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        pi = _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(ns, mi), d));
        if (full) {
            _mm256_storeu_ps(m + i, mi);
            _mm256_storeu_ps(v + i, vi);
            _mm256_storeu_ps(p + i, pi);
        } else {
            _mm256_maskstore_ps(m + i, mask, mi);
            _mm256_maskstore_ps(v + i, mask, vi);
            _mm256_maskstore_ps(p + i, mask, pi);
        }
    }
#else
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i], gi = g[i];
        if (c->use_decay) pi = pi * c->decay;
        if (c->use_wd) gi = fmaf(pi, c->wd, gi);
        const float mb = m[i] * c->b1, vb = v[i] * c->b2, og = c->ob2 * gi;
        const float mi = fmaf(gi, c->ob1, mb), vi = fmaf(og, gi, vb);
        const float d = sqrtf(vi) / c->bc2_sqrt + c->eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + (c->neg_step * mi) / d;
    }
#endif
}

static void sgd_range(float *restrict p, const float *restrict g, float *restrict buf, int64_t n,
                      float neg_lr, float wd, int use_wd, float momentum, int first) {
    for (int64_t i = 0; i < n; i++) {
        float gi = use_wd ? fmaf(p[i], wd, g[i]) : g[i];
        if (buf) {
            gi = first ? gi : buf[i] * momentum + gi;
            buf[i] = gi;
        }
        p[i] = fmaf(gi, neg_lr, p[i]);
    }
}

int32_t snnrt_optim_n_state(const snnrt_optim_config *cfg) {
    switch (cfg->kind) {
    case SNN_OPT_ADAM:
    case SNN_OPT_ADAMW: return 2;
    case SNN_OPT_SGD: return cfg->momentum != 0.0 ? 1 : 0;
    default: return 0;
    }
}

const char *snnrt_optim_name(int32_t kind) {
    switch (kind) {
    case SNN_OPT_ADAM: return "adam";
    case SNN_OPT_ADAMW: return "adamw";
    case SNN_OPT_SGD: return "sgd";
    default: return "unknown";
    }
}

int snnrt_optim_init(snnrt_optim *o, const snnrt_optim_config *cfg, int32_t n,
                     const int64_t *sizes, snnrt_error *err) {
    memset(o, 0, sizeof *o);
    if (cfg->kind != SNN_OPT_ADAM && cfg->kind != SNN_OPT_ADAMW && cfg->kind != SNN_OPT_SGD)
        return snnrt_fail(err, "unknown optimizer kind %d", cfg->kind);
    if (!(cfg->lr >= 0.0) || !isfinite(cfg->lr))
        return snnrt_fail(err, "invalid learning rate %g", cfg->lr);
    if (cfg->kind != SNN_OPT_SGD &&
        (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0) || !(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0) ||
         !(cfg->eps >= 0.0)))
        return snnrt_fail(err, "invalid %s hyperparameters (betas %g, %g; eps %g)",
                          snnrt_optim_name(cfg->kind), cfg->beta1, cfg->beta2, cfg->eps);
    if (!(cfg->weight_decay >= 0.0) || !(cfg->momentum >= 0.0))
        return snnrt_fail(err, "invalid weight decay %g or momentum %g", cfg->weight_decay,
                          cfg->momentum);
    o->cfg = *cfg;
    o->n = n;
    o->sizes = snnrt_alloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t), "optimizer sizes", err);
    o->m = snnrt_alloc((size_t)(n > 0 ? n : 1) * sizeof(float *), "optimizer state", err);
    o->v = snnrt_alloc((size_t)(n > 0 ? n : 1) * sizeof(float *), "optimizer state", err);
    if (!o->sizes || !o->m || !o->v) goto fail;
    const int32_t ns = snnrt_optim_n_state(cfg);
    for (int32_t i = 0; i < n; i++) {
        o->sizes[i] = sizes[i];
        if (ns >= 1 && !(o->m[i] = snnrt_alloc((size_t)sizes[i] * sizeof(float), "optimizer state", err)))
            goto fail;
        if (ns >= 2 && !(o->v[i] = snnrt_alloc((size_t)sizes[i] * sizeof(float), "optimizer state", err)))
            goto fail;
    }
    return 0;
fail:
    snnrt_optim_free(o);
    return -1;
}

typedef struct {
    snnrt_optim *o;
    float *const *params;
    const float *const *grads;
    bool adam;
    adam_consts ak;
    float neg_lr, wd, momentum;
    int use_wd, first;
    snnrt_units chunks; /* the large tensors' chunks, one after another */
    void (*side)(void *); /* run first by the last task (snnrt_optim_step_with) */
    void *side_ctx;
} step_job;

/* Elements [lo, lo + len) of tensor i. */
static void step_range(const step_job *j, int32_t i, int64_t lo, int64_t len) {
    float *p = j->params[i] + lo, *m = j->o->m[i], *v = j->o->v[i];
    const float *g = j->grads[i] + lo;
    if (j->adam) adam_range(p, g, m + lo, v + lo, len, &j->ak);
    else sgd_range(p, g, m ? m + lo : NULL, len, j->neg_lr, j->wd, j->use_wd, j->momentum,
                   j->first);
}

/* Task k of n: the small tensors whole if k is 0, then chunks of the tensors large enough to
 * split. Elements are independent, so who takes which chunk does not change any bits. */
static void step_part(void *ctx, int32_t k, int32_t n) {
    step_job *j = ctx;
    const snnrt_optim *o = j->o;
    if (j->side && k == n - 1) j->side(j->side_ctx);
    for (int32_t i = 0; i < o->n && k == 0; i++) {
        if (o->sizes[i] >= PARALLEL_MIN) continue;
        step_range(j, i, 0, o->sizes[i]);
    }
    /* the large tensors' chunks: this task's share first, the same chunks every step (their
     * data stays in this core's caches, snnrt_pool.c), then others' that are left; a thread on a
     * slower vCPU (one of the 2-vCPU machine's was at times 30-60 % slower for minutes) so
     * still gets help, where fixed halves made the other wait */
    for (;;) {
        int64_t u = snnrt_units_next(&j->chunks, k);
        if (u < 0) return;
        int32_t i = 0;
        for (; i < o->n; i++) {
            if (o->sizes[i] < PARALLEL_MIN) continue;
            const int64_t chunks = (o->sizes[i] + CHUNK - 1) / CHUNK;
            if (u < chunks) break;
            u -= chunks;
        }
        if (i == o->n) return;
        const int64_t lo = u * CHUNK;
        step_range(j, i, lo, o->sizes[i] - lo < CHUNK ? o->sizes[i] - lo : CHUNK);
    }
}

void snnrt_optim_step(snnrt_optim *o, float *const *params, const float *const *grads) {
    snnrt_optim_step_with(o, params, grads, NULL, NULL);
}

void snnrt_optim_step_with(snnrt_optim *o, float *const *params, const float *const *grads,
                           void (*side)(void *), void *side_ctx) {
    const snnrt_optim_config *c = &o->cfg;
    o->step++;
    const double t = (double)o->step;
    step_job j = {.o = o, .params = params, .grads = grads, .side = side, .side_ctx = side_ctx};
    if (c->kind == SNN_OPT_ADAM || c->kind == SNN_OPT_ADAMW) {
        const double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
        j.adam = true;
        j.ak = (adam_consts){
            .b1 = (float)c->beta1, .ob1 = (float)(1.0 - c->beta1),
            .b2 = (float)c->beta2, .ob2 = (float)(1.0 - c->beta2),
            .neg_step = (float)(-(c->lr / bc1)), .bc2_sqrt = (float)sqrt(bc2),
            .eps = (float)c->eps,
            .wd = (float)c->weight_decay,
            .decay = (float)(1.0 - c->lr * c->weight_decay),
            .use_wd = c->kind == SNN_OPT_ADAM && c->weight_decay != 0.0,
            .use_decay = c->kind == SNN_OPT_ADAMW && c->weight_decay != 0.0,
        };
    } else {
        j.neg_lr = (float)(-c->lr);
        j.wd = (float)c->weight_decay;
        j.momentum = (float)c->momentum;
        j.use_wd = c->weight_decay != 0.0;
        j.first = o->step == 1;
    }
    int64_t chunks = 0;
    for (int32_t i = 0; i < o->n; i++)
        if (o->sizes[i] >= PARALLEL_MIN) chunks += (o->sizes[i] + CHUNK - 1) / CHUNK;
    const int32_t tasks = chunks > 0 ? snnrt_get_threads() : 1;
    snnrt_units_init(&j.chunks, chunks, tasks);
    snnrt_pool_run(tasks, step_part, &j);
}

void snnrt_optim_free(snnrt_optim *o) {
    for (int32_t i = 0; o->m && o->v && i < o->n; i++) {
        snnrt_free(o->m[i]);
        snnrt_free(o->v[i]);
    }
    snnrt_free(o->sizes);
    snnrt_free(o->m);
    snnrt_free(o->v);
    memset(o, 0, sizeof *o);
}
