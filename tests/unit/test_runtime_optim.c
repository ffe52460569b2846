/* test_runtime_optim.c: Adam, AdamW and SGD (runtime/snnrt_optim.c) against PyTorch.
 *
 * The expected numbers were made with torch 1.13 (Debian python3-torch) by running each
 * torch.optim optimizer for three steps on the 10-element parameter P0 with gradients G[0..2]:
 *
 *     p = torch.tensor(P0, requires_grad=True); opt = torch.optim.Adam([p], lr=0.01)
 *     for g in G: p.grad = torch.tensor(g); opt.step()
 *     print p, opt.state[p]['exp_avg'], ['exp_avg_sq'] (or ['momentum_buffer']), "%.9g"
 *
 * and are committed here so CI needs no torch. They must match bit for bit: snnrt_optim.c fuses
 * exactly where torch does. Ten elements cover the AVX path's full vector and its masked tail.
 * A second test runs a tensor large enough to be split over OpenMP chunks against a plain
 * scalar transcription of the formulas, also bit for bit.
 */
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 10
static const float P0[N] = {0.5f, -1.0f, 2.0f, 0.0f, 3e-3f, -0.25f, 1.5f, 0.1f, -2.0f, 0.75f};
static const float G[3][N] = {{0.1f, -0.2f, 0.3f, 0.0f, 1e-4f, -5.0f, 2.5f, 0.01f, -0.3f, 0.07f},
                              {0.2f, 0.1f, -0.3f, 0.5f, -1e-4f, 4.0f, 2.0f, -0.02f, 0.0f, 0.07f},
                              {-0.1f, 0.3f, 0.3f, -0.5f, 2e-4f, -3.0f, -1.0f, 0.03f, 0.6f, -0.07f}};

/* Per case: parameter after 3 steps, first state (exp_avg / momentum_buffer), second state. */
static const float EXPECT[6][3][N] = {
    /* Adam(lr=0.01) */
    {{0.476147294f, -0.991230547f, 1.98716843f, -0.00698954519f, -0.0114548048f, -0.236299887f, 1.47473443f, 0.0902286395f, -1.9866997f, 0.727380097f},
     {0.0161000006f, 0.0228000004f, 0.0273000002f, -0.00500000268f, 1.90999999e-05f, -0.344999999f, 0.282499999f, 0.00200999994f, 0.0357000045f, 0.00496999919f},
     {5.99400119e-05f, 0.000139910044f, 0.00026973011f, 0.000499750022f, 5.99700081e-11f, 0.0499340296f, 0.0112335077f, 1.39940016e-06f, 0.000449820131f, 1.46853054e-05f}},
    /* Adam(lr=0.01, weight_decay=0.1) */
    {{0.473813117f, -0.982609272f, 1.97762454f, -0.0069831619f, 0.000406015432f, -0.236193269f, 1.47423875f, 0.0813160762f, -1.97928786f, 0.722180247f},
     {0.0293616895f, -0.00404324243f, 0.0812590644f, -0.00507441908f, -5.29866338e-05f, -0.351578623f, 0.322861105f, 0.00450717052f, -0.0182202104f, 0.0250050183f},
     {8.70962758e-05f, 0.000130490909f, 0.000508183963f, 0.000500494731f, 8.16926415e-10f, 0.0501371101f, 0.012347932f, 2.02332444e-06f, 0.000450583553f, 4.17072406e-05f}},
    /* AdamW(lr=0.1, betas=(0.8, 0.99), weight_decay=0.01) */
    {{0.264630467f, -0.923833191f, 1.87087977f, -0.0682785809f, -0.138885587f, -0.119285449f, 1.25091696f, 0.00336686522f, -1.87430084f, 0.530019403f},
     {0.0248000007f, 0.0504000001f, 0.0504000038f, -0.0199999958f, 3.68000001e-05f, -0.600000024f, 0.440000057f, 0.00407999987f, 0.0816000029f, 0.00616000034f},
     {0.000594010053f, 0.00139104016f, 0.0026730902f, 0.00497499993f, 5.97009997e-10f, 0.493424982f, 0.110856242f, 1.39400991e-05f, 0.00448209047f, 0.000145534897f}},
    /* SGD(lr=0.1, momentum=0.9) */
    {{0.444900006f, -0.994800031f, 1.94570005f, -0.0449999981f, 0.00297189993f, 0.645000041f, 0.542500019f, 0.0980900005f, -1.97870004f, 0.724729955f},
     {0.160999984f, 0.228000015f, 0.273000002f, -0.0500000119f, 0.000190999999f, -3.45000005f, 2.82499981f, 0.0200999994f, 0.357000023f, 0.0496999994f},
     {0}},
    /* SGD(lr=0.1, momentum=0.9, weight_decay=0.05) */
    {{0.431224704f, -0.967199385f, 1.89025903f, -0.0447500013f, 0.00288824947f, 0.64449501f, 0.50634855f, 0.0953059569f, -1.9234091f, 0.703950226f},
     {0.225878149f, 0.0957437754f, 0.539409995f, -0.0525000095f, 0.000593756267f, -3.43376255f, 2.98188925f, 0.0335153751f, 0.0920900404f, 0.149285167f},
     {0}},
    /* SGD(lr=0.1) */
    {{0.479999989f, -1.01999998f, 1.97000003f, 0.0f, 0.00298000011f, 0.150000006f, 1.14999998f, 0.0979999974f, -2.02999997f, 0.742999971f},
     {0},
     {0}},
};

static const snnrt_optim_config CASES[6] = {
    {SNN_OPT_ADAM, 0.01, 0.9, 0.999, 1e-8, 0.0, 0.0},
    {SNN_OPT_ADAM, 0.01, 0.9, 0.999, 1e-8, 0.1, 0.0},
    {SNN_OPT_ADAMW, 0.1, 0.8, 0.99, 1e-8, 0.01, 0.0},
    {SNN_OPT_SGD, 0.1, 0.0, 0.0, 0.0, 0.0, 0.9},
    {SNN_OPT_SGD, 0.1, 0.0, 0.0, 0.0, 0.05, 0.9},
    {SNN_OPT_SGD, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0},
};

static int close_to(float got, float want) {
    return got == want; /* bit for bit: the fusions are torch's (see snnrt_optim.c) */
}

static void check_case(int c) {
    snnrt_optim o;
    snnrt_error err = {{0}};
    const int64_t size = N;
    CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(&o, &CASES[c], 1, &size, &err), 0);
    float p[N];
    for (int i = 0; i < N; i++) p[i] = P0[i];
    float *params[1] = {p};
    for (int s = 0; s < 3; s++) {
        const float *grads[1] = {G[s]};
        snnrt_optim_step(&o, params, grads);
    }
    CU_ASSERT_EQUAL(o.step, 3);
    const int ns = snnrt_optim_n_state(&CASES[c]);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        bad += !close_to(p[i], EXPECT[c][0][i]);
        if (ns >= 1) bad += !close_to(o.m[0][i], EXPECT[c][1][i]);
        if (ns >= 2) bad += !close_to(o.v[0][i], EXPECT[c][2][i]);
    }
    if (bad) {
        fprintf(stderr, "\n  case %d (%s): %d values differ from PyTorch; p:", c,
                snnrt_optim_name(CASES[c].kind), bad);
        for (int i = 0; i < N; i++) fprintf(stderr, " %.9g/%.9g", p[i], EXPECT[c][0][i]);
        fprintf(stderr, "\n");
    }
    CU_ASSERT_EQUAL(bad, 0);
    snnrt_optim_free(&o);
}

static void test_adam(void) { check_case(0); }
static void test_adam_weight_decay(void) { check_case(1); }
static void test_adamw(void) { check_case(2); }
static void test_sgd_momentum(void) { check_case(3); }
static void test_sgd_momentum_weight_decay(void) { check_case(4); }
static void test_sgd_plain(void) {
    check_case(5);
    CU_ASSERT_EQUAL(snnrt_optim_n_state(&CASES[5]), 0);
}

/* A tensor of 2^22 + 3 elements (split over OpenMP threads, odd tail) against a scalar
 * transcription of the formulas. */
static void test_adam_large_matches_scalar(void) {
    const int64_t n = ((int64_t)1 << 22) + 3;
    float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
    float *q = malloc(n * 4);
    snnrt_rng r;
    snnrt_rng_seed(&r, 7, 0);
    for (int64_t i = 0; i < n; i++) q[i] = p[i] = snnrt_rng_float(&r) - 0.5f;
    const snnrt_optim_config cfg = {SNN_OPT_ADAM, 5e-4, 0.9, 0.999, 1e-8, 0.0, 0.0};
    snnrt_optim o;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(&o, &cfg, 1, &n, &err), 0);
    float *params[1] = {p};
    const float *grads[1] = {g};
    double maxrel = 0.0;
    for (int s = 1; s <= 4; s++) {
        for (int64_t i = 0; i < n; i++) g[i] = (snnrt_rng_float(&r) - 0.5f) * (float)(i % 7 + 1);
        snnrt_optim_step(&o, params, grads);
        const double bc1 = 1.0 - pow(0.9, s), bc2 = 1.0 - pow(0.999, s);
        for (int64_t i = 0; i < n; i++) {
            const float mb = m[i] * 0.9f, vb = v[i] * 0.999f, og = 0.001f * g[i];
            m[i] = fmaf(g[i], 0.1f, mb);
            v[i] = fmaf(og, g[i], vb);
            float d = sqrtf(v[i]) / (float)sqrt(bc2) + 1e-8f;
            q[i] = q[i] + ((float)(-5e-4 / bc1) * m[i]) / d;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double rel = fabs((double)p[i] - q[i]) / (fabs(q[i]) + 1e-6);
        if (rel > maxrel) maxrel = rel;
    }
    if (maxrel != 0.0) fprintf(stderr, "\n  max relative difference %g\n", maxrel);
    CU_ASSERT_EQUAL(maxrel, 0.0); /* the same operations, so the same bits */
    snnrt_optim_free(&o);
    free(p), free(g), free(m), free(v), free(q);
}

/* The side task of snnrt_optim_step_with: it runs once per step, whatever the thread count, and
 * has finished when the step returns; the update's bits are snnrt_optim_step's. */
typedef struct {
    int calls;
    float *out;
    int64_t n;
} side_probe;

static void side_fill(void *ctx) {
    side_probe *sp = ctx;
    __atomic_add_fetch(&sp->calls, 1, __ATOMIC_RELAXED);
    for (int64_t i = 0; i < sp->n; i++) sp->out[i] = (float)(i + sp->calls);
}

static void test_step_with_side_task(void) {
    const int64_t sizes[2] = {((int64_t)1 << 19) + 5, 37}; /* one split in chunks, one whole */
    const snnrt_optim_config cfg = {SNN_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0};
    const int32_t saved = snnrt_get_threads();
    for (int32_t threads = 1; threads <= 2; threads++) {
        snnrt_set_threads(threads);
        snnrt_optim oa, ob;
        snnrt_error err = {{0}};
        CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(&oa, &cfg, 2, sizes, &err), 0);
        CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(&ob, &cfg, 2, sizes, &err), 0);
        float *pa[2], *pb[2], *g[2];
        snnrt_rng r;
        snnrt_rng_seed(&r, 11, 0);
        for (int i = 0; i < 2; i++) {
            pa[i] = malloc((size_t)sizes[i] * 4), pb[i] = malloc((size_t)sizes[i] * 4);
            g[i] = malloc((size_t)sizes[i] * 4);
            for (int64_t e = 0; e < sizes[i]; e++) pa[i][e] = pb[i][e] = snnrt_rng_float(&r) - 0.5f;
        }
        float out[1000];
        side_probe sp = {0, out, 1000};
        for (int step = 1; step <= 3; step++) {
            for (int i = 0; i < 2; i++)
                for (int64_t e = 0; e < sizes[i]; e++) g[i][e] = snnrt_rng_float(&r) - 0.5f;
            snnrt_optim_step(&oa, pa, (const float *const *)g);
            snnrt_optim_step_with(&ob, pb, (const float *const *)g, side_fill, &sp);
            CU_ASSERT_EQUAL(sp.calls, step);
            CU_ASSERT_EQUAL(out[999], (float)(999 + step));
        }
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_EQUAL(memcmp(pa[i], pb[i], (size_t)sizes[i] * 4), 0);
            free(pa[i]), free(pb[i]), free(g[i]);
        }
        snnrt_optim_free(&oa);
        snnrt_optim_free(&ob);
    }
    snnrt_set_threads(saved);
}

static void test_float_decimal_and_config(void) {
    CU_ASSERT_EQUAL(snnrt_float_decimal(0.9f), 0.9);
    CU_ASSERT_EQUAL(snnrt_float_decimal(5e-4f), 5e-4);
    CU_ASSERT_EQUAL(snnrt_float_decimal(1e-8f), 1e-8);
    CU_ASSERT_EQUAL(snnrt_float_decimal(0.999f), 0.999);
    CU_ASSERT_EQUAL(snnrt_float_decimal(0.0f), 0.0);
    snnrt_optim o;
    snnrt_error err = {{0}};
    const int64_t size = 4;
    snnrt_optim_config bad = {SNN_OPT_ADAM, 1e-3, 1.0, 0.999, 1e-8, 0.0, 0.0};
    CU_ASSERT_EQUAL(snnrt_optim_init(&o, &bad, 1, &size, &err), -1);
    bad.kind = 42;
    CU_ASSERT_EQUAL(snnrt_optim_init(&o, &bad, 1, &size, &err), -1);
    CU_ASSERT_STRING_EQUAL(snnrt_optim_name(SNN_OPT_ADAMW), "adamw");
}

void test_runtime_optim_register(void) {
    CU_pSuite s = CU_add_suite("runtime_optim", NULL, NULL);
    CU_add_test(s, "Adam vs torch", test_adam);
    CU_add_test(s, "Adam weight_decay vs torch", test_adam_weight_decay);
    CU_add_test(s, "AdamW vs torch", test_adamw);
    CU_add_test(s, "SGD momentum vs torch", test_sgd_momentum);
    CU_add_test(s, "SGD momentum + weight_decay vs torch", test_sgd_momentum_weight_decay);
    CU_add_test(s, "SGD plain vs torch", test_sgd_plain);
    CU_add_test(s, "Adam chunked = scalar formula", test_adam_large_matches_scalar);
    CU_add_test(s, "step with a side task: once a step, same bits", test_step_with_side_task);
    CU_add_test(s, "decimal hyperparameters, bad config", test_float_decimal_and_config);
}
