/* test_runtime_torchrng.c: runtime/snnrt_torchrng.c against numbers torch 1.13 printed.
 *
 * The known answers are in tests/reference/fixtures/torchrng/kat.h, written by
 * tests/reference/gen_torchrng.py with Debian's torch (committed: CI has no torch). Every check
 * is bit for bit: raw MT19937 outputs (before and after the first twist, and a seed above
 * 2^32, which torch truncates to its low 32 bits), random64, uniform_ on a [5, 7] float32
 * tensor (which pins the low-24-bit draw and the fused multiply-add), nn.Linear's init of two
 * layers from one generator through the trainer's own snnrt_params_init (with a constant
 * parameter between them, which must draw nothing), and randperm, including the trainer's
 * epoch orders (snnrt_epoch_order: epoch e of --seed s is the (e+1)-th randperm of a generator
 * seeded s + 1), computed for epoch 1 without computing epoch 0 first, as a resumed run does.
 */
#include "snnrt_lib.h"
#include "../reference/fixtures/torchrng/kat.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

enum { NSEEDS = sizeof kat_seeds / sizeof kat_seeds[0] };

static int same_bits(const float *got, const uint32_t *want, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &got[i], 4);
        bad += u != want[i];
    }
    return bad;
}

static void test_random(void) {
    for (int s = 0; s < NSEEDS; s++) {
        snnrt_torch_gen g;
        snnrt_torch_seed(&g, kat_seeds[s]);
        int bad = 0;
        for (int i = 0; i < 632; i++) {
            const uint32_t v = snnrt_torch_random(&g);
            if (i < 8) bad += v != kat_random_first[s][i];
            if (i >= 624) bad += v != kat_random_624[s][i - 624];
        }
        CU_ASSERT_EQUAL(bad, 0);
        snnrt_torch_seed(&g, kat_seeds[s]);
        for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(snnrt_torch_random64(&g), kat_random64[s][i]);
    }
}

static void test_uniform(void) {
    enum { NC = sizeof kat_uniform_case / sizeof kat_uniform_case[0] };
    for (int c = 0; c < NC; c++) {
        snnrt_torch_gen g;
        float t[35];
        snnrt_torch_seed(&g, kat_uniform_case[c].seed);
        snnrt_torch_uniform(&g, kat_uniform_case[c].from, kat_uniform_case[c].to, t, 35);
        CU_ASSERT_EQUAL(same_bits(t, kat_uniform_5x7[c], 35), 0);
    }
}

/* The trainer's init of fc1 (7 -> 5), a constant, fc2 (5 -> 3) from seed 3 = torch's. */
static void test_linear_init(void) {
    const snn_param_desc ps[5] = {
        {"fc1.weight", 2, {5, 7}, 35, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 7},
        {"fc1.bias", 1, {5}, 5, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 7},
        {"h.beta", 1, {5}, 5, SNN_INIT_CONST, 0.95f, 0},
        {"fc2.weight", 2, {3, 5}, 15, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 5},
        {"fc2.bias", 1, {3}, 3, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 5},
    };
    const snn_model_desc m = {.abi_version = SNN_ABI_VERSION, .n_params = 5, .params = ps};
    float w1[35], b1[5], beta[5], w2[15], b2[3];
    float *const params[5] = {w1, b1, beta, w2, b2};
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_params_init(&m, 3, params, &err), 0);
    CU_ASSERT_EQUAL(same_bits(w1, kat_fc1_weight, 35), 0);
    CU_ASSERT_EQUAL(same_bits(b1, kat_fc1_bias, 5), 0);
    CU_ASSERT_EQUAL(same_bits(w2, kat_fc2_weight, 15), 0);
    CU_ASSERT_EQUAL(same_bits(b2, kat_fc2_bias, 3), 0);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(beta[i], 0.95f);
    CU_ASSERT_EQUAL(snnrt_params_init(&m, 3 + (1ull << 32), params, &err), 0); /* low 32 bits */
    CU_ASSERT_EQUAL(same_bits(w2, kat_fc2_weight, 15), 0);
}

static uint64_t perm_sum(const int64_t *p, int64_t n) {
    uint64_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (uint64_t)(i + 1) * (uint64_t)p[i];
    return s;
}

static void test_randperm(void) {
    snnrt_torch_gen g;
    int64_t p10[10];
    snnrt_torch_seed(&g, 1);
    for (int call = 0; call < 2; call++) {
        snnrt_torch_randperm(&g, 10, p10);
        CU_ASSERT(memcmp(p10, kat_randperm10[call], sizeof p10) == 0);
    }
    enum { N = 60000 };
    int64_t *p = malloc(N * sizeof *p);
    snnrt_torch_seed(&g, 1);
    for (int call = 0; call < 2; call++) {
        snnrt_torch_randperm(&g, N, p);
        CU_ASSERT(memcmp(p, kat_randperm60000_prefix[call], 16 * sizeof *p) == 0);
        CU_ASSERT_EQUAL(perm_sum(p, N), kat_randperm60000_sum[call]);
    }
    snnrt_torch_seed(&g, 7);
    int64_t small[6];
    snnrt_torch_randperm(&g, 1, small);
    snnrt_torch_randperm(&g, 2, small + 1);
    snnrt_torch_randperm(&g, 3, small + 3);
    CU_ASSERT(memcmp(small, kat_randperm_123, sizeof small) == 0);
    CU_ASSERT_EQUAL(snnrt_torch_random(&g), kat_randperm_123_next);
    /* skipping consumes what randperm consumes */
    snnrt_torch_seed(&g, 7);
    snnrt_torch_randperm_skip(&g, 1);
    snnrt_torch_randperm_skip(&g, 2);
    snnrt_torch_randperm_skip(&g, 3);
    CU_ASSERT_EQUAL(snnrt_torch_random(&g), kat_randperm_123_next);
    free(p);
}

/* --seed 0: epoch e = (e+1)-th randperm of Generator().manual_seed(1); epoch 1 alone. */
static void test_epoch_order(void) {
    enum { N = 60000 };
    int64_t *p = malloc(N * sizeof *p), p10[10];
    for (int e = 1; e >= 0; e--) {
        snnrt_epoch_order(0, e, N, p);
        CU_ASSERT(memcmp(p, kat_randperm60000_prefix[e], 16 * sizeof *p) == 0);
        CU_ASSERT_EQUAL(perm_sum(p, N), kat_randperm60000_sum[e]);
        snnrt_epoch_order(0, e, 10, p10);
        CU_ASSERT(memcmp(p10, kat_randperm10[e], sizeof p10) == 0);
    }
    free(p);
}

void test_runtime_torchrng_register(void) {
    CU_pSuite s = CU_add_suite("runtime_torchrng", NULL, NULL);
    CU_add_test(s, "MT19937 random() and random64() = torch's", test_random);
    CU_add_test(s, "uniform_ on float32 = torch's, bit for bit", test_uniform);
    CU_add_test(s, "nn.Linear init from one generator = torch's", test_linear_init);
    CU_add_test(s, "randperm = torch's (10, 60000, 1..3)", test_randperm);
    CU_add_test(s, "epoch orders = the reference's randperm sequence", test_epoch_order);
}
