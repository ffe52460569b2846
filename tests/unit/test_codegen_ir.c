/* test_codegen_ir.c: generated code against the IR interpreter (compiler/ir/interp.h) on the
 * hand-built fixtures of tests/unit/ir_fixtures.h, after autodiff: every one-op module (each op
 * and its gradient rule) and the small Tutorial 5 network in all its variants (learnable beta,
 * synaptic hidden layer, smooth fire, hoisted input current, post-region losses). Loss, every
 * gradient and the scores must agree to float32 rounding: both sides compute in float32 and
 * differ only in summation order (sgemm) and libm.
 *
 * The comparison is per tensor: max |a - b| / max(max |b|, 1e-6), as tests/e2e/gradcheck.c
 * does, because elements that are small by cancellation carry the rounding of large terms.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "stats.h"
#include "ir/interp.h"
#include "ir_fixtures.h"
#include "ast.h"
#include "lower.h"
#include "passes/passes.h"
#include "sema.h"
#include "snnrt.h"
#include "unit_util.h"

/* plan.c fuses matmuls with K up to this (compiler/codegen/cg.h, CG_FUSE_K_MAX) */
#define CG_FUSE_K_MAX_TEST 16

static const snn_jit_symbol rt_syms[] = {
    {"snnrt_sgemm", (void *)snnrt_sgemm},
    {"snnrt_sgemm_bias", (void *)snnrt_sgemm_bias},
    {"snnrt_transpose", (void *)snnrt_transpose},
    {"snnrt_uniform", (void *)snnrt_uniform},
    {"snnrt_uniform_fill", (void *)snnrt_uniform_fill},
};

/* Runs m (after autodiff) through the JIT and the interpreter; returns the worst relative error
 * over loss, gradients and scores, and checks eval (forward) as well. */
static double compare_tl2(snn_ir_module *m, snn_arena *a, int64_t B, int64_t T0, int64_t T1,
                          double xlo, double xhi, double pscale, uint64_t seed, int opt,
                          bool time_loops, const char *what) {
    snn_diag *d = snn_diag_new(a);
    if (m->backward.n_values == 0 && !snn_autodiff(a, d, m)) {
        snn_diag_print(d, stderr);
        CU_FAIL("autodiff failed");
        return INFINITY;
    }
    if (!snn_ir_verify(m, d)) {
        snn_diag_print(d, stderr);
        CU_FAIL("module does not verify");
        return INFINITY;
    }
    snn_codegen_options o;
    snn_codegen_options_default(&o);
    o.verify = true;
    o.opt_level = opt;
    o.time_loops = time_loops;
    snn_jit *j = snn_jit_compile(a, d, m, &o, rt_syms,
                                  (int)(sizeof rt_syms / sizeof rt_syms[0]));
    if (!j) {
        snn_diag_print(d, stderr);
        CU_FAIL("codegen failed");
        return INFINITY;
    }
    const snn_model_desc *md = snn_jit_model(j);
    double result = 0;
    for (int pass = 0; pass < (T1 > 0 ? 2 : 1); pass++) {   /* one compilation, two step counts */
        int64_t T = pass ? T1 : T0;
        int np = m->n_params;
        double **pd = calloc((size_t)np, sizeof *pd);
        float **pf = calloc((size_t)np, sizeof *pf), **g1 = calloc((size_t)np, sizeof *g1),
              **g2 = calloc((size_t)np, sizeof *g2);
        for (int i = 0; i < np; i++) {
            int64_t n = snn_shape_numel(m->params[i].shape, 1);
            pd[i] = calloc((size_t)n, sizeof **pd);
            pf[i] = calloc((size_t)n, sizeof **pf);
            g1[i] = calloc((size_t)n, sizeof **g1);
            g2[i] = calloc((size_t)n, sizeof **g2);
            for (int64_t k = 0; k < n; k++) g1[i][k] = NAN;
        }
        snn_fixture_params(m, seed, pscale, pd);
        for (int i = 0; i < np; i++)
            for (int64_t k = 0; k < snn_shape_numel(m->params[i].shape, 1); k++) pf[i][k] = (float)pd[i][k];
        int64_t nx = B * m->n_inputs, ns = B * m->n_classes;
        double *xd = calloc((size_t)nx, sizeof *xd);
        float *x = calloc((size_t)nx, sizeof *x);
        int32_t *lab = calloc((size_t)B, sizeof *lab);
        snn_fixture_inputs(m, B, seed, xlo, xhi, xd, lab);
        for (int64_t k = 0; k < nx; k++) x[k] = (float)xd[k];
        float *s1 = calloc((size_t)ns, sizeof *s1), *s2 = calloc((size_t)ns, sizeof *s2),
              *s3 = calloc((size_t)ns, sizeof *s3);
        snn_batch bt = {B, T, x, lab, seed, 0};
        snn_result r1 = {0, s1}, r2 = {0, s2}, r3 = {0, s3};
        void *work = aligned_alloc(64, (size_t)md->work_bytes(B, T));
        /* NaN everywhere: a read of a buffer before its write (a reused buffer's old value, a
         * state never initialised) shows in the results */
        memset(work, 0xff, (size_t)md->work_bytes(B, T));
        if (!time_loops) {   /* --stats reports the work area the code uses (with reuse) */
            snn_codegen_sizes sz;
            CU_ASSERT(snn_codegen_stats(a, d, m, B, T, &sz));
            CU_ASSERT_EQUAL(sz.work_bytes, md->work_bytes(B, T));
        }
        int rc1 = md->forward_backward((const float *const *)pf, g1, &bt, work, &r1);
        /* Without a backward function (nothing differentiable reaches a parameter) the generated
         * code reports zero gradients; the interpreter refuses (-1), so compare its forward. */
        bool has_bwd = m->backward.n_values > 0;
        int rc2 = has_bwd ? snn_interp_forward_backward(m, (const float *const *)pf, g2, &bt, &r2)
                          : snn_interp_forward(m, (const float *const *)pf, &bt, &r2);
        CU_ASSERT_EQUAL(rc1, rc2);
        double worst = fabs((double)r1.loss - r2.loss) / fmax(fabs((double)r2.loss), 1e-6);
        const char *worst_what = "loss";
        for (int i = 0; i < np; i++) {
            double e = unit_rel_err(g1[i], g2[i], snn_shape_numel(m->params[i].shape, 1));
            if (e > worst) { worst = e; worst_what = m->params[i].name; }
        }
        if (m->scores_state >= 0) {
            double e = unit_rel_err(s1, s2, ns);
            if (e > worst) { worst = e; worst_what = "scores"; }
        }
        /* eval: same loss and scores as training's forward */
        CU_ASSERT_EQUAL(md->forward((const float *const *)pf, &bt, work, &r3), rc1);
        CU_ASSERT(r3.loss == r1.loss || (isnan(r3.loss) && isnan(r1.loss)));
        CU_ASSERT(m->scores_state < 0 || memcmp(s1, s3, (size_t)ns * sizeof *s1) == 0);
        if (!(worst <= 1e-4))
            fprintf(stderr, "\n%s (O%d): worst relative error %.3g in %s (loss %g vs %g)\n", what, opt,
                    worst, worst_what, (double)r1.loss, (double)r2.loss);
        free(work);
        for (int i = 0; i < np; i++) { free(pd[i]); free(pf[i]); free(g1[i]); free(g2[i]); }
        free(pd); free(pf); free(g1); free(g2);
        free(xd); free(x); free(lab); free(s1); free(s2); free(s3);
        result = fmax(result, worst);
    }
    snn_jit_free(j);
    return result;
}

static double compare_tl(snn_ir_module *m, snn_arena *a, int64_t B, int64_t T, double xlo,
                         double xhi, double pscale, uint64_t seed, int opt, bool time_loops,
                         const char *what) {
    return compare_tl2(m, a, B, T, 0, xlo, xhi, pscale, seed, opt, time_loops, what);
}

static double compare(snn_ir_module *m, snn_arena *a, int64_t B, int64_t T, double xlo, double xhi,
                      double pscale, uint64_t seed, int opt, const char *what) {
    return compare_tl(m, a, B, T, xlo, xhi, pscale, seed, opt, false, what);
}

static void test_op_fixtures(void) {
    int tested = 0;
    for (int op = 0; op < SNN_OP_COUNT_; op++) {
        snn_arena *a = snn_arena_new();
        snn_ir_module *m = snn_fixture_op(a, (snn_op)op);
        if (m) {
            double e = compare(m, a, 4, 3, 0.05, 0.95, 1.0, 3 + (uint64_t)op, op % 2 ? 3 : 0,
                               snn_op_infos[op].mnemonic);
            CU_ASSERT(e <= 1e-4);
            snn_ir_module_free(m);
            tested++;
        }
        snn_arena_free(a);
    }
    CU_ASSERT(tested >= 25);
}

typedef struct {
    const char *name;
    void (*set)(snn_fixture_opts *);
} variant;

static void v_default(snn_fixture_opts *o) { (void)o; }
static void v_learn_beta(snn_fixture_opts *o) { o->learn_beta = true; }
static void v_synaptic(snn_fixture_opts *o) { o->synaptic = true; }
static void v_smooth(snn_fixture_opts *o) { o->smooth = true; }
static void v_hoisted(snn_fixture_opts *o) { o->hoisted = true; }
static void v_final(snn_fixture_opts *o) { o->final_loss = true; }
static void v_all(snn_fixture_opts *o) {
    o->learn_beta = o->synaptic = o->hoisted = o->final_loss = true;
    o->beta = 0.8f; o->threshold = 0.5f;
    o->n_in = 12; o->n_hidden = 19; o->n_out = 4;
}

/* Batch sizes around the cross-entropy kernels' row blocks (lower.c: 16 rows, transposed in
 * registers, for up to 16 classes; 64 rows, CE_ROWS, above that): the loss and the logits'
 * gradient of a last, partial block, with 3, 10, 16 and 17 classes. */
static void test_ce_row_blocks(void) {
    const int64_t Bs[] = {1, 15, 16, 17, 63, 65, 130}, Cs[] = {3, 10, 16, 17};
    for (size_t q = 0; q < sizeof Cs / sizeof *Cs; q++)
        for (size_t k = 0; k < sizeof Bs / sizeof *Bs; k++) {
            if (Cs[q] != 10 && (Bs[k] == 63 || Bs[k] == 130)) continue;   /* fewer compiles */
            snn_arena *a = snn_arena_new();
            snn_fixture_opts o = snn_fixture_defaults();
            o.n_out = Cs[q];
            snn_ir_module *m = snn_fixture_tutorial5(a, &o);
            char what[48];
            snprintf(what, sizeof what, "ce rows B=%lld C=%lld", (long long)Bs[k], (long long)Cs[q]);
            CU_ASSERT(compare(m, a, Bs[k], 4, 0.0, 2.0, 2.5, 40 + k + 16 * q, 3, what) <= 1e-4);
            snn_ir_module_free(m);
            snn_arena_free(a);
        }
}

static void test_tutorial5_fixtures(void) {
    const variant vs[] = {{"default", v_default}, {"learn_beta", v_learn_beta},
                          {"synaptic", v_synaptic}, {"smooth", v_smooth},
                          {"hoisted", v_hoisted}, {"final_loss", v_final}, {"all", v_all}};
    for (size_t k = 0; k < sizeof vs / sizeof *vs; k++) {
        for (int opt = 0; opt <= 3; opt += 3) {
            snn_arena *a = snn_arena_new();
            snn_fixture_opts o = snn_fixture_defaults();
            vs[k].set(&o);
            snn_ir_module *m = snn_fixture_tutorial5(a, &o);
            double e = compare(m, a, 6, 9, 0.0, 2.0, 2.5, 17 + k, opt, vs[k].name);
            CU_ASSERT(e <= 1e-4);
            if (k == 0 && opt == 0) {   /* the memory plan reuses buffers (backward <- forward) */
                snn_codegen_sizes sz;
                CU_ASSERT(snn_codegen_stats(a, snn_diag_new(a), m, 128, 25, &sz));
                CU_ASSERT(sz.shared_bytes > 0);
                /* --stats: the tape by layer adds up to the whole tape */
                int64_t each = 0;
                for (int32_t t = 0; t < sz.n_taped; t++) each += sz.tape_each[t];
                CU_ASSERT(sz.n_taped > 0 && each == sz.tape_bytes);
                snn_layer_stats ls[8];
                int nl = snn_stats_flops(m, 128, 25, ls, 8);
                for (int32_t t = 0; t < sz.n_taped; t++)
                    nl = snn_stats_add_tape(m, sz.tape_name[t], (double)sz.tape_each[t], ls, nl, 8);
                double by_layer = 0, h_tape = 0;
                for (int l = 0; l < nl; l++) {
                    by_layer += ls[l].tape_bytes;
                    if (!strcmp(ls[l].layer, "h")) h_tape = ls[l].tape_bytes;
                }
                CU_ASSERT(by_layer == (double)sz.tape_bytes && h_tape > 0);
                /* the plan: matmul accumulated with beta 1, adjoint states in place, reuse */
                char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                CU_ASSERT(snn_codegen_print_loops(a, snn_diag_new(a), m, f));
                fclose(f);
                CU_ASSERT_PTR_NOT_NULL(strstr(text, "matmul_tn(%d.o.mem, %h.spk) added into state "
                                                    "acc.d.o.weight (beta 1)"));
                CU_ASSERT_PTR_NOT_NULL(strstr(text, "state  d.h.mem <- %d.h.mem.prev (updated in "
                                                    "place: one buffer)"));
                CU_ASSERT_PTR_NOT_NULL(strstr(text, "value bwd d.h.mem                  [B,5]  "
                                                    "(reuses h.cur)"));
                free(text);
            }
            snn_ir_module_free(m);
            snn_arena_free(a);
        }
    }
}

/* ---- states in every arrangement codegen distinguishes ----
 * Rotating states (next written in place, on the tape while training) and copied ones (next is
 * a leaf, or shared by two states), a copied state's previous value as another state's next,
 * and a backward function (not a gradient, just shape-correct reads) that reads all of them
 * through FWD; gradients accumulated (p: in the step and after), copied (r) and computed in
 * place (s). T = 1 and T = 6 (the first and the later tape slots). */

typedef struct { snn_arena *a; snn_ir_func *f; snn_region r; } sb;
static int32_t sv(sb *b, snn_ir_value v) { v.region = b->r; v.loc = (snn_loc){"s.snn", 1, 1}; return snn_ir_append(b->a, b->f, v); }
static int32_t s_bin(sb *b, snn_op op, const char *n, int32_t x, int32_t y) {
    snn_ir_value v = {.op = op, .name = n, .nargs = 2, .args = {x, y}};
    snn_shape_broadcast(b->f->values[x].shape, b->f->values[y].shape, &v.shape);
    return sv(b, v);
}
static int32_t s_cst(sb *b, float x) { return sv(b, (snn_ir_value){.op = SNN_OP_CONST, .name = "k", .fval = x}); }
static int32_t s_state(sb *b, const char *n, snn_shape sh) {
    return snn_ir_add_state(b->f, (snn_ir_state){.name = n, .shape = sh, .init = 0.25f, .init_from = -1, .next = -1});
}
static int32_t s_rd(sb *b, int32_t st, const char *n) {
    return sv(b, (snn_ir_value){.op = SNN_OP_STATE, .name = n, .ival = st, .shape = b->f->states[st].shape});
}
static int32_t s_fwd(sb *b, snn_ir_module *m, int32_t id) {
    return sv(b, (snn_ir_value){.op = SNN_OP_FWD, .name = m->forward.values[id].name, .ival = id,
                                .shape = m->forward.values[id].shape});
}
static int32_t s_red(sb *b, snn_op op, const char *n, int32_t x, snn_shape sh, float a0) {
    return sv(b, (snn_ir_value){.op = op, .name = n, .nargs = 1, .args = {x}, .shape = sh, .attr = {a0, 0}});
}
static void s_loss(sb *b, int32_t x, float k) {
    sv(b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .nargs = 1, .args = {x}, .fval = k});
}

static snn_ir_module *states_module(snn_arena *a) {
    enum { N = 4 };
    snn_ir_module *m = snn_ir_module_new(a, "states");
    m->n_inputs = N;
    m->n_classes = N;
    snn_ir_add_param(m, (snn_ir_param){.name = "p", .shape = snn_shape_1(N), .init = SNN_PINIT_CONST, .init_value = 0.5f});
    snn_ir_add_param(m, (snn_ir_param){.name = "r", .shape = snn_shape_1(N), .init = SNN_PINIT_CONST, .init_value = 0.5f});
    snn_ir_add_param(m, (snn_ir_param){.name = "s", .shape = snn_shape_1(N), .init = SNN_PINIT_CONST, .init_value = 0.5f});
    snn_shape BN = snn_shape_2(SNN_DIM_B, N), S = snn_shape_scalar();
    sb b = {a, &m->forward, SNN_REGION_PRE};
    int32_t x = sv(&b, (snn_ir_value){.op = SNN_OP_INPUT, .name = "x", .shape = BN});
    int32_t p = sv(&b, (snn_ir_value){.op = SNN_OP_PARAM, .name = "p", .ival = 0, .shape = snn_shape_1(N)});
    int32_t sa = s_state(&b, "a", BN), sbb = s_state(&b, "b", BN), sc = s_state(&b, "c", BN),
            sd = s_state(&b, "d", BN), se = s_state(&b, "e", BN);
    m->scores_state = se;
    b.r = SNN_REGION_STEP;
    int32_t ap = s_rd(&b, sa, "a.prev"), bp = s_rd(&b, sbb, "b.prev"), cp = s_rd(&b, sc, "c.prev");
    int32_t u = s_bin(&b, SNN_OP_ADD, "u", s_bin(&b, SNN_OP_MUL, "ah", ap, s_cst(&b, 0.5f)),
                      s_bin(&b, SNN_OP_MUL, "xp", x, p));
    int32_t w = s_bin(&b, SNN_OP_ADD, "w", s_bin(&b, SNN_OP_ADD, "cb",
                      s_bin(&b, SNN_OP_MUL, "cq", cp, s_cst(&b, 0.25f)), bp), u);
    m->forward.states[sa].next = u;     /* rotates */
    m->forward.states[sbb].next = ap;   /* copied: a leaf (a's previous value) */
    m->forward.states[sc].next = w;     /* copied: shared with d */
    m->forward.states[sd].next = w;
    m->forward.states[se].next = bp;    /* copied: a copied state's previous value */
    s_loss(&b, s_red(&b, SNN_OP_CROSS_ENTROPY, "ce", w, S, 0), 1.0f);
    b.r = SNN_REGION_POST;
    s_loss(&b, s_red(&b, SNN_OP_MSE_ONEHOT, "m1", s_rd(&b, sa, "a.final"), S, 1), 0.5f);
    s_loss(&b, s_red(&b, SNN_OP_MSE_ONEHOT, "m2", s_rd(&b, sc, "c.final"), S, 1), 0.25f);
    s_loss(&b, s_red(&b, SNN_OP_MSE_ONEHOT, "m3", s_rd(&b, sbb, "b.final"), S, 1), 0.125f);
    s_loss(&b, s_red(&b, SNN_OP_MSE_ONEHOT, "m4", s_bin(&b, SNN_OP_ADD, "de", s_rd(&b, sd, "d.final"),
                     s_rd(&b, se, "e.final")), S, 1), 0.0625f);
    int32_t ufin = u, wfin = w;

    sb g = {a, &m->backward, SNN_REGION_PRE};
    int32_t acc = s_state(&g, "acc", snn_shape_1(N)), cpy = s_state(&g, "cpy", BN);
    int32_t fx = s_fwd(&g, m, x);
    g.r = SNN_REGION_STEP;
    int32_t fu = s_fwd(&g, m, ufin), fap = s_fwd(&g, m, ap), fbp = s_fwd(&g, m, bp), fw = s_fwd(&g, m, wfin);
    int32_t q = s_bin(&g, SNN_OP_ADD, "q", s_bin(&g, SNN_OP_MUL, "q1", fu, fap),
                      s_bin(&g, SNN_OP_MUL, "q2", fbp, s_bin(&g, SNN_OP_ADD, "q3", fw, fx)));
    int32_t sq = s_red(&g, SNN_OP_SUM_TO, "sq", q, snn_shape_1(N), 0);
    m->backward.states[acc].next = s_bin(&g, SNN_OP_ADD, "acc.n", s_rd(&g, acc, "acc.prev"), sq);
    sv(&g, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .nargs = 1, .args = {sq}, .ival = 0});  /* p: added */
    m->backward.states[cpy].next = fbp;   /* copied: a leaf */
    g.r = SNN_REGION_POST;
    int32_t tot = s_bin(&g, SNN_OP_ADD, "tot", s_rd(&g, acc, "acc.final"),
                        s_red(&g, SNN_OP_SUM_TO, "cs", s_rd(&g, cpy, "cpy.final"), snn_shape_1(N), 0));
    sv(&g, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .nargs = 1, .args = {tot}, .ival = 0});
    /* r: its one grad_acc copies a state's final value; s: computed in place */
    sv(&g, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .nargs = 1, .args = {s_rd(&g, acc, "acc.final2")}, .ival = 1});
    sv(&g, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .nargs = 1, .args = {tot}, .ival = 2});
    return m;
}

static void test_states(void) {
    for (int opt = 0; opt <= 3; opt += 3) {
        snn_arena *a = snn_arena_new();
        snn_ir_module *m = states_module(a);
        double e = compare_tl2(m, a, 3, 1, 6, 0.0, 1.0, 1.0, 5, opt, false, "states");
        CU_ASSERT(e <= 1e-5);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* ---- time loops: the fission pass's scans and batched parallel loops ----
 * The fixtures through the -O2 pass pipeline (hoist, fission, ...) and autodiff; the
 * interpreter runs the reordered step region as one loop (the order is topological), codegen
 * both as one loop (the default) and as the plan's separate time loops, batched where it
 * can (options.time_loops). */
static bool optimize(snn_arena *a, snn_ir_module *m, int level) {
    snn_diag *d = snn_diag_new(a);
    snn_pass_options po = snn_pass_options_default();
    po.opt_level = level;
    po.verify = true;
    bool ok = snn_run_passes(a, d, m, &po) && snn_autodiff(a, d, m) && snn_run_passes(a, d, m, &po);
    if (!ok) snn_diag_print(d, stderr);
    return ok;
}

static char *loops_text(snn_arena *a, snn_ir_module *m) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    snn_codegen_options o;
    snn_codegen_options_default(&o);
    o.time_loops = true;
    snn_codegen_print_loops_with(a, snn_diag_new(a), m, &o, f);
    fclose(f);
    return text;
}

static void test_time_loops(void) {
    const variant vs[] = {{"default", v_default}, {"learn_beta", v_learn_beta},
                          {"synaptic", v_synaptic}, {"smooth", v_smooth},
                          {"final_loss", v_final}, {"all", v_all}};
    int batched = 0;
    for (size_t k = 0; k < sizeof vs / sizeof *vs; k++) {
        for (int opt = 0; opt <= 3; opt += 3) {
            snn_arena *a = snn_arena_new();
            snn_fixture_opts o = snn_fixture_defaults();
            vs[k].set(&o);
            snn_ir_module *m = snn_fixture_tutorial5(a, &o);
            CU_ASSERT_FATAL(optimize(a, m, 2));
            char *text = loops_text(a, m);
            if (strstr(text, "batched")) batched++;
            if (k == 0 && opt == 0 && getenv("SNN_CODEGEN_DUMP")) fputs(text, stderr);
            free(text);
            for (int tl = 0; tl < 2; tl++) {
                double e = compare_tl2(m, a, 5, 1, 9, 0.0, 2.0, 2.5, 31 + k, opt, tl, vs[k].name);
                CU_ASSERT(e <= 1e-4);
            }
            snn_ir_module_free(m);
            snn_arena_free(a);
        }
    }
    CU_ASSERT(batched >= 6);   /* the plans really have batched loops */
}

/* ---- recompute instead of tape (plan.c, plan_recompute) ----
 * After -O1 (timesum), backward's hidden-layer part runs forward in time in row tiles of 32 and
 * re-runs the forward loop that makes the membrane instead of reading a tape. Batches around
 * the tile size (a partial last tile, one row, several tiles), one step and several, against
 * the interpreter; and the variants where the plan must not (or need not) apply. */
static void test_recompute(void) {
    const variant vs[] = {{"default", v_default}, {"learn_beta", v_learn_beta},
                          {"synaptic", v_synaptic}, {"smooth", v_smooth},
                          {"final_loss", v_final}, {"all", v_all}};
    const int64_t Bs[] = {1, 31, 32, 33, 70};
    int recomputed = 0;
    for (size_t k = 0; k < sizeof vs / sizeof *vs; k++) {
        snn_arena *a = snn_arena_new();
        snn_fixture_opts o = snn_fixture_defaults();
        o.n_hidden = 40;   /* the recomputed membrane must outweigh what crosses (d.o.mem) */
        vs[k].set(&o);
        snn_ir_module *m = snn_fixture_tutorial5(a, &o);
        CU_ASSERT_FATAL(optimize(a, m, 1));
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CU_ASSERT(snn_codegen_print_loops(a, snn_diag_new(a), m, f));
        fclose(f);
        bool rec = strstr(text, "recomputes %h.") != NULL;
        recomputed += rec;
        if (k == 0) {   /* Tutorial 5's shape: no membrane tape, the d.h part forward in tiles */
            CU_ASSERT(rec);
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "in tiles of 32 rows, t = 0 .. T-1"));
            CU_ASSERT_PTR_NULL(strstr(text, "%h.v->tape"));
            snn_codegen_sizes sz;
            CU_ASSERT(snn_codegen_stats(a, snn_diag_new(a), m, 128, 25, &sz));
            CU_ASSERT(sz.tape_bytes < 128 * 25 * 40 * 4);   /* no [T, B, 40] hidden tape */
            /* --stats counts the second run: whole elementwise ops on [B, 40] for T steps, on
             * a value of layer h; none without the plan */
            const double per = sz.recompute_flops / (128.0 * 25 * 40);
            CU_ASSERT(per >= 4 && per <= 12 && per == (double)(int)per);
            CU_ASSERT(sz.recompute_name && !strncmp(sz.recompute_name, "h.", 2));
            snn_codegen_options no = {.no_recompute = true};
            CU_ASSERT(snn_codegen_stats_with(a, snn_diag_new(a), m, &no, 128, 25, &sz));
            CU_ASSERT(sz.recompute_flops == 0 && sz.recompute_name == NULL);
        }
        if (getenv("SNN_CODEGEN_DUMP")) fprintf(stderr, "\n%s:\n%s", vs[k].name, text);
        free(text);
        for (size_t b = 0; b < sizeof Bs / sizeof *Bs; b++)
            for (int64_t T = 1; T <= 7; T += 6) {
                char what[64];
                snprintf(what, sizeof what, "recompute %s B=%lld T=%lld", vs[k].name,
                         (long long)Bs[b], (long long)T);
                CU_ASSERT(compare(m, a, Bs[b], T, 0.0, 2.0, 2.5, 50 + k, 3, what) <= 1e-4);
            }
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
    CU_ASSERT(recomputed >= 2);
}

/* Loss and gradients of m's generated code with options o (one call of forward_backward). */
static float run_jit(snn_ir_module *m, snn_arena *a, const snn_codegen_options *o, int64_t B,
                     int64_t T, uint64_t seed, float **grads) {
    snn_diag *d = snn_diag_new(a);
    snn_jit *j = snn_jit_compile(a, d, m, o, rt_syms, (int)(sizeof rt_syms / sizeof rt_syms[0]));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const snn_model_desc *md = snn_jit_model(j);
    int np = m->n_params;
    double **pd = calloc((size_t)np, sizeof *pd);
    float **pf = calloc((size_t)np, sizeof *pf);
    for (int i = 0; i < np; i++) {
        int64_t n = snn_shape_numel(m->params[i].shape, 1);
        pd[i] = calloc((size_t)n, sizeof **pd);
        pf[i] = calloc((size_t)n, sizeof **pf);
    }
    snn_fixture_params(m, seed, 2.5, pd);
    for (int i = 0; i < np; i++)
        for (int64_t k = 0; k < snn_shape_numel(m->params[i].shape, 1); k++) pf[i][k] = (float)pd[i][k];
    double *xd = calloc((size_t)(B * m->n_inputs), sizeof *xd);
    float *x = calloc((size_t)(B * m->n_inputs), sizeof *x);
    int32_t *lab = calloc((size_t)B, sizeof *lab);
    snn_fixture_inputs(m, B, seed, 0.0, 2.0, xd, lab);
    for (int64_t k = 0; k < B * m->n_inputs; k++) x[k] = (float)xd[k];
    void *work = aligned_alloc(64, (size_t)((md->work_bytes(B, T) + 63) / 64 * 64));
    snn_batch bt = {B, T, x, lab, seed, 0};
    snn_result r = {0, NULL};
    CU_ASSERT_EQUAL(md->forward_backward((const float *const *)pf, grads, &bt, work, &r), 0);
    free(work);
    for (int i = 0; i < np; i++) { free(pd[i]); free(pf[i]); }
    free(pd); free(pf); free(xd); free(x); free(lab);
    snn_jit_free(j);
    return r.loss;
}

/* m's generated code with options on and with off give the same loss and gradients, bit for
 * bit (one forward_backward each, batch B, T steps). */
static void same_bits(snn_ir_module *m, snn_arena *a, const snn_codegen_options *on,
                      const snn_codegen_options *off, int64_t B, int64_t T, uint64_t seed) {
    float *g_on[16] = {0}, *g_off[16] = {0};
    CU_ASSERT_FATAL(m->n_params <= 16);
    for (int i = 0; i < m->n_params; i++) {
        size_t n = (size_t)snn_shape_numel(m->params[i].shape, 1);
        g_on[i] = calloc(n, sizeof(float));
        g_off[i] = calloc(n, sizeof(float));
    }
    const float l_on = run_jit(m, a, on, B, T, seed, g_on);
    const float l_off = run_jit(m, a, off, B, T, seed, g_off);
    CU_ASSERT_EQUAL(memcmp(&l_on, &l_off, sizeof l_on), 0);
    for (int i = 0; i < m->n_params; i++) {
        size_t n = (size_t)snn_shape_numel(m->params[i].shape, 1);
        CU_ASSERT_EQUAL(memcmp(g_on[i], g_off[i], n * sizeof(float)), 0);
        free(g_on[i]);
        free(g_off[i]);
    }
}

/* A matmul_nn with a short K (the output layer's gradient into the hidden spikes, [B, 10] x
 * [10, H]) computed inside the surrogate loop (plan.c, plan_fuse_matmul): --emit=loops shows it
 * there, and the generated code gives the interpreter's results and, summing as the runtime's
 * kernels do, the very bits of the sgemm path (-fno-fuse-matmul). H = 300 runs the loop's
 * column chunks (256) with a remainder; H = 40 and 300 read the weight from a copy with rows
 * padded to 16 floats, H = 48 in place; a K of 20 stays an sgemm. */
static void test_fuse_matmul(void) {
    const int64_t hidden[] = {40, 48, 300}, outs[] = {10, 20};
    for (size_t h = 0; h < 3; h++)
        for (size_t q = 0; q < 2; q++) {
            snn_arena *a = snn_arena_new();
            snn_fixture_opts fo = snn_fixture_defaults();
            fo.n_in = 12;
            fo.n_hidden = hidden[h];
            fo.n_out = outs[q];
            snn_ir_module *m = snn_fixture_tutorial5(a, &fo);
            CU_ASSERT_FATAL(optimize(a, m, 1));
            const bool fused = outs[q] <= CG_FUSE_K_MAX_TEST;
            snn_codegen_options on, off;
            snn_codegen_options_default(&on);
            snn_codegen_options_default(&off);
            on.verify = off.verify = true;
            off.no_fuse_matmul = true;
            for (int w = 0; w < 2; w++) {
                char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                CU_ASSERT(snn_codegen_print_loops_with(a, snn_diag_new(a), m, w ? &off : &on, f));
                fclose(f);
                const bool in_loop = strstr(text, "=matmul_nn(%d.o.mem, %o.weight") != NULL;
                /* rows of 40 or 300 floats are read from a copy padded to 16 floats a row */
                const bool padded = strstr(text, "%o.weight padded)") != NULL;
                CU_ASSERT_EQUAL(padded, in_loop && hidden[h] % 16 != 0);
                const bool as_sgemm = strstr(text, "sgemm  %d.h.spk = matmul_nn(") != NULL;
                CU_ASSERT_EQUAL(in_loop, fused && !w);
                CU_ASSERT_EQUAL(as_sgemm, !(fused && !w));
                free(text);
            }
            for (int64_t B = 1; B <= 33; B += 32)
                CU_ASSERT(compare(m, a, B, 7, 0.0, 2.0, 2.5, 91 + h, 3, "fused matmul") <= 1e-4);
            same_bits(m, a, &on, &off, 33, 9, 5);
            snn_ir_module_free(m);
            snn_arena_free(a);
        }
}

/* Backward's recomputation inside the surrogate loop that reads it (plan.c, plan_rec_merge):
 * --emit=loops says so wherever the recompute plan is taken, and the recomputed value needs no
 * buffer; the results are the very bits of the separate recompute kernel (-fno-rec-merge) for
 * every fixture variant (the interpreter comparisons of test_recompute run with it on). */
static void test_rec_merge(void) {
    const variant vs[] = {{"default", v_default}, {"learn_beta", v_learn_beta},
                          {"synaptic", v_synaptic}, {"smooth", v_smooth},
                          {"final_loss", v_final}, {"all", v_all}};
    int merged = 0, recomputed = 0;
    for (size_t k = 0; k < sizeof vs / sizeof *vs; k++) {
        snn_arena *a = snn_arena_new();
        snn_fixture_opts fo = snn_fixture_defaults();
        fo.n_hidden = 40;
        vs[k].set(&fo);
        snn_ir_module *m = snn_fixture_tutorial5(a, &fo);
        CU_ASSERT_FATAL(optimize(a, m, 1));
        snn_codegen_options on, off;
        snn_codegen_options_default(&on);
        snn_codegen_options_default(&off);
        on.verify = off.verify = true;
        off.no_rec_merge = true;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CU_ASSERT(snn_codegen_print_loops_with(a, snn_diag_new(a), m, &on, f));
        fclose(f);
        const bool here = strstr(text, "on a copy of its states inside the loop of %") != NULL;
        merged += here;
        const bool rec = strstr(text, "recomputes %h.") != NULL;
        recomputed += rec;
        CU_ASSERT_EQUAL(here, rec);   /* the first reader is the surrogate loop, of the same shape */
        if (k == 0) {
            CU_ASSERT(here);
            CU_ASSERT_PTR_NULL(strstr(text, "misc  rec.h.sub"));   /* no per-step buffer */
            CU_ASSERT_PTR_NOT_NULL(strstr(text, "misc  rec.h.mem"));  /* the state's copy */
        }
        free(text);
        for (int64_t B = 1; B <= 70; B += 69) same_bits(m, a, &on, &off, B, 7, 11 + k);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
    CU_ASSERT(merged >= 2 && merged == recomputed);
}

/* Rate-coded input: linear(x) changes at every step, so the hidden membrane's loop reads a step
 * value besides its own state and is not recomputed (nor is forward tiled): the plan falls back
 * to the tape, and the results agree with the interpreter. */
static const char rate_tiled_program[] =
    "model net {\n input x[12]\n encode x = rate(gain = 0.9)\n"
    " h = leaky(linear(x, 48), beta = 0.9)\n o = leaky(linear(h, 4), beta = 0.95)\n output o\n}\n"
    "train net {\n data idx(\"/nonexistent\"); steps 6; batch 4; epochs 1\n"
    " loss ce_membrane(o)\n optimizer adam(lr = 1e-3)\n metric rate_accuracy(o)\n}\n";
static snn_ir_module *from_source(snn_arena *a, const char *src, int level);

static void test_recompute_rate(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = from_source(a, rate_tiled_program, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT(snn_codegen_print_loops(a, snn_diag_new(a), m, f));
    fclose(f);
    CU_ASSERT_PTR_NULL(strstr(text, "in tiles of"));
    CU_ASSERT_PTR_NULL(strstr(text, "recomputes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "->tape"));
    free(text);
    for (int64_t B = 33; B <= 70; B += 37)
        CU_ASSERT(compare(m, a, B, 6, 0.0, 1.0, 2.0, 77, 3, "recompute, rate input") <= 1e-4);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---- whole programs from source ----
 * The front end's lowering of every neuron, encoder, surrogate, loss and regularizer the
 * standard library offers, at -O1 and -O2, against the interpreter. */
static const char *const programs[] = {
    /* rate encoding, synaptic + rleaky + reset zero, three losses and a regularizer */
    "model net {\n input x[12]\n encode x = rate(gain = 0.8)\n"
    " h = synaptic(linear(x, 9), alpha = 0.9, beta = 0.8, surrogate = fast_sigmoid())\n"
    " r = rleaky(linear(h, 7), beta = 0.9, surrogate = sigmoid(slope = 5.0))\n"
    " o = leaky(linear(r, 4), beta = 0.95, reset = zero)\n output o\n}\n"
    "train net {\n data idx(\"/nonexistent\"); steps 6; batch 4; epochs 1\n"
    " loss ce_rate(o) + mse_membrane(o) + l1_rate_sparsity(h, lambda = 1e-2)\n"
    " optimizer sgd(lr = 0.05, momentum = 0.9)\n metric rate_accuracy(o)\n}\n",
    /* direct input, other surrogates and losses */
    "model net {\n input x[10]\n encode x = direct\n"
    " h = leaky(linear(x, 8), beta = 0.7, threshold = 0.5, surrogate = triangular())\n"
    " o = leaky(linear(h, 3), beta = 0.9, surrogate = spike_rate_escape())\n output o\n}\n"
    "train net {\n data idx(\"/nonexistent\"); steps 7; batch 5; epochs 1\n"
    " loss ce_count(o) + ce_max_membrane(o)\n"
    " optimizer adam(lr = 1e-3)\n metric rate_accuracy(o)\n}\n",
    /* a user neuron with a learnable per-neuron beta, straight-through surrogate */
    "neuron lif(learn[n] beta = 0.9, threshold = 1.0, surrogate = straight_through()) {\n"
    " state mem = 0\n step(input) {\n  let r = detach(heaviside(mem - threshold))\n"
    "  mem = clamp(beta, 0, 1) * mem + input - r * threshold\n  let spk = fire(mem - threshold)\n }\n"
    " out spk, mem\n}\n"
    "model net {\n input x[6]\n encode x = direct\n h = lif(linear(x, 5))\n"
    " o = leaky(linear(h, 3))\n output o\n}\n"
    "train net {\n data idx(\"/nonexistent\"); steps 8; batch 3; epochs 1\n"
    " loss ce_membrane(o)\n optimizer adam(lr = 1e-3)\n metric rate_accuracy(o)\n}\n",
};

static snn_ir_module *from_source(snn_arena *a, const char *src, int level) {
    snn_diag *d = snn_diag_new(a);
    snn_diag_add_source(d, "p.snn", src, strlen(src));
    snn_program *prog = snn_load_program(a, d, snn_intern_cstr(a, "p.snn"), src, strlen(src), NULL);
    snn_ir_module *m = prog && snn_sema(a, d, prog) ? snn_lower(a, d, prog) : NULL;
    if (m && !optimize(a, m, level)) { snn_ir_module_free(m); m = NULL; }
    if (!m) snn_diag_print(d, stderr);
    return m;
}

static void test_programs(void) {
    for (size_t k = 0; k < sizeof programs / sizeof *programs; k++)
        for (int level = 1; level <= 2; level++) {
            snn_arena *a = snn_arena_new();
            snn_ir_module *m = from_source(a, programs[k], level);
            CU_ASSERT_PTR_NOT_NULL(m);
            if (m) {
                for (int tl = 0; tl < 2; tl++) {
                    double e = compare_tl(m, a, 4, 6, 0.0, 1.5, 2.0, 7 + k, 3, tl,
                                          snn_sprintf(a, "program %zu -O%d", k, level));
                    CU_ASSERT(e <= 1e-4);
                }
                snn_ir_module_free(m);
            }
            snn_arena_free(a);
        }
}

/* Backward's tiled loop with the steps innermost (plan.c, plan_time_inner; lower.c,
 * time_inner_kernel) and forward's output linear summed by row in the neuron loop
 * (plan_fuse_linear; rowred_kernel, with 16 rows in the lanes by default: plan_rows_in_lanes,
 * rowred_lanes_kernel; batches of 1, 31, 33 and 70 leave partial groups of 16 rows): Tutorial
 * 5's network from source at small sizes, a hidden
 * width that is (48) and is not (40, 300: masked last columns, more than one column chunk) a
 * multiple of 16. --emit=loops and --stats say which plans fired (dW2 inside backward's loop
 * neither with -fno-time-inner nor -fno-fuse-wgrad; o.linear in forward's loop but with
 * -fno-fuse-linear), and the results agree with the interpreter for batches around the 32-row
 * tile and 1 and 7 steps, and with -fno-time-inner and -fno-fuse-linear to float rounding. */
static void test_time_inner(void) {
    const int hidden[] = {40, 48, 300};
    for (size_t k = 0; k < sizeof hidden / sizeof *hidden; k++) {
        char src[1024];
        snprintf(src, sizeof src,
                 "model net {\n input x[12]\n encode x = direct\n"
                 " h = leaky(linear(x, %d), beta = 0.95)\n o = leaky(linear(h, 10), beta = 0.95)\n"
                 " output o\n}\n"
                 "train net {\n data idx(\"/nonexistent\"); steps 25; batch 128; epochs 1\n"
                 " loss ce_membrane(o)\n optimizer adam(lr = 5e-4)\n metric rate_accuracy(o)\n}\n",
                 hidden[k]);
        snn_arena *a = snn_arena_new();
        snn_ir_module *m = from_source(a, src, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        snn_codegen_options on, off, nowg, nolin, nolanes;
        snn_codegen_options_default(&on);
        snn_codegen_options_default(&off);
        snn_codegen_options_default(&nowg);
        snn_codegen_options_default(&nolin);
        snn_codegen_options_default(&nolanes);
        off.no_time_inner = true;
        nowg.no_fuse_wgrad = true;
        nolin.no_fuse_linear = true;
        nolanes.no_rows_in_lanes = true;
        const snn_codegen_options *opts[5] = {&on, &off, &nowg, &nolin, &nolanes};
        for (int v = 0; v < 5; v++) {   /* dW2 joins the loop only where the steps go inside */
            char *text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&text, &len);
            CU_ASSERT(snn_codegen_print_loops_with(a, snn_diag_new(a), m, opts[v], f));
            fclose(f);
            CU_ASSERT_EQUAL(strstr(text, "steps innermost") != NULL, v != 1 && v != 2);
            CU_ASSERT_EQUAL(strstr(text, "=matmul_tn(%d.o.mem, %h.spk)->state") != NULL,
                            v != 1 && v != 2);
            /* ... with 16 rows in the lanes and h.linear read from its [N, B] copy */
            CU_ASSERT_EQUAL(strstr(text, "16 rows in the lanes") != NULL, v <= 2);
            CU_ASSERT_EQUAL(strstr(text, "tr.h.linear") != NULL, v <= 2);
            /* ... the membrane not filled: step 0's variant of the kernel starts from 0 (the
             * work areas here start as NaN, so a step that read the state would show) */
            CU_ASSERT_EQUAL(strstr(text, "not filled: step 0 from its initial value") != NULL, v <= 2);
            /* forward: the output layer's linear summed by row inside the neuron loop */
            CU_ASSERT_EQUAL(strstr(text, "%o.linear=linear(%h.spk, %o.weight, %o.bias)") != NULL,
                            v != 3);
            free(text);
            snn_codegen_sizes sz;   /* what --stats reports */
            CU_ASSERT(snn_codegen_stats_with(a, snn_diag_new(a), m, opts[v], 128, 25, &sz));
            CU_ASSERT_EQUAL(sz.time_inner, v != 1 && v != 2);
            CU_ASSERT_EQUAL(sz.n_fuse_wgrad, v != 1 && v != 2 ? 1 : 0);
            CU_ASSERT_EQUAL(sz.n_fuse_linear, v == 3 ? 0 : 1);
            CU_ASSERT_EQUAL(sz.n_rows_in_lanes, v <= 2 ? 1 : 0);
            CU_ASSERT(sz.rec_merge && sz.n_fuse_matmul == 1);
        }
        const int64_t Bs[] = {1, 31, 33, 70};
        for (size_t b = 0; b < sizeof Bs / sizeof *Bs; b++)
            for (int64_t T = 1; T <= 7; T += 6) {
                char what[64];
                snprintf(what, sizeof what, "steps innermost H=%d B=%lld T=%lld", hidden[k],
                         (long long)Bs[b], (long long)T);
                CU_ASSERT(compare(m, a, Bs[b], T, 0.0, 2.0, 2.5, 90 + k, 3, what) <= 1e-4);
            }
        /* against the steps outermost, the sgemm for o.linear and the columns in the lanes: the
         * same to float rounding (dW2 and o.linear sum in other orders) */
        for (int v = 1; v <= 4; v += v == 1 ? 2 : 1) {
            float *g_on[8] = {0}, *g_off[8] = {0};
            CU_ASSERT_FATAL(m->n_params <= 8);
            for (int i = 0; i < m->n_params; i++) {
                size_t n = (size_t)snn_shape_numel(m->params[i].shape, 1);
                g_on[i] = calloc(n, sizeof(float));
                g_off[i] = calloc(n, sizeof(float));
            }
            const float l_on = run_jit(m, a, &on, 70, 7, 5, g_on);
            const float l_off = run_jit(m, a, opts[v], 70, 7, 5, g_off);
            CU_ASSERT_DOUBLE_EQUAL(l_on, l_off, 1e-5 * fabs(l_off));
            for (int i = 0; i < m->n_params; i++) {
                const int64_t n = snn_shape_numel(m->params[i].shape, 1);
                double worst = 0, scale = 0;
                for (int64_t j = 0; j < n; j++) {
                    worst = fmax(worst, fabs((double)g_on[i][j] - g_off[i][j]));
                    scale = fmax(scale, fabs((double)g_off[i][j]));
                }
                CU_ASSERT(worst <= 1e-4 * scale + 1e-7);
                free(g_on[i]);
                free(g_off[i]);
            }
        }
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

void test_codegen_ir_register(void) {
    CU_pSuite s = CU_add_suite("codegen_vs_interp", NULL, NULL);
    CU_add_test(s, "one-op modules (every gradient rule) vs interpreter", test_op_fixtures);
    CU_add_test(s, "tutorial5 fixtures (all variants) vs interpreter", test_tutorial5_fixtures);
    CU_add_test(s, "cross-entropy row blocks: 1-130 rows, 3-17 classes vs interpreter",
                test_ce_row_blocks);
    CU_add_test(s, "rotating and copied states, step states after the loop, fwd of each",
                test_states);
    CU_add_test(s, "time loops after -O2 (scans, batched parallel loops) vs interpreter",
                test_time_loops);
    CU_add_test(s, "recompute instead of tape: row tiles forward in time vs interpreter",
                test_recompute);
    CU_add_test(s, "short-K matmul inside its loop: loops text, interpreter, sgemm's bits",
                test_fuse_matmul);
    CU_add_test(s, "recomputation inside the loop that reads it: loops text, the separate kernel's bits",
                test_rec_merge);
    CU_add_test(s, "rate-coded input: no recompute, the tape, vs interpreter", test_recompute_rate);
    CU_add_test(s, "steps innermost in backward's tiled loop: loops text, interpreter, -fno-time-inner",
                test_time_inner);
    CU_add_test(s, "programs from source (every neuron, encoder, surrogate, loss) vs interpreter",
                test_programs);
}
