/* test_runtime_shard.c: row blocks on threads (runtime/snnrt_shard.c) against one unsplit call.
 *
 * Two small models go through the whole front end and the JIT: the Tutorial 5 network (direct
 * input) and one with rate-coded input. Each batch is run once unsplit and once cut into three
 * row blocks on three threads; the loss and every gradient must agree to float32 rounding
 * (the blocks sum the batch in another order) and the scores row by row. The rate-coded model
 * also checks that a block draws the same random input as the same rows unsplit
 * (snn_batch.row0): were the draws keyed by the row inside the block, the second and third
 * blocks would see other spikes and the loss would differ by far more than rounding.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "codegen/codegen.h"
#include "lower.h"
#include "passes/passes.h"
#include "sema.h"
#include "snnrt.h"
#include "unit_util.h"
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

void omp_set_num_threads(int n);

static const snn_jit_symbol rt_syms[] = {
    {"snnrt_sgemm", (void *)snnrt_sgemm},
    {"snnrt_sgemm_bias", (void *)snnrt_sgemm_bias},
    {"snnrt_transpose", (void *)snnrt_transpose},
    {"snnrt_uniform", (void *)snnrt_uniform},
    {"snnrt_uniform_fill", (void *)snnrt_uniform_fill},
};

#define TRAIN_BLOCK(loss)                                                              \
    "train m {\n"                                                                        \
    "    data idx(\"/nonexistent\")\n    steps 12\n    batch 50\n    epochs 1\n"          \
    "    optimizer adam(lr = 1e-3)\n"                                                   \
    "    loss " loss "\n"                                                                \
    "    metric rate_accuracy(o)\n"                                                     \
    "}\n"

static const char *const MODEL_DIRECT =
    "model m {\n"
    "    input x[40]\n"
    "    encode x = direct\n"
    "    h = leaky(linear(x, 48), beta = 0.9)\n"
    "    o = leaky(linear(h, 10), beta = 0.9)\n"
    "    output o\n"
    "}\n"
    TRAIN_BLOCK("ce_membrane(o)");

static const char *const MODEL_RATE =
    "model m {\n"
    "    input x[40]\n"
    "    encode x = rate(gain = 1.0)\n"
    "    h = leaky(linear(x, 48), beta = 0.9)\n"
    "    o = leaky(linear(h, 10), beta = 0.9)\n"
    "    output o\n"
    "}\n"
    TRAIN_BLOCK("ce_rate(o)");

static const snn_model_desc *compile(snn_arena *a, const char *src) {
    snn_diag *d = snn_diag_new(a);
    snn_program *prog = snn_load_program(a, d, snn_intern_cstr(a, "shard.snn"), src,
                                         strlen(src), NULL);
    snn_ir_module *m = prog && snn_sema(a, d, prog) ? snn_lower(a, d, prog) : NULL;
    if (m) {
        snn_pass_options po = snn_pass_options_default();
        po.verify = true;
        if (!snn_run_passes(a, d, m, &po)) m = NULL;
    }
    if (m && !(snn_autodiff(a, d, m) && snn_ir_verify(m, d))) m = NULL;
    snn_codegen_options o;
    snn_codegen_options_default(&o);
    o.verify = true;
    snn_jit *j = m ? snn_jit_compile(a, d, m, &o, rt_syms, (int)(sizeof rt_syms / sizeof rt_syms[0]))
                   : NULL;
    if (!j) {
        snn_diag_print(d, stderr);
        return NULL;
    }
    return snn_jit_model(j);
}

static float **param_table(const snn_model_desc *md, uint64_t seed, bool fill) {
    float **p = calloc((size_t)md->n_params, sizeof *p);
    snnrt_rng r;
    snnrt_rng_seed(&r, seed, 0);
    for (int32_t i = 0; i < md->n_params; i++) {
        p[i] = calloc((size_t)md->params[i].size, sizeof **p);
        for (int64_t k = 0; fill && k < md->params[i].size; k++)
            p[i][k] = 0.6f * (2.0f * snnrt_rng_float(&r) - 1.0f);
    }
    return p;
}

static void free_table(const snn_model_desc *md, float **p) {
    for (int32_t i = 0; i < md->n_params; i++) free(p[i]);
    free(p);
}

/* The split run (rn, gn, sn) against the unsplit one (r1, g1, s1) over B rows: loss and every
 * gradient to float32 rounding (the blocks sum the batch in another order), scores row by row
 * (a spike count may flip on a rounding tie). */
static void check_same(const snn_model_desc *md, const char *what, int64_t B, snn_result r1,
                       snn_result rn, float **g1, float **gn) {
    double lerr = fabs((double)r1.loss - rn.loss) / fmax(fabs((double)r1.loss), 1e-6), gerr = 0;
    for (int32_t i = 0; i < md->n_params; i++)
        gerr = fmax(gerr, unit_rel_err(gn[i], g1[i], md->params[i].size));
    int64_t same = 0;
    for (int64_t k = 0; k < B * md->n_classes; k++) same += r1.scores[k] == rn.scores[k];
    if (lerr > 1e-5 || gerr > 1e-4 || same < B * md->n_classes - 2)
        printf("\n  %s: loss %.9g vs %.9g (rel %.3g), worst gradient rel %.3g, scores equal "
               "%lld/%lld", what, (double)r1.loss, (double)rn.loss, lerr, gerr, (long long)same,
               (long long)(B * md->n_classes));
    CU_ASSERT_TRUE(lerr <= 1e-5);
    CU_ASSERT_TRUE(gerr <= 1e-4);
    CU_ASSERT_TRUE(same >= B * md->n_classes - 2);
}

static void check_model(const char *src, const char *what) {
    snn_arena *a = snn_arena_new();
    const snn_model_desc *md = compile(a, src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    enum { B = 50, T = 12, THREADS = 3 };
    float **params = param_table(md, 7, true), **g1 = param_table(md, 0, false),
          **g3 = param_table(md, 0, false);
    float *x = calloc((size_t)(B * md->n_inputs), sizeof *x);
    int32_t lab[B];
    snnrt_rng r;
    snnrt_rng_seed(&r, 3, 1);
    for (int64_t k = 0; k < B * md->n_inputs; k++) x[k] = snnrt_rng_float(&r);
    for (int b = 0; b < B; b++) lab[b] = (int32_t)snnrt_rng_below(&r, (uint64_t)md->n_classes);
    float s1[B * 10], s3[B * 10];
    void *w1 = aligned_alloc(64, (size_t)((md->work_bytes(B, T) + 63) / 64 * 64));
    void *w3 = aligned_alloc(64, (size_t)((md->work_bytes(B, T) + 63) / 64 * 64));
    snnrt_error err;
    snnrt_shards one, three;
    CU_ASSERT_EQUAL_FATAL(snnrt_shards_init(&one, md, 1, B, T, g1, w1, &err), 0);
    CU_ASSERT_EQUAL_FATAL(snnrt_shards_init(&three, md, THREADS, B, T, g3, w3, &err), 0);
    CU_ASSERT_EQUAL(one.n, 1);
    CU_ASSERT_EQUAL(three.n, THREADS);
    omp_set_num_threads(THREADS);
    snn_batch bt = {B, T, x, lab, 0x5eed, 0};
    snn_result r1 = {0, s1}, r3 = {0, s3};
    CU_ASSERT_EQUAL(snnrt_shards_forward_backward(&one, (const float *const *)params, &bt, &r1), 0);
    CU_ASSERT_EQUAL(snnrt_shards_forward_backward(&three, (const float *const *)params, &bt, &r3), 0);
    check_same(md, what, B, r1, r3, g1, g3);

    /* evaluation, and a batch smaller than planned (the last test batch): fewer blocks */
    for (int64_t rows = B; rows >= 20; rows -= 30) {
        snn_batch eb = {rows, T, x, lab, 0x5eed, 0};
        CU_ASSERT_EQUAL(snnrt_shards_forward(&one, (const float *const *)params, &eb, &r1), 0);
        CU_ASSERT_EQUAL(snnrt_shards_forward(&three, (const float *const *)params, &eb, &r3), 0);
        CU_ASSERT_DOUBLE_EQUAL(r1.loss, r3.loss, 1e-5 * fabs((double)r1.loss) + 1e-7);
    }
    snnrt_shards_free(&one);
    snnrt_shards_free(&three);
    free(w1);
    free(w3);
    free(x);
    free_table(md, params);
    free_table(md, g1);
    free_table(md, g3);
    snn_arena_free(a);
}

static void test_shard_direct(void) { check_model(MODEL_DIRECT, "direct input"); }
static void test_shard_rate(void) { check_model(MODEL_RATE, "rate-coded input"); }

/* An input layer big enough for joint products (snnrt_team.c: 784 inputs, per block at least
 * 4M multiply-adds) and a batch that splits into equal blocks, so the blocks' threads form a
 * team: x W^T is one product over the whole batch, split by column panels, and the weight
 * gradient the blocks' products summed into block 0's gradient (its parameter flagged joint,
 * the blocks' sum skipping it). Against the unsplit call: loss, every gradient and the scores,
 * with inputs half zeros like an image set's (so the rows and cols kinds skip); and again, the
 * same bits (the panels and tiles the threads take change from run to run, and so do the
 * blocks' partials made ahead while a member is late: the result may not). */
static const char *const MODEL_WIDE =
    "model m {\n"
    "    input x[784]\n"
    "    encode x = direct\n"
    "    h = leaky(linear(x, 300), beta = 0.9)\n"
    "    o = leaky(linear(h, 10), beta = 0.9)\n"
    "    output o\n"
    "}\n"
    TRAIN_BLOCK("ce_membrane(o)");

static void check_joint(const snn_model_desc *md, int threads, int compare_kinds) {
    enum { B = 60, T = 6 };
    float **params = param_table(md, 11, true), **g1 = param_table(md, 0, false),
          **gn = param_table(md, 0, false), **gn2 = param_table(md, 0, false);
    for (int64_t k = 0; k < md->params[0].size; k++) params[0][k] *= 0.1f; /* spikes, not all */
    float *x = calloc((size_t)(B * md->n_inputs), sizeof *x);
    int32_t lab[B];
    snnrt_rng r;
    snnrt_rng_seed(&r, 5, 2);
    for (int64_t k = 0; k < B * md->n_inputs; k++)
        x[k] = snnrt_rng_float(&r) < 0.5f ? 0.0f : snnrt_rng_float(&r);
    for (int b = 0; b < B; b++) lab[b] = (int32_t)snnrt_rng_below(&r, (uint64_t)md->n_classes);
    float s1[B * 10], sn[B * 10];
    void *w1 = aligned_alloc(64, (size_t)((md->work_bytes(B, T) + 63) / 64 * 64));
    void *wn = aligned_alloc(64, (size_t)((md->work_bytes(B, T) + 63) / 64 * 64));
    snnrt_error err;
    snnrt_shards one, many;
    CU_ASSERT_EQUAL_FATAL(snnrt_shards_init(&one, md, 1, B, T, g1, w1, &err), 0);
    CU_ASSERT_EQUAL_FATAL(snnrt_shards_init(&many, md, threads, B, T, gn, wn, &err), 0);
    CU_ASSERT_EQUAL_FATAL(many.n, threads);
    omp_set_num_threads(threads);
    snn_batch bt = {B, T, x, lab, 0x5eed, 0};
    snn_result r1 = {0, s1}, rn = {0, sn};
    CU_ASSERT_EQUAL(snnrt_shards_forward_backward(&one, (const float *const *)params, &bt, &r1), 0);
    CU_ASSERT_EQUAL(snnrt_shards_forward_backward(&many, (const float *const *)params, &bt, &rn), 0);
    int32_t joint = 0;
    for (int32_t i = 0; i < md->n_params; i++) joint += many.team.joint[i];
    CU_ASSERT_EQUAL(joint, 1);           /* the input layer's weight, and only it */
    CU_ASSERT_EQUAL(many.team.joint[0], 1);
    check_same(md, threads == 2 ? "joint, 2 threads" : "joint, 3 threads", B, r1, rn, g1, gn);

    /* again: the same bits, whichever thread took which panel; and with one member arriving
     * 5 ms late at the weight gradient, so that the others precompute their blocks' partials
     * of it (the first member, then the last) */
    float loss_first = rn.loss;
    for (int32_t i = 0; i < md->n_params; i++)
        memcpy(gn2[i], gn[i], (size_t)md->params[i].size * sizeof(float));
    const int32_t late[] = {-1, 0, threads - 1};
    for (int v = 0; v < 3; v++) {
        snnrt_kernel_joint_delay(late[v], 5000);
        CU_ASSERT_EQUAL(snnrt_shards_forward_backward(&many, (const float *const *)params, &bt, &rn), 0);
        snnrt_kernel_joint_delay(-1, 0);
        CU_ASSERT_EQUAL(rn.loss, loss_first);
        for (int32_t i = 0; i < md->n_params; i++)
            CU_ASSERT_EQUAL(memcmp(gn2[i], gn[i], (size_t)md->params[i].size * sizeof(float)), 0);
    }

    /* the weight gradient's tiles (the cols kind forced) against the groups kind that auto
     * takes for these half-zero inputs: the same bits */
    if (compare_kinds && snnrt_kernel_have_avx512()) {
        const int kinds[2] = {SNNRT_KERNEL_COLS, SNNRT_KERNEL_GROUPS};
        for (int v = 0; v < 2; v++) {
            snnrt_kernel_force(kinds[v]);
            CU_ASSERT_EQUAL(snnrt_shards_forward_backward(&many, (const float *const *)params, &bt, &rn), 0);
            snnrt_kernel_force(SNNRT_KERNEL_AUTO);
            CU_ASSERT_EQUAL(memcmp(gn2[0], gn[0], (size_t)md->params[0].size * sizeof(float)), 0);
        }
    }

    /* evaluation: x W^T jointly, scores as unsplit */
    CU_ASSERT_EQUAL(snnrt_shards_forward(&one, (const float *const *)params, &bt, &r1), 0);
    CU_ASSERT_EQUAL(snnrt_shards_forward(&many, (const float *const *)params, &bt, &rn), 0);
    CU_ASSERT_DOUBLE_EQUAL(r1.loss, rn.loss, 1e-5 * fabs((double)r1.loss) + 1e-7);
    snnrt_shards_free(&one);
    snnrt_shards_free(&many);
    free(w1);
    free(wn);
    free(x);
    free_table(md, params);
    free_table(md, g1);
    free_table(md, gn);
    free_table(md, gn2);
}

static void test_shard_joint(void) {
    snn_arena *a = snn_arena_new();
    const snn_model_desc *md = compile(a, MODEL_WIDE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    CU_ASSERT_EQUAL_FATAL(md->params[0].size, 300 * 784);
    check_joint(md, 2, 1);
    check_joint(md, 3, 1);
    /* the rows kind forced: x W^T's row groups and lists are then made by each member for its
     * own block (20 rows a block at 3 threads: a last group of 2 rows inside the batch) */
    snnrt_kernel_force(SNNRT_KERNEL_ROWS);
    check_joint(md, 2, 0);
    check_joint(md, 3, 0);
    snnrt_kernel_force(SNNRT_KERNEL_AUTO);
    snn_arena_free(a);
}

/* The joint weight gradient driven directly: two members of a hand-made team each call
 * C_k = alpha_k A_k^T x_k for their block. With equal alphas the calls agree and block 0's C is
 * (1/2)(C_0 + C_1), flagged joint; with unequal ones (no generated code does this) each member
 * must fall back to its own block's product, unflagged, so that the blocks' weighted sum still
 * comes out right. Both against a double-precision reference. */
enum { JS_M = 300, JS_K = 784, JS_R = 24 };

typedef struct {
    snnrt_team *t;
    const float *a[2];
    float alpha[2];
    float *c[2];
} joint_call;

static void joint_member(void *ctx, int32_t k, int32_t n) {
    (void)n;
    joint_call *j = ctx;
    snnrt_team_join(j->t, k);
    snnrt_sgemm(1, 0, JS_M, JS_K, JS_R, j->alpha[k], j->a[k], JS_M,
                j->t->x + (int64_t)k * JS_R * JS_K, JS_K, 0.0f, j->c[k], JS_K);
    snnrt_team_join(NULL, 0);
}

static void test_joint_sum_direct(void) {
    if (!snnrt_kernel_have_avx512()) return; /* joint products need the AVX-512 kernels */
    float *x = calloc((size_t)2 * JS_R * JS_K, sizeof *x), *a[2], *c[2];
    snnrt_rng r;
    snnrt_rng_seed(&r, 9, 4);
    for (int64_t i = 0; i < 2 * JS_R * JS_K; i++)
        x[i] = snnrt_rng_float(&r) < 0.5f ? 0.0f : snnrt_rng_float(&r);
    for (int k = 0; k < 2; k++) {
        a[k] = malloc(sizeof(float) * JS_R * JS_M);
        c[k] = aligned_alloc(64, sizeof(float) * JS_M * JS_K);
        for (int64_t i = 0; i < JS_R * JS_M; i++) a[k][i] = 2.0f * snnrt_rng_float(&r) - 1.0f;
    }
    snn_param_desc pd = {.name = "w", .rank = 2, .shape = {JS_M, JS_K}, .size = JS_M * JS_K};
    snn_model_desc md = {.n_params = 1, .params = &pd};
    float *g0[1] = {c[0]}, *g1[1] = {c[1]};
    float **grads[2] = {g0, g1};
    uint8_t joint[1];
    snnrt_team t = {.n = 2, .rows = JS_R, .x = x, .x_cols = JS_K, .m = &md,
                    .grads = (float **const *)grads, .joint = joint};
    CU_ASSERT_EQUAL_FATAL(snnrt_pool_concurrency(2), 2);
    for (int agree = 1; agree >= 0; agree--) {
        joint_call j = {&t, {a[0], a[1]}, {1.0f, agree ? 1.0f : 2.0f}, {c[0], c[1]}};
        joint[0] = 0;
        snnrt_pool_run(2, joint_member, &j);
        CU_ASSERT_EQUAL(joint[0], agree);
        double worst = 0.0;
        for (int64_t i = 0; i < JS_M; i++)
            for (int64_t l = 0; l < JS_K; l++) {
                double s[2] = {0, 0};
                for (int k = 0; k < 2; k++)
                    for (int64_t q = 0; q < JS_R; q++)
                        s[k] += (double)a[k][q * JS_M + i] * x[(k * JS_R + q) * JS_K + l];
                const double want0 = agree ? 0.5 * (s[0] + s[1]) : s[0];
                const double want1 = agree ? 0.0 : 2.0 * s[1];
                worst = fmax(worst, fabs(c[0][i * JS_K + l] - want0));
                if (!agree) worst = fmax(worst, fabs(c[1][i * JS_K + l] - want1));
            }
        if (worst > 1e-4) printf("\n  joint sum (agree %d): worst abs error %.3g", agree, worst);
        CU_ASSERT_TRUE(worst <= 1e-4);
    }
    for (int k = 0; k < 2; k++) free(a[k]), free(c[k]);
    free(x);
}

/* Too few rows for a second block: one block, and the call is the model's own. */
static void test_shard_small_batch(void) {
    snn_arena *a = snn_arena_new();
    const snn_model_desc *md = compile(a, MODEL_DIRECT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    float **g = param_table(md, 0, false);
    snnrt_error err;
    snnrt_shards s;
    CU_ASSERT_EQUAL(snnrt_shards_init(&s, md, 8, 20, 4, g, NULL, &err), 0);
    CU_ASSERT_EQUAL(s.n, 1);
    CU_ASSERT_EQUAL(snnrt_shards_init(&s, md, 8, 64, 4, g, NULL, &err), 0);
    CU_ASSERT_EQUAL(s.n, 4);
    snnrt_shards_free(&s);
    free_table(md, g);
    snn_arena_free(a);
}

void test_runtime_shard_register(void) {
    CU_pSuite s = CU_add_suite("runtime_shard", NULL, NULL);
    CU_add_test(s, "row blocks = one call (direct input)", test_shard_direct);
    CU_add_test(s, "row blocks = one call (rate-coded input, draws keyed by row0)", test_shard_rate);
    CU_add_test(s, "block count from threads and batch", test_shard_small_batch);
    CU_add_test(s, "joint input-layer products over the blocks' team = one call", test_shard_joint);
    CU_add_test(s, "joint weight gradient driven directly: agreeing and disagreeing calls",
                test_joint_sum_direct);
}
