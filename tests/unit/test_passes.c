/* test_passes.c: the IR optimization passes (compiler/passes/) and the rewriter they share
 * (compiler/ir/rewrite.c).
 *
 * Every pass is checked two ways:
 *   - meaning: the module is built twice; one copy is optimized (before autodiff, and for the
 *     backward passes after it), both are differentiated, and the reference interpreter
 *     (float32 rounding after every op) must give the same loss, scores and gradient of every
 *     parameter to 1e-5 relative to the largest element of each tensor (summation order may
 *     differ: a hoisted linear's weight gradient is one matmul of the time-summed gradient);
 *   - effect: the pass really fired (the input's linear is in the pre region, the number of
 *     step-region linears fell, the duplicates and identities are gone, the dead state is gone).
 * The modules are the Tutorial 5 fixture (tests/unit/ir_fixtures.h) brought into the shape
 * lowering emits (everything in the step region), and small hand-built ones with one feature
 * each. Also: the pass manager's flags, --print-after output, and golden text of the hoisted
 * forward function.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "ir/ir.h"
#include "ir/rewrite.h"
#include "ir_fixtures.h"
#include "passes/passes.h"

/* ---------------------------------------------------------------- helpers */

/* Counts values of f with op `op` in region r (r < 0: any region). */
static int count_ops(const snn_ir_func *f, snn_op op, int r) {
    int n = 0;
    for (int32_t i = 0; i < f->n_values; i++)
        if (f->values[i].op == op && (r < 0 || (int)f->values[i].region == r)) n++;
    return n;
}

static int count_region(const snn_ir_func *f, snn_region r) {
    int n = 0;
    for (int32_t i = 0; i < f->n_values; i++) n += f->values[i].region == r;
    return n;
}

static const snn_ir_value *find_value(const snn_ir_func *f, const char *name) {
    for (int32_t i = 0; i < f->n_values; i++)
        if (strcmp(f->values[i].name, name) == 0) return &f->values[i];
    return NULL;
}

/* SNN_PASSES_DUMP=1 prints the modules the tests build (for debugging a failure). */
static void dump(const snn_ir_module *m, const char *label) {
    if (!getenv("SNN_PASSES_DUMP")) return;
    printf("\n==== %s\n", label);
    snn_ir_print(m, stdout, true);
}

/* Moves every pre value that the post region and the states' initial values do not need into
 * the step region: the shape lowering gives a module (compiler/lower.h). */
static void unhoist(snn_arena *a, snn_diag *d, snn_ir_module *m) {
    snn_ir_func *f = &m->forward;
    bool *need = calloc((size_t)f->n_values + 1, sizeof *need);
    for (int32_t i = 0; i < f->n_values; i++)
        if (f->values[i].region == SNN_REGION_POST)
            for (int k = 0; k < f->values[i].nargs; k++) need[f->values[i].args[k]] = true;
    for (int s = 0; s < f->n_states; s++)
        if (f->states[s].init_from >= 0) need[f->states[s].init_from] = true;
    for (int32_t i = f->n_values - 1; i >= 0; i--)
        if (need[i] && f->values[i].region == SNN_REGION_PRE)
            for (int k = 0; k < f->values[i].nargs; k++) need[f->values[i].args[k]] = true;
    snn_ir_rw rw;
    snn_ir_rw_begin(&rw, a, d, m, f);
    for (int32_t i = 0; i < f->n_values; i++)
        if (f->values[i].region == SNN_REGION_PRE && need[i]) snn_ir_rw_copy(&rw, i, SNN_REGION_PRE);
    for (int32_t i = 0; i < f->n_values; i++)
        if (f->values[i].region == SNN_REGION_PRE && !need[i]) snn_ir_rw_copy(&rw, i, SNN_REGION_STEP);
    for (int32_t i = 0; i < f->n_values; i++)
        if (f->values[i].region != SNN_REGION_PRE) snn_ir_rw_copy(&rw, i, f->values[i].region);
    CU_ASSERT_TRUE(snn_ir_rw_finish(&rw, NULL));
    free(need);
}

static snn_ir_module *lowered_t5(snn_arena *a, snn_diag *d, snn_fixture_opts o) {
    o.hoisted = false;
    snn_ir_module *m = snn_fixture_tutorial5(a, &o);
    unhoist(a, d, m);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    return m;
}

/* Runs the passes in `mask` (bits of snn_pass_id) through the manager, with verification. */
static uint32_t run_mask(snn_arena *a, snn_diag *d, snn_ir_module *m, uint32_t mask) {
    uint32_t fired = 0;
    snn_pass_options o = snn_pass_options_default();
    o.opt_level = 2;
    o.disabled = ~mask;
    o.verify = true;
    o.fired = &fired;
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    return fired;
}

#define BIT(p) (1u << SNN_PASS_ID_##p)
#define ALL_PASSES ((1u << SNN_PASS_COUNT_) - 1)

/* Interpreted results of one module on one batch. */
typedef struct {
    double loss;
    double *scores;
    double **g;
    int n_params;
} result_t;

static result_t interp(const snn_ir_module *m, int64_t B, int64_t T, uint64_t seed, double scale) {
    result_t r = {.n_params = m->n_params};
    double **p = calloc((size_t)m->n_params + 1, sizeof *p);
    r.g = calloc((size_t)m->n_params + 1, sizeof *r.g);
    for (int i = 0; i < m->n_params; i++) {
        p[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
        r.g[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
    }
    snn_fixture_params(m, seed, scale, p);
    double *x = calloc((size_t)(B * m->n_inputs), sizeof *x);
    int32_t *labels = calloc((size_t)B, sizeof *labels);
    snn_fixture_inputs(m, B, seed, 0.0, 1.0, x, labels);
    r.scores = calloc((size_t)(B * (m->n_classes > 0 ? m->n_classes : 1)), sizeof *r.scores);
    snn_interp_batch b = {B, T, x, labels, seed};
    snn_interp_opts o = {.round_f32 = true};
    int rc = snn_interp_run_f64(m, (const double *const *)p, m->backward.n_values ? r.g : NULL, &b, &r.loss,
                                r.scores, &o);
    CU_ASSERT_EQUAL(rc, 0);
    for (int i = 0; i < m->n_params; i++) free(p[i]);
    free(p);
    free(x);
    free(labels);
    return r;
}

static void result_free(result_t *r) {
    for (int i = 0; i < r->n_params; i++) free(r->g[i]);
    free(r->g);
    free(r->scores);
}

static int close_count;   /* comparisons made, so a test can check it compared something */

/* |x - y| <= tol * max(max |y| over the tensor, tiny) */
static void expect_close(const char *what, const double *x, const double *y, int64_t n, double tol) {
    double mx = 1e-30, err = 0;
    int64_t at = 0;
    for (int64_t k = 0; k < n; k++) mx = fmax(mx, fabs(y[k]));
    for (int64_t k = 0; k < n; k++)
        if (!(fabs(x[k] - y[k]) <= err)) { err = fabs(x[k] - y[k]); at = k; }
    if (!(err <= tol * mx) || isnan(err)) {
        printf("\n  %s: element %lld: %.9g vs %.9g (max |ref| %.3g)\n", what, (long long)at, x[at], y[at], mx);
        CU_FAIL("results differ");
    }
    close_count++;
}

static bool every_param_used = true;   /* expect a non-zero gradient for every parameter */

/* ref and opt are two builds of one module: same params, inputs, labels. */
static void expect_same_results(const snn_ir_module *ref, const snn_ir_module *opt, int64_t B, int64_t T,
                                uint64_t seed, bool grads) {
    CU_ASSERT_EQUAL_FATAL(ref->n_params, opt->n_params);
    if (grads) {
        CU_ASSERT_TRUE(ref->backward.n_values > 0);
        CU_ASSERT_TRUE(opt->backward.n_values > 0);
    }
    result_t r = interp(ref, B, T, seed, 2.0), o = interp(opt, B, T, seed, 2.0);
    expect_close("loss", &o.loss, &r.loss, 1, 1e-5);
    CU_ASSERT_TRUE(isfinite(r.loss) && r.loss > 0);
    if (ref->scores_state >= 0) expect_close("scores", o.scores, r.scores, B * ref->n_classes, 1e-5);
    if (grads)
        for (int i = 0; i < ref->n_params; i++) {
            int64_t n = snn_shape_numel(ref->params[i].shape, 1);
            double mx = 0;
            for (int64_t k = 0; k < n; k++) mx = fmax(mx, fabs(r.g[i][k]));
            if (every_param_used) CU_ASSERT_TRUE(mx > 0);   /* every parameter really gets a gradient */
            expect_close(ref->params[i].name, o.g[i], r.g[i], n, 1e-5);
        }
    result_free(&r);
    result_free(&o);
}

/* ---------------------------------------------------------------- a small builder */

typedef struct {
    snn_arena *a;
    snn_ir_module *m;
    snn_ir_func *f;
    snn_region r;
    int line;
} tb;

static int32_t put(tb *b, snn_ir_value v) {
    v.region = b->r;
    v.loc = (snn_loc){"passes.snn", ++b->line, 3};
    return snn_ir_append(b->a, b->f, v);
}

static int32_t ew(tb *b, snn_op op, const char *name, int32_t x, int32_t y) {
    snn_ir_value v = {.op = op, .name = name, .nargs = y >= 0 ? 2 : 1, .args = {x, y}, .shape = b->f->values[x].shape};
    if (y >= 0) snn_shape_broadcast(b->f->values[x].shape, b->f->values[y].shape, &v.shape);
    return put(b, v);
}

static int32_t ew3(tb *b, snn_op op, const char *name, int32_t x, int32_t y, int32_t z) {
    snn_ir_value v = {.op = op, .name = name, .nargs = 3, .args = {x, y, z}};
    snn_shape s;
    snn_shape_broadcast(b->f->values[x].shape, b->f->values[y].shape, &s);
    snn_shape_broadcast(s, b->f->values[z].shape, &v.shape);
    return put(b, v);
}

static int32_t cnst(tb *b, const char *name, float val) {
    return put(b, (snn_ir_value){.op = SNN_OP_CONST, .name = name, .fval = val, .shape = snn_shape_scalar()});
}

static int32_t param(tb *b, int32_t idx) {
    return put(b, (snn_ir_value){.op = SNN_OP_PARAM, .name = b->m->params[idx].name, .ival = idx,
                                 .shape = b->m->params[idx].shape});
}

static int32_t input(tb *b) {
    return put(b, (snn_ir_value){.op = SNN_OP_INPUT, .name = "x", .shape = snn_shape_2(SNN_DIM_B, b->m->n_inputs)});
}

static int32_t state(tb *b, const char *name, snn_shape s) {
    snn_ir_state st = {.name = snn_intern_cstr(b->a, name), .shape = s, .init_from = -1, .next = -1,
                       .loc = {"passes.snn", 1, 1}};
    return snn_ir_add_state(b->f, st);
}

static int32_t rd(tb *b, int32_t s, const char *name) {
    return put(b, (snn_ir_value){.op = SNN_OP_STATE, .name = name, .ival = s, .shape = b->f->states[s].shape});
}

static int32_t linear(tb *b, const char *name, int32_t x, int32_t w, int32_t bias) {
    return put(b, (snn_ir_value){.op = SNN_OP_LINEAR, .name = name, .nargs = bias >= 0 ? 3 : 2, .args = {x, w, bias},
                                 .shape = snn_shape_2(b->f->values[x].shape.dim[0], b->f->values[w].shape.dim[0])});
}

static int32_t loss_ce(tb *b, int32_t logits) {
    int32_t ce = put(b, (snn_ir_value){.op = SNN_OP_CROSS_ENTROPY, .name = "ce", .nargs = 1, .args = {logits},
                                       .shape = snn_shape_scalar()});
    return put(b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "loss", .nargs = 1, .args = {ce}, .fval = 1.0f});
}

static snn_ir_module *new_module(snn_arena *a, const char *name, int64_t in, int64_t classes) {
    snn_ir_module *m = snn_ir_module_new(a, name);
    m->source_file = "passes.snn";
    m->n_inputs = in;
    m->n_classes = classes;
    return m;
}

static int32_t add_param(snn_arena *a, snn_ir_module *m, const char *name, snn_shape s, snn_param_init init,
                         float value, int64_t fan_in) {
    return snn_ir_add_param(m, (snn_ir_param){.name = snn_intern_cstr(a, name), .shape = s, .init = init,
                                              .init_value = value, .fan_in = fan_in, .loc = {"passes.snn", 1, 1}});
}

/* The kitchen sink, all in the step region as lowering would emit it: a leaky layer with a
 * learnable clamped beta, written with identities (x*1, 0+x, -(-x), x/1, select on a constant,
 * clamp of constants), duplicates (a second constant 1, mem - 1 twice, beta*mem and mem*beta,
 * fire twice, both in the loss) and dead code (exp of the current, a spike counter nobody reads). */
static snn_ir_module *kitchen_sink(snn_arena *a) {
    snn_ir_module *m = new_module(a, "kitchen_sink", 4, 3);
    int32_t pW = add_param(a, m, "l.weight", snn_shape_2(3, 4), SNN_PINIT_UNIFORM_FAN_IN, 0, 4);
    int32_t pb = add_param(a, m, "l.bias", snn_shape_1(3), SNN_PINIT_UNIFORM_FAN_IN, 0, 4);
    int32_t pbeta = add_param(a, m, "l.beta", snn_shape_1(3), SNN_PINIT_CONST, 0.9f, 0);
    int32_t sg = snn_fixture_add_atan(a, m, 2.0f);
    tb b = {a, m, &m->forward, SNN_REGION_STEP, 10};
    snn_shape BN = snn_shape_2(SNN_DIM_B, 3);
    int32_t s_mem = state(&b, "l.mem", BN), s_cnt = state(&b, "l.count", BN), s_dead = state(&b, "l.dead", BN);
    m->scores_state = s_cnt;
    int32_t x = input(&b), W = param(&b, pW), bias = param(&b, pb);
    int32_t cur = linear(&b, "l.cur", x, W, bias);
    int32_t one = cnst(&b, "one", 1.0f), zero = cnst(&b, "zero", 0.0f), one2 = cnst(&b, "one.again", 1.0f);
    int32_t c1 = ew(&b, SNN_OP_MUL, "cur.times1", cur, one);
    int32_t c2 = ew(&b, SNN_OP_ADD, "cur.plus0", zero, c1);
    int32_t c3 = ew(&b, SNN_OP_NEG, "cur.neg2", ew(&b, SNN_OP_NEG, "cur.neg1", c2, -1), -1);
    int32_t c4 = ew(&b, SNN_OP_DIV, "cur.div1", c3, one2);
    int32_t c5 = ew(&b, SNN_OP_SUB, "cur.minus0", c4, zero);
    int32_t beta = ew(&b, SNN_OP_MIN, "beta.clamped", ew(&b, SNN_OP_MAX, "beta.lo", param(&b, pbeta), zero), one);
    int32_t k = ew(&b, SNN_OP_MIN, "k", ew(&b, SNN_OP_MAX, "k.lo", cnst(&b, "k.raw", 0.25f), zero), one2);
    int32_t mp = rd(&b, s_mem, "l.mem.prev");
    int32_t thr = cnst(&b, "threshold", 1.0f);
    int32_t reset = ew(&b, SNN_OP_DETACH, "reset", ew(&b, SNN_OP_HEAVISIDE, "fired.prev", ew(&b, SNN_OP_SUB, "over.prev", mp, thr), -1), -1);
    int32_t decay = ew(&b, SNN_OP_MUL, "decay", beta, mp);
    int32_t decay2 = ew(&b, SNN_OP_MUL, "decay.again", mp, beta);
    int32_t charged = ew(&b, SNN_OP_ADD, "charged", decay, c5);
    int32_t mem0 = ew(&b, SNN_OP_SUB, "mem0", charged, ew(&b, SNN_OP_MUL, "reset.amount", reset, thr));
    int32_t mem = ew3(&b, SNN_OP_SELECT, "l.mem", ew(&b, SNN_OP_GT, "always", one, zero), mem0, cur);
    m->forward.states[s_mem].next = mem;
    int32_t spk = put(&b, (snn_ir_value){.op = SNN_OP_FIRE, .name = "l.spk", .nargs = 1, .ival = sg, .shape = BN,
                                         .args = {ew(&b, SNN_OP_SUB, "v", mem, thr)}});
    int32_t spk2 = put(&b, (snn_ir_value){.op = SNN_OP_FIRE, .name = "l.spk.again", .nargs = 1, .ival = sg, .shape = BN,
                                          .args = {ew(&b, SNN_OP_SUB, "v.again", mem, one2)}});
    m->forward.states[s_cnt].next = ew(&b, SNN_OP_ADD, "l.count", rd(&b, s_cnt, "l.count.prev"), spk2);
    m->forward.states[s_dead].next = ew(&b, SNN_OP_ADD, "l.dead", rd(&b, s_dead, "l.dead.prev"), spk);
    ew(&b, SNN_OP_EXP, "unused", cur, -1);
    /* logits = mem + k * (decay2 - decay) + (spk + spk2) * 0.5 */
    int32_t extra = ew(&b, SNN_OP_MUL, "extra", ew(&b, SNN_OP_SUB, "diff", decay2, decay), k);
    int32_t logits0 = ew(&b, SNN_OP_ADD, "logits0", mem, extra);
    int32_t both = ew(&b, SNN_OP_ADD, "spikes", spk, spk2);
    int32_t half = cnst(&b, "half", 0.5f);
    int32_t logits = ew(&b, SNN_OP_ADD, "logits", logits0, ew(&b, SNN_OP_MUL, "spk.half", both, half));
    loss_ce(&b, logits);
    return m;
}

/* ---------------------------------------------------------------- rewrite */

static void test_rewrite_basics(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts fo = snn_fixture_defaults();
    snn_ir_module *m = lowered_t5(a, d, fo);
    CU_ASSERT_EQUAL(count_region(&m->forward, SNN_REGION_PRE), 0);   /* all moved to step */
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_INPUT, SNN_REGION_STEP), 1);
    /* identity rebuild: unchanged */
    int32_t n = m->forward.n_values;
    snn_ir_rw rw;
    snn_ir_rw_begin(&rw, a, d, m, &m->forward);
    for (int32_t i = 0; i < n; i++) snn_ir_rw_copy(&rw, i, m->forward.values[i].region);
    CU_ASSERT_TRUE(snn_ir_rw_finish(&rw, NULL));
    CU_ASSERT_FALSE(rw.changed);
    CU_ASSERT_EQUAL(m->forward.n_values, n);
    /* dropping a state's next value fails cleanly and leaves the function as it was */
    snn_ir_rw_begin(&rw, a, d, m, &m->forward);
    int32_t nx = m->forward.states[0].next;
    for (int32_t i = 0; i < n; i++)
        if (i != nx && i < nx) snn_ir_rw_copy(&rw, i, m->forward.values[i].region);
    int errors = snn_diag_error_count(d);
    CU_ASSERT_FALSE(snn_ir_rw_finish(&rw, NULL));
    CU_ASSERT_TRUE(snn_diag_error_count(d) > errors);
    CU_ASSERT_EQUAL(m->forward.n_values, n);
    CU_ASSERT_EQUAL(m->forward.states[0].next, nx);
    /* regions out of order are refused */
    snn_ir_rw_begin(&rw, a, d, m, &m->forward);
    snn_ir_rw_copy(&rw, 0, SNN_REGION_POST);
    CU_ASSERT_EQUAL(snn_ir_rw_copy(&rw, 1, SNN_REGION_PRE), -1);
    CU_ASSERT_TRUE(rw.failed);
    snn_ir_rw_abort(&rw);
    /* an emitted value never takes an old value's name */
    snn_ir_rw_begin(&rw, a, d, m, &m->forward);
    int32_t c = snn_ir_rw_emit(&rw, (snn_ir_value){.op = SNN_OP_CONST, .name = "threshold", .fval = 2.0f});
    CU_ASSERT_EQUAL(c, 0);
    CU_ASSERT_STRING_EQUAL(rw.vals[0].name, "threshold.1");
    snn_ir_rw_abort(&rw);
    /* value_same: commutative operands */
    snn_ir_value p = {.op = SNN_OP_ADD, .nargs = 2, .args = {3, 4}, .shape = snn_shape_1(2)};
    snn_ir_value q = {.op = SNN_OP_ADD, .nargs = 2, .args = {4, 3}, .shape = snn_shape_1(2)};
    CU_ASSERT_TRUE(snn_ir_value_same(&p, &q));
    p.op = q.op = SNN_OP_SUB;
    CU_ASSERT_FALSE(snn_ir_value_same(&p, &q));
    p.op = q.op = SNN_OP_MIN;   /* min is not commutative: the gradient goes to a at ties */
    CU_ASSERT_FALSE(snn_ir_value_same(&p, &q));
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* After autodiff, rebuilding the forward function renumbers the backward function's FWD reads,
 * the states and the scores state; dce on the forward function keeps what backward reads. */
static void test_rewrite_after_autodiff(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = kitchen_sink(a), *m = kitchen_sink(a);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    int32_t nf = m->forward.n_values, ns = m->forward.n_states;
    CU_ASSERT_TRUE(snn_pass_dce(a, d, m, &m->forward));
    CU_ASSERT_TRUE(m->forward.n_values < nf);
    CU_ASSERT_EQUAL(m->forward.n_states, ns - 1);     /* l.dead */
    CU_ASSERT_STRING_EQUAL(m->forward.states[m->scores_state].name, "l.count");
    CU_ASSERT_TRUE(snn_pass_cse(a, d, m, &m->forward));
    CU_ASSERT_TRUE(snn_pass_simplify(a, d, m, &m->forward));
    snn_pass_dce(a, d, m, &m->forward);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        if (v->op != SNN_OP_FWD) continue;
        /* the FWD still names a forward value of its shape */
        CU_ASSERT_TRUE(snn_shape_eq(v->shape, m->forward.values[v->ival].shape));
    }
    expect_same_results(ref, m, 3, 6, 4, true);
    snn_diag_print(d, stderr);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---------------------------------------------------------------- hoist */

static void hoist_t5_case(snn_fixture_opts fo, const char *label) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = lowered_t5(a, d, fo), *m = lowered_t5(a, d, fo);
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_LINEAR, SNN_REGION_STEP), 2);
    uint32_t fired = run_mask(a, d, m, BIT(hoist));
    CU_ASSERT_EQUAL(fired, BIT(hoist));
    /* the input and its linear are computed once, before the loop; layer 2's linear is not */
    const snn_ir_value *hc = find_value(&m->forward, "h.cur"), *oc = find_value(&m->forward, "o.cur");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(oc);
    CU_ASSERT_EQUAL(hc->region, SNN_REGION_PRE);
    CU_ASSERT_EQUAL(oc->region, SNN_REGION_STEP);
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_INPUT, SNN_REGION_PRE), 1);
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_LINEAR, SNN_REGION_STEP), 1);
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_STATE, SNN_REGION_PRE), 0);
    /* nothing else to do the second time */
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(hoist)), 0);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    /* the gradient of h.weight: T matmuls in the loop before, one after it with hoisting */
    int tn_ref = count_ops(&ref->backward, SNN_OP_MATMUL_TN, SNN_REGION_STEP);
    int tn_opt = count_ops(&m->backward, SNN_OP_MATMUL_TN, SNN_REGION_STEP);
    CU_ASSERT_TRUE(tn_opt < tn_ref);
    CU_ASSERT_EQUAL(count_ops(&m->backward, SNN_OP_MATMUL_TN, SNN_REGION_POST) - count_ops(&ref->backward, SNN_OP_MATMUL_TN, SNN_REGION_POST), tn_ref - tn_opt);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    close_count = 0;
    expect_same_results(ref, m, 4, 7, 5, true);
    CU_ASSERT_TRUE(close_count >= 2 + m->n_params);
    if (snn_diag_error_count(d)) { printf("\n%s:\n", label); snn_diag_print(d, stdout); }
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_hoist_tutorial5(void) {
    snn_fixture_opts fo = snn_fixture_defaults();
    hoist_t5_case(fo, "default");
    fo.final_loss = true;
    hoist_t5_case(fo, "final_loss");
    fo = snn_fixture_defaults();
    fo.synaptic = true;
    hoist_t5_case(fo, "synaptic");
    fo = snn_fixture_defaults();
    fo.learn_beta = true;
    fo.smooth = true;
    hoist_t5_case(fo, "learn_beta smooth");
}

/* RATE is a new draw each step: the input moves, the encoder and what reads it stay; STEPS (T)
 * is invariant. A state whose next is time-invariant keeps a step value as next. FWD of forward
 * pre values move in the backward function. */
static void test_hoist_rate_and_state_next(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *mods[2];
    for (int k = 0; k < 2; k++) {
        snn_ir_module *m = new_module(a, "rate", 4, 3);
        int32_t pW = add_param(a, m, "w", snn_shape_2(3, 4), SNN_PINIT_UNIFORM_FAN_IN, 0, 4);
        int32_t pV = add_param(a, m, "v", snn_shape_2(3, 4), SNN_PINIT_UNIFORM_FAN_IN, 0, 4);
        int32_t pD = add_param(a, m, "decay.raw", snn_shape_1(3), SNN_PINIT_CONST, 0.0f, 0);
        tb b = {a, m, &m->forward, SNN_REGION_STEP, 0};
        int32_t s_acc = state(&b, "acc", snn_shape_2(SNN_DIM_B, 3));
        int32_t s_last = state(&b, "last", snn_shape_2(SNN_DIM_B, 3));
        int32_t x = input(&b);
        int32_t spikes = put(&b, (snn_ir_value){.op = SNN_OP_RATE, .name = "x.spikes", .nargs = 1, .args = {x},
                                                .shape = snn_shape_2(SNN_DIM_B, 4)});
        int32_t W = param(&b, pW), V = param(&b, pV);
        int32_t drive = linear(&b, "drive", spikes, W, -1);
        int32_t bias = linear(&b, "bias.cur", x, V, -1);          /* invariant */
        m->forward.states[s_last].next = bias;                     /* an invariant next */
        int32_t decay = ew(&b, SNN_OP_SIGMOID, "decay", param(&b, pD), -1);   /* invariant, learnable */
        int32_t prev = rd(&b, s_acc, "acc.prev");
        int32_t acc = ew(&b, SNN_OP_ADD, "acc", ew(&b, SNN_OP_MUL, "acc.decay", prev, decay), drive);
        m->forward.states[s_acc].next = acc;
        int32_t logits = ew(&b, SNN_OP_ADD, "logits", acc, rd(&b, s_last, "last.prev"));
        int32_t steps = put(&b, (snn_ir_value){.op = SNN_OP_STEPS, .name = "T", .shape = snn_shape_scalar()});
        int32_t per_t = ew(&b, SNN_OP_DIV, "per.step", logits, ew(&b, SNN_OP_SQRT, "sqrt.T", steps, -1));
        loss_ce(&b, ew(&b, SNN_OP_TANH, "squash", per_t, -1));
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        mods[k] = m;
    }
    snn_ir_module *m = mods[1];
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(hoist)), BIT(hoist));
    CU_ASSERT_EQUAL(find_value(&m->forward, "x")->region, SNN_REGION_PRE);
    CU_ASSERT_EQUAL(find_value(&m->forward, "x.spikes")->region, SNN_REGION_STEP);
    CU_ASSERT_EQUAL(find_value(&m->forward, "drive")->region, SNN_REGION_STEP);
    CU_ASSERT_EQUAL(find_value(&m->forward, "bias.cur")->region, SNN_REGION_PRE);
    CU_ASSERT_EQUAL(find_value(&m->forward, "sqrt.T")->region, SNN_REGION_PRE);   /* T is invariant */
    CU_ASSERT_EQUAL(find_value(&m->forward, "per.step")->region, SNN_REGION_STEP);
    const snn_ir_state *last = &m->forward.states[1];
    CU_ASSERT_EQUAL(m->forward.values[last->next].region, SNN_REGION_STEP);
    CU_ASSERT_STRING_EQUAL(m->forward.values[last->next].name, "bias.cur.step");
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(hoist)), 0);   /* the step copy stays where it is */
    /* simplify must not undo the step copy */
    run_mask(a, d, m, BIT(simplify));
    CU_ASSERT_EQUAL(m->forward.values[m->forward.states[1].next].region, SNN_REGION_STEP);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, mods[0]));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    dump(m, "hoist: rate module after autodiff");
    /* backward: FWD reads of forward pre values and constants are invariant and move out of
     * the loop */
    int fwd_pre_in_step = 0, consts_in_step = count_ops(&m->backward, SNN_OP_CONST, SNN_REGION_STEP);
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        fwd_pre_in_step += v->op == SNN_OP_FWD && v->region == SNN_REGION_STEP &&
                           m->forward.values[v->ival].region == SNN_REGION_PRE;
    }
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(hoist)), BIT(hoist));
    CU_ASSERT_TRUE(consts_in_step > 0);
    CU_ASSERT_EQUAL(count_ops(&m->backward, SNN_OP_CONST, SNN_REGION_STEP), 0);
    int after = 0;
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        after += v->op == SNN_OP_FWD && v->region == SNN_REGION_STEP && m->forward.values[v->ival].region == SNN_REGION_PRE;
        CU_ASSERT_FALSE(v->op == SNN_OP_FWD && v->region == SNN_REGION_PRE && m->forward.values[v->ival].region == SNN_REGION_STEP);
    }
    CU_ASSERT_EQUAL(after, 0);
    CU_ASSERT_TRUE(fwd_pre_in_step > 0);
    expect_same_results(mods[0], m, 3, 9, 11, true);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(mods[0]);
    snn_ir_module_free(mods[1]);
    snn_arena_free(a);
}

/* ---------------------------------------------------------------- dce, cse, simplify */

static void test_dce(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = kitchen_sink(a), *m = kitchen_sink(a);
    int32_t n = m->forward.n_values;
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(dce)), BIT(dce));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "unused"));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "l.dead"));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "l.dead.prev"));
    CU_ASSERT_PTR_NOT_NULL(find_value(&m->forward, "l.count"));   /* the scores */
    CU_ASSERT_EQUAL(m->forward.n_states, 2);
    CU_ASSERT_EQUAL(m->forward.n_values, n - 3);   /* unused, l.dead, l.dead.prev, and nothing else */
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(dce)), 0);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    expect_same_results(ref, m, 3, 6, 1, true);
    /* backward: autodiff's output is already lean; dce must keep every gradient */
    run_mask(a, d, m, BIT(dce));
    CU_ASSERT_EQUAL(count_ops(&m->backward, SNN_OP_GRAD_ACC, -1), count_ops(&ref->backward, SNN_OP_GRAD_ACC, -1));
    expect_same_results(ref, m, 3, 6, 1, true);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_cse(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = kitchen_sink(a), *m = kitchen_sink(a);
    int consts = count_ops(&m->forward, SNN_OP_CONST, -1), fires = count_ops(&m->forward, SNN_OP_FIRE, -1);
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(cse)), BIT(cse));
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_CONST, -1), consts - 2);  /* one.again, threshold */
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_FIRE, -1), fires - 1);
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "decay.again"));   /* mem*beta = beta*mem */
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "v.again"));       /* mem - 1 twice */
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "l.spk.again"));
    const snn_ir_value *diff = find_value(&m->forward, "diff");
    CU_ASSERT_EQUAL(diff->args[0], diff->args[1]);                /* decay - decay */
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(cse)), 0);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    expect_same_results(ref, m, 3, 6, 2, true);
    /* backward: autodiff reads each forward value once, but after cse of the forward function
     * (here after autodiff, as a late pass would) the reads of v and v.again are reads of one
     * value, and the surrogate products on them are duplicates; cse on backward merges them */
    snn_ir_module *m2 = kitchen_sink(a);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m2));
    CU_ASSERT_TRUE(snn_pass_cse(a, d, m2, &m2->forward));   /* as a late forward pass would */
    CU_ASSERT_TRUE(snn_ir_verify(m2, d));
    int32_t nb = m2->backward.n_values;
    dump(m2, "cse: kitchen sink after autodiff");
    CU_ASSERT_EQUAL(run_mask(a, d, m2, BIT(cse)), BIT(cse));
    CU_ASSERT_TRUE(m2->backward.n_values < nb);
    expect_same_results(ref, m2, 3, 6, 2, true);
    CU_ASSERT_EQUAL(run_mask(a, d, m2, BIT(cse)), 0);
    snn_ir_module_free(m2);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* Two reads of one state merge within a region only: the post read is the final value. A
 * constant in the pre region serves the step region; the other way round it does not. */
static void test_cse_regions(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = new_module(a, "regions", 3, 3);
    tb b = {a, m, &m->forward, SNN_REGION_PRE, 0};
    int32_t s = state(&b, "s", snn_shape_2(SNN_DIM_B, 3));
    int32_t x = input(&b);
    int32_t half_pre = cnst(&b, "half.pre", 0.5f);
    b.r = SNN_REGION_STEP;
    int32_t half_step = cnst(&b, "half.step", 0.5f);
    int32_t r1 = rd(&b, s, "s.prev1"), r2 = rd(&b, s, "s.prev2");
    int32_t a1 = ew(&b, SNN_OP_MUL, "a1", r1, half_step);
    int32_t a2 = ew(&b, SNN_OP_MUL, "a2", r2, half_pre);
    int32_t nx = ew(&b, SNN_OP_ADD, "s.next", a1, a2);
    m->forward.states[s].next = ew(&b, SNN_OP_ADD, "s.in", nx, x);
    loss_ce(&b, r1);
    b.r = SNN_REGION_POST;
    int32_t f1 = rd(&b, s, "s.final"), f2 = rd(&b, s, "s.final2");
    int32_t half_post = cnst(&b, "half.post", 0.5f);
    int32_t ce = put(&b, (snn_ir_value){.op = SNN_OP_CROSS_ENTROPY, .name = "ce.final", .nargs = 1,
                                        .args = {ew(&b, SNN_OP_MUL, "f", ew(&b, SNN_OP_ADD, "f12", f1, f2), half_post)}, .shape = snn_shape_scalar()});
    put(&b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "loss.final", .nargs = 1, .args = {ce}, .fval = 1.0f});
    CU_ASSERT_TRUE_FATAL(snn_ir_verify(m, d));
    CU_ASSERT_TRUE(snn_pass_cse(a, d, m, &m->forward));
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "half.step"));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "half.post"));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "s.prev2"));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "a2"));        /* r*half twice after the merges */
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "s.final2"));
    CU_ASSERT_PTR_NOT_NULL(find_value(&m->forward, "s.final"));
    CU_ASSERT_PTR_NOT_NULL(find_value(&m->forward, "s.prev1"));
    (void)half_pre;
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_simplify(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = kitchen_sink(a), *m = kitchen_sink(a);
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(simplify)), BIT(simplify));
    static const char *const gone[] = {"cur.times1", "cur.plus0", "cur.neg1", "cur.neg2", "cur.div1", "cur.minus0", "l.mem"};
    for (size_t k = 0; k < sizeof gone / sizeof *gone; k++) {
        /* folded away: no value computes it any more (neg1 is only dead, dce removes it) */
        const snn_ir_value *v = find_value(&m->forward, gone[k]);
        if (strcmp(gone[k], "cur.neg1") == 0) continue;
        CU_ASSERT_PTR_NULL(v);
        if (v) printf("\n  still there: %s\n", gone[k]);
    }
    /* charged = decay + l.cur directly; the state's next is mem0 */
    const snn_ir_value *charged = find_value(&m->forward, "charged");
    CU_ASSERT_STRING_EQUAL(m->forward.values[charged->args[1]].name, "l.cur");
    CU_ASSERT_STRING_EQUAL(m->forward.values[m->forward.states[0].next].name, "mem0");
    /* clamp(0.25, 0, 1) and 1 > 0 folded to constants; the learnable beta's clamp stays */
    const snn_ir_value *k = find_value(&m->forward, "k"), *always = find_value(&m->forward, "always");
    CU_ASSERT_TRUE(k && k->op == SNN_OP_CONST && k->fval == 0.25f);
    CU_ASSERT_TRUE(!always || (always->op == SNN_OP_CONST && always->fval == 1.0f));
    CU_ASSERT_EQUAL(find_value(&m->forward, "beta.clamped")->op, SNN_OP_MIN);
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(simplify)), 0);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    expect_same_results(ref, m, 3, 6, 3, true);
    /* backward: the inlined surrogate's pow(kx, 2) becomes kx * kx; the adjoint of decay, a
     * subtrahend (decay2 - decay), summed with another as d + neg(g), becomes d - g */
    CU_ASSERT_TRUE(count_ops(&m->backward, SNN_OP_POW, -1) > 0);
    int negs = count_ops(&m->backward, SNN_OP_NEG, -1);
    CU_ASSERT_TRUE(negs > 0);
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(simplify) | BIT(dce)), BIT(simplify) | BIT(dce));
    CU_ASSERT_EQUAL(count_ops(&m->backward, SNN_OP_POW, -1), 0);
    CU_ASSERT_TRUE(count_ops(&m->backward, SNN_OP_NEG, -1) < negs);
    expect_same_results(ref, m, 3, 6, 3, true);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* What simplify must not touch: x * 0 (nan/inf), x - x, a replacement of another shape. */
static void test_simplify_unsafe(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = new_module(a, "unsafe", 3, 3);
    tb b = {a, m, &m->forward, SNN_REGION_STEP, 0};
    int32_t x = input(&b);
    int32_t zero = cnst(&b, "zero", 0.0f), one = cnst(&b, "one", 1.0f);
    int32_t t0 = ew(&b, SNN_OP_MUL, "times0", x, zero);
    int32_t xx = ew(&b, SNN_OP_SUB, "xminusx", x, x);
    int32_t bc = ew(&b, SNN_OP_ADD, "onezero", one, zero);   /* [] + [] -> folds to 1 */
    int32_t s = ew(&b, SNN_OP_ADD, "s", ew(&b, SNN_OP_ADD, "s0", t0, xx), bc);
    int32_t big = ew(&b, SNN_OP_ADD, "one.big", one, ew(&b, SNN_OP_MUL, "zeros", x, zero));  /* stays: x*0 */
    int32_t e = ew(&b, SNN_OP_EXP, "e", cnst(&b, "c", 2.0f), -1);                          /* not folded */
    loss_ce(&b, ew(&b, SNN_OP_ADD, "logits", ew(&b, SNN_OP_ADD, "l0", s, big), e));
    CU_ASSERT_TRUE_FATAL(snn_ir_verify(m, d));
    CU_ASSERT_TRUE(snn_pass_simplify(a, d, m, &m->forward));
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    CU_ASSERT_PTR_NOT_NULL(find_value(&m->forward, "times0"));
    CU_ASSERT_PTR_NOT_NULL(find_value(&m->forward, "xminusx"));
    CU_ASSERT_PTR_NULL(find_value(&m->forward, "onezero"));          /* 1 + 0 is the constant 1 */
    CU_ASSERT_EQUAL(find_value(&m->forward, "e")->op, SNN_OP_EXP);
    CU_ASSERT_EQUAL(find_value(&m->forward, "s")->op, SNN_OP_ADD);   /* s0 + 1 */
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---------------------------------------------------------------- timesum */

/* The index of state `name` of f, or -1. */
static int32_t state_index(const snn_ir_func *f, const char *name) {
    for (int32_t s = 0; s < f->n_states; s++)
        if (strcmp(f->states[s].name, name) == 0) return s;
    return -1;
}

/* timesum on one variant: whether it must fire and which adjoint state it must remove; the
 * loss and every gradient must stay what the unoptimized module computes (the interpreter, in
 * double, at several step counts: w(t) depends on t). */
static void timesum_case(snn_fixture_opts fo, const char *label, bool fires, const char *gone,
                         const char *stays) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = lowered_t5(a, d, fo), *m = lowered_t5(a, d, fo);
    run_mask(a, d, m, ALL_PASSES & ~BIT(timesum) & ~BIT(fission));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    CU_ASSERT_TRUE(state_index(&m->backward, gone) >= 0);
    uint32_t fired = run_mask(a, d, m, ALL_PASSES & ~BIT(fission));
    CU_ASSERT_EQUAL((fired & BIT(timesum)) != 0, fires);
    if (fires) {
        CU_ASSERT_EQUAL(state_index(&m->backward, gone), -1);
        CU_ASSERT_EQUAL(count_ops(&m->backward, SNN_OP_STEP, SNN_REGION_STEP), 1);
    }
    if (stays) CU_ASSERT_TRUE(state_index(&m->backward, stays) >= 0);
    if (getenv("SNN_PASSES_DUMP")) dump(m, label);
    expect_same_results(ref, m, 4, 3, 5, true);
    expect_same_results(ref, m, 4, 9, 5, true);
    expect_same_results(ref, m, 3, 30, 2, true);
    /* a second run finds nothing more */
    CU_ASSERT_FALSE(run_mask(a, d, m, BIT(timesum)) & BIT(timesum));
    if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_timesum(void) {
    snn_fixture_opts fo = snn_fixture_defaults();
    timesum_case(fo, "timesum: default", true, "d.h.mem", "d.o.mem");
    fo.beta = 1.0f;   /* no leak: w(t) = t + 1 */
    timesum_case(fo, "timesum: beta 1", true, "d.h.mem", NULL);
    fo = snn_fixture_defaults();
    fo.synaptic = true;   /* d.syn is a pure sum; d.mem also feeds d.syn: stays */
    timesum_case(fo, "timesum: synaptic", true, "d.h.syn", "d.h.mem");
    fo = snn_fixture_defaults();
    fo.learn_beta = true;   /* d.mem times a parameter, not a constant */
    timesum_case(fo, "timesum: learn_beta", false, "d.h.mem", "d.h.mem");
}

/* ---------------------------------------------------------------- remat */

/* Forward step values the backward step reads (what codegen tapes). */
static int tape_count(const snn_ir_module *m, const char *name) {
    bool *seen = calloc((size_t)m->forward.n_values + 1, sizeof *seen);
    int n = 0;
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        if (v->op != SNN_OP_FWD || v->region != SNN_REGION_STEP) continue;
        const snn_ir_value *t = &m->forward.values[v->ival];
        if (t->region != SNN_REGION_STEP || seen[v->ival]) continue;
        seen[v->ival] = true;
        if (!name || strcmp(t->name, name) == 0) n++;
    }
    free(seen);
    return n;
}

static void remat_case(snn_fixture_opts fo, const char *label) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = lowered_t5(a, d, fo), *m = lowered_t5(a, d, fo);
    run_mask(a, d, m, ALL_PASSES & ~BIT(remat));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    int before = tape_count(m, NULL);
    CU_ASSERT_EQUAL(tape_count(m, "h.spk"), 1);   /* the next layer's dW reads the spikes */
    uint32_t fired = run_mask(a, d, m, ALL_PASSES);
    CU_ASSERT_TRUE(fired & BIT(remat));
    int after = tape_count(m, NULL);
    if (getenv("SNN_PASSES_DUMP")) printf("\n%s: tape %d -> %d values\n", label, before, after);
    CU_ASSERT_TRUE(after < before);
    CU_ASSERT_EQUAL(tape_count(m, "h.spk"), 0);   /* recomputed as heaviside(h.v) */
    CU_ASSERT_TRUE(count_ops(&m->backward, SNN_OP_HEAVISIDE, SNN_REGION_STEP) >= 1);
    expect_same_results(ref, m, 4, 7, 6, true);
    if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_remat(void) {
    snn_fixture_opts fo = snn_fixture_defaults();
    remat_case(fo, "remat: default");
    fo.synaptic = true;
    remat_case(fo, "remat: synaptic");
    fo = snn_fixture_defaults();
    fo.recurrent = true;
    fo.learn_beta = true;
    remat_case(fo, "remat: recurrent, learn_beta");
}

/* ---------------------------------------------------------------- spikes */

static bool binary_named(const snn_ir_func *f, const bool *bin, const char *name) {
    for (int32_t i = 0; i < f->n_values; i++)
        if (strcmp(f->values[i].name, name) == 0) return bin[i];
    CU_FAIL("no such value");
    return false;
}

/* Spikes are found in forward (also through the recurrent state) and in backward, where the
 * weight gradients of the next layer and of the recurrent weight have a spike operand. */
static void test_binary_values(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts fo = snn_fixture_defaults();
    fo.recurrent = true;
    snn_ir_module *m = lowered_t5(a, d, fo);
    run_mask(a, d, m, ALL_PASSES);
    bool *bin = snn_ir_binary_values(m, &m->forward);
    CU_ASSERT_TRUE(binary_named(&m->forward, bin, "h.spk"));
    CU_ASSERT_TRUE(binary_named(&m->forward, bin, "h.spk.prev"));   /* through the state */
    CU_ASSERT_TRUE(binary_named(&m->forward, bin, "h.reset"));
    CU_ASSERT_TRUE(binary_named(&m->forward, bin, "o.spk"));
    CU_ASSERT_FALSE(binary_named(&m->forward, bin, "h.mem"));
    CU_ASSERT_FALSE(binary_named(&m->forward, bin, "o.count"));      /* a sum of spikes */
    CU_ASSERT_FALSE(binary_named(&m->forward, bin, "x"));
    int sparse_linears = 0;
    for (int32_t i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].op == SNN_OP_LINEAR) sparse_linears += bin[m->forward.values[i].args[0]];
    CU_ASSERT_EQUAL(sparse_linears, 2);   /* o.cur and h.rec; not h.cur = linear(x) */
    free(bin);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    run_mask(a, d, m, ALL_PASSES);
    bin = snn_ir_binary_values(m, &m->backward);
    int sparse_tn = 0, tn = 0;
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        if (v->op != SNN_OP_MATMUL_TN) continue;
        tn++;
        sparse_tn += bin[v->args[1]];
    }
    CU_ASSERT_EQUAL(tn, 3);          /* dW of o.weight, h.rweight (step), h.weight (post) */
    CU_ASSERT_EQUAL(sparse_tn, 2);   /* the two with spike inputs */
    free(bin);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---------------------------------------------------------------- fission */

static void print_plan(const snn_ir_func *f, const snn_time_plan *p, const char *label) {
    if (!getenv("SNN_PASSES_DUMP")) return;
    printf("\n==== %s\n", label);
    snn_time_plan_print(f, p, stdout);
}

static const snn_time_loop *loop_with(const snn_ir_func *f, const snn_time_plan *p, const char *name) {
    for (int32_t k = 0; k < p->n_loops; k++)
        for (int32_t i = p->loops[k].begin; i < p->loops[k].end; i++)
            if (strcmp(f->values[i].name, name) == 0) return &p->loops[k];
    return NULL;
}

static int loop_count_ops(const snn_ir_func *f, const snn_time_loop *lp, snn_op op) {
    int n = 0;
    for (int32_t i = lp->begin; i < lp->end; i++) n += f->values[i].op == op;
    return n;
}

/* The lowered Tutorial 5 network at -O2: forward [scan h] [parallel o.cur] [scan o], backward
 * with the layer-2 matmuls (d.h.spk and the time-summed dW) in a parallel loop between the two
 * reverse scans; same loss and gradients. */
static void fission_t5_case(snn_fixture_opts fo, const char *label) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = lowered_t5(a, d, fo), *m = lowered_t5(a, d, fo);
    snn_pass_options o = snn_pass_options_default();
    o.opt_level = 2;
    o.verify = true;
    uint32_t fired = 0;
    o.fired = &fired;
    snn_time_plan p;
    snn_time_plan_build(&m->forward, &p);
    CU_ASSERT_FALSE(p.sorted);           /* the lowered order is not the loop order */
    CU_ASSERT_EQUAL(p.n_loops, 1);
    snn_time_plan_free(&p);
    /* fission alone on the lowered order: the input's linear is not hoisted, but batched over
     * all T*B rows in a parallel loop before the first scan */
    snn_ir_module *m0 = lowered_t5(a, d, fo);
    CU_ASSERT_EQUAL(run_mask(a, d, m0, BIT(fission)), BIT(fission));
    snn_time_plan_build(&m0->forward, &p);
    print_plan(&m0->forward, &p, label);
    CU_ASSERT_TRUE(p.sorted);
    CU_ASSERT_EQUAL(p.n_loops, 4);
    if (p.n_loops == 4) {
        CU_ASSERT_EQUAL(p.loops[0].kind, SNN_LOOP_PARALLEL);
        CU_ASSERT_PTR_EQUAL(loop_with(&m0->forward, &p, "h.cur"), &p.loops[0]);
        CU_ASSERT_PTR_EQUAL(loop_with(&m0->forward, &p, "o.cur"), &p.loops[2]);
    }
    snn_time_plan_free(&p);
    /* the -O2 pipeline: hoisting leaves the step region already in loop order */
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    CU_ASSERT_TRUE(fired & BIT(hoist));
    snn_time_plan_build(&m->forward, &p);
    print_plan(&m->forward, &p, label);
    CU_ASSERT_TRUE(p.sorted);
    CU_ASSERT_EQUAL_FATAL(p.n_loops, 3);
    CU_ASSERT_EQUAL(p.loops[0].kind, SNN_LOOP_SCAN);
    CU_ASSERT_EQUAL(p.loops[1].kind, SNN_LOOP_PARALLEL);
    CU_ASSERT_EQUAL(p.loops[2].kind, SNN_LOOP_SCAN);
    CU_ASSERT_PTR_EQUAL(loop_with(&m->forward, &p, "o.cur"), &p.loops[1]);
    CU_ASSERT_PTR_EQUAL(loop_with(&m->forward, &p, "h.mem.prev"), &p.loops[0]);
    CU_ASSERT_PTR_EQUAL(loop_with(&m->forward, &p, "o.mem.prev"), &p.loops[2]);
    CU_ASSERT_PTR_EQUAL(loop_with(&m->forward, &p, "ce"), &p.loops[2]);   /* the loss fuses into its scan */
    CU_ASSERT_EQUAL(loop_count_ops(&m->forward, &p.loops[1], SNN_OP_LINEAR), 1);
    int crossing = 0;
    for (int32_t i = 0; i < m->forward.n_values; i++) crossing += p.crosses[i];
    CU_ASSERT_TRUE(crossing >= 1 && crossing <= 3);
    CU_ASSERT_TRUE(p.reduction_state[m->scores_state]);   /* the spike counter is a sum */
    /* the membrane minus threshold (the surrogate's argument, taped) crosses, not the membrane;
     * the spikes are made in the parallel loop */
    CU_ASSERT_TRUE(p.crosses[find_value(&m->forward, "h.v") - m->forward.values]);
    CU_ASSERT_FALSE(p.crosses[find_value(&m->forward, "h.mem") - m->forward.values]);
    CU_ASSERT_PTR_EQUAL(loop_with(&m->forward, &p, "h.v"), &p.loops[0]);
    CU_ASSERT_PTR_EQUAL(loop_with(&m->forward, &p, "h.spk"), &p.loops[1]);
    snn_time_plan_free(&p);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    fired = 0;
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    snn_time_plan_build(&m->backward, &p);
    print_plan(&m->backward, &p, label);
    dump(m, label);
    CU_ASSERT_TRUE(p.sorted);
    /* [scan d.o] [parallel: d.h.spk, dW, surrogate products] [scan d.h], unless timesum took
     * the sum of d.h.mem in closed form: then the hidden layer's backward has no recurrence */
    const bool closed = state_index(&m->backward, "d.h.mem") < 0;
    CU_ASSERT_EQUAL(closed, !fo.learn_beta && !fo.synaptic);
    CU_ASSERT_EQUAL_FATAL(p.n_loops, closed ? 2 : 3);
    CU_ASSERT_EQUAL(p.loops[0].kind, SNN_LOOP_SCAN);
    CU_ASSERT_EQUAL(p.loops[1].kind, SNN_LOOP_PARALLEL);
    if (!closed) CU_ASSERT_EQUAL(p.loops[2].kind, SNN_LOOP_SCAN);
    CU_ASSERT_EQUAL(loop_count_ops(&m->backward, &p.loops[1], SNN_OP_MATMUL_NN), 1);   /* d.h.spk */
    CU_ASSERT_EQUAL(loop_count_ops(&m->backward, &p.loops[1], SNN_OP_MATMUL_TN), 1);   /* dW, summed over t */
    CU_ASSERT_EQUAL(loop_count_ops(&m->backward, &p.loops[0], SNN_OP_MATMUL_TN), 0);
    if (!closed) CU_ASSERT_EQUAL(loop_count_ops(&m->backward, &p.loops[2], SNN_OP_MATMUL_TN), 0);
    int sums = 0;
    for (int s = 0; s < m->backward.n_states; s++) sums += p.reduction_state[s];
    CU_ASSERT_TRUE(sums >= 2);   /* acc.d.o.weight, acc.d.o.bias, acc.d.h.cur */
    snn_time_plan_free(&p);
    expect_same_results(ref, m, 4, 7, 5, true);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m0));
    run_mask(a, d, m0, BIT(fission));
    expect_same_results(ref, m0, 4, 7, 5, true);
    snn_ir_module_free(m0);
    if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_fission_tutorial5(void) {
    snn_fixture_opts fo = snn_fixture_defaults();
    fission_t5_case(fo, "fission: default");
    fo.synaptic = true;
    fo.final_loss = true;
    fission_t5_case(fo, "fission: synaptic, final loss");
    fo = snn_fixture_defaults();
    fo.learn_beta = true;
    fission_t5_case(fo, "fission: learn_beta");
}

/* Fission keeps the meaning of the other modules too, and a second run changes nothing. */
static void test_fission_others(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *ref = kitchen_sink(a), *m = kitchen_sink(a);
    run_mask(a, d, m, BIT(fission));
    snn_time_plan p;
    snn_time_plan_build(&m->forward, &p);
    print_plan(&m->forward, &p, "fission: kitchen sink");
    CU_ASSERT_TRUE(p.sorted);
    CU_ASSERT_PTR_NOT_NULL(loop_with(&m->forward, &p, "l.cur"));
    CU_ASSERT_EQUAL(loop_with(&m->forward, &p, "l.cur")->kind, SNN_LOOP_PARALLEL);
    snn_time_plan_free(&p);
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(fission)), 0);
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    run_mask(a, d, m, BIT(fission));
    CU_ASSERT_EQUAL(run_mask(a, d, m, BIT(fission)), 0);
    expect_same_results(ref, m, 3, 6, 8, true);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(ref);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---------------------------------------------------------------- everything, everywhere */

/* Runs the -O2 pipeline (both stages, verifying after every pass) on m and compares with ref,
 * an unoptimized build of the same module. */
static void o2_equivalence(snn_arena *a, snn_diag *d, snn_ir_module *ref, snn_ir_module *m, int64_t B, int64_t T,
                           const char *label) {
    snn_pass_options o = snn_pass_options_default();
    o.opt_level = 2;
    o.verify = true;
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    int before = close_count;
    /* (ops without a gradient, e.g. comparisons, leave no backward function: loss only) */
    CU_ASSERT_EQUAL(ref->backward.n_values > 0, m->backward.n_values > 0);
    expect_same_results(ref, m, B, T, 13, ref->backward.n_values > 0);
    CU_ASSERT_TRUE(close_count > before);
    if (snn_diag_error_count(d)) {
        printf("\n  %s:\n", label);
        snn_diag_print(d, stdout);
    }
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
}

/* Every one-op module of the fixtures (every op autodiff has a rule for) through -O2. */
static void test_o2_each_op(void) {
    every_param_used = false;
    int tested = 0;
    for (int op = 0; op < SNN_OP_COUNT_; op++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *ref = snn_fixture_op(a, (snn_op)op), *m = snn_fixture_op(a, (snn_op)op);
        if (ref && m) {
            o2_equivalence(a, d, ref, m, 3, 4, snn_op_infos[op].mnemonic);
            tested++;
        }
        snn_ir_module_free(ref);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
    every_param_used = true;
    CU_ASSERT_TRUE(tested >= 20);
}

/* Every combination of the Tutorial 5 fixture's variants, in lowering's shape, through -O2. */
static void test_o2_tutorial5_variants(void) {
    for (int bits = 0; bits < 32; bits++) {
        snn_fixture_opts fo = snn_fixture_defaults();
        fo.synaptic = bits & 1;
        fo.learn_beta = bits & 2;
        fo.final_loss = bits & 4;
        fo.smooth = bits & 8;
        fo.recurrent = bits & 16;
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *ref = lowered_t5(a, d, fo), *m = lowered_t5(a, d, fo);
        char label[64];
        snprintf(label, sizeof label, "tutorial5 variant %d", bits);
        o2_equivalence(a, d, ref, m, 3, 6, label);
        /* hoisting took the input's linear out of the loop in every variant */
        CU_ASSERT_EQUAL(find_value(&m->forward, "h.cur")->region, SNN_REGION_PRE);
        /* time loops: layer 2's linear is batched between the scans; a recurrent layer's own
         * linear stays in its scan (it reads the previous step's spikes) */
        snn_time_plan p;
        snn_time_plan_build(&m->forward, &p);
        CU_ASSERT_TRUE(p.sorted);
        const snn_time_loop *lo = loop_with(&m->forward, &p, "o.cur");
        CU_ASSERT_TRUE(lo && lo->kind == SNN_LOOP_PARALLEL);
        if (fo.recurrent) {
            const snn_time_loop *lr = loop_with(&m->forward, &p, "h.rec");
            CU_ASSERT_TRUE(lr && lr->kind == SNN_LOOP_SCAN);
        }
        snn_time_plan_free(&p);
        snn_time_plan_build(&m->backward, &p);
        CU_ASSERT_TRUE(p.sorted);
        int parallel_tn = 0;
        for (int32_t k = 0; k < p.n_loops; k++)
            if (p.loops[k].kind == SNN_LOOP_PARALLEL) parallel_tn += loop_count_ops(&m->backward, &p.loops[k], SNN_OP_MATMUL_TN);
        CU_ASSERT_TRUE(parallel_tn >= 1);   /* dW of o.weight as one GEMM over T*B rows */
        snn_time_plan_free(&p);
        snn_ir_module_free(ref);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* ---------------------------------------------------------------- the pipeline */

static char *print_forward(const snn_ir_module *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    snn_ir_print_func(m, &m->forward, f);
    fclose(f);
    return buf;
}

/* -O1 on the lowered Tutorial 5 network, before and after autodiff, through the manager the
 * driver uses; -O0 changes nothing; -O2 agrees with -O1. */
static void test_pipeline_tutorial5(void) {
    for (int level = 0; level <= 2; level++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_fixture_opts fo = snn_fixture_defaults();
        fo.final_loss = true;
        fo.learn_beta = true;
        snn_ir_module *ref = lowered_t5(a, d, fo), *m = lowered_t5(a, d, fo);
        char *before = print_forward(m);
        snn_pass_options o = snn_pass_options_default();
        uint32_t fired = 0;
        o.opt_level = level;
        o.verify = true;
        o.fired = &fired;
        CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
        CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, ref));
        CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
        int32_t nb = m->backward.n_values;
        CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
        char *after = print_forward(m);
        if (level == 0) {
            CU_ASSERT_STRING_EQUAL(before, after);
            CU_ASSERT_EQUAL(fired, 0);
            CU_ASSERT_EQUAL(m->backward.n_values, nb);
        } else {
            CU_ASSERT_TRUE(fired & BIT(hoist));
            CU_ASSERT_TRUE(fired & BIT(cse));
            CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_LINEAR, SNN_REGION_STEP), 1);
            CU_ASSERT_EQUAL(find_value(&m->forward, "h.cur")->region, SNN_REGION_PRE);
            CU_ASSERT_TRUE(m->backward.n_values <= nb);
            /* the step region of both functions shrank */
            CU_ASSERT_TRUE(count_region(&m->forward, SNN_REGION_STEP) < count_region(&ref->forward, SNN_REGION_STEP));
            CU_ASSERT_TRUE(count_region(&m->backward, SNN_REGION_STEP) < count_region(&ref->backward, SNN_REGION_STEP));
        }
        expect_same_results(ref, m, 4, 8, 9, true);
        if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
        CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
        free(before);
        free(after);
        snn_ir_module_free(ref);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* --print-after prints a function only after a pass that changed it, with a header. */
static void test_print_after(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = lowered_t5(a, d, snn_fixture_defaults());
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    snn_pass_options o = snn_pass_options_default();
    uint32_t fired = 0;
    o.print_file = out;
    o.fired = &fired;
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--print-after=hoist"), 1);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--print-after=cse"), 1);
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    fclose(out);
    CU_ASSERT_TRUE(fired & BIT(hoist));
    CU_ASSERT_TRUE(fired & BIT(simplify));   /* reset * 1, not asked for: not printed */
    CU_ASSERT_FALSE(fired & BIT(cse));       /* nothing to merge here: nothing printed */
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_TRUE(strncmp(buf, "; *** IR after hoist on forward ***\nfunc forward {\n", 51) == 0);
    CU_ASSERT_PTR_NULL(strstr(buf, "after simplify"));
    CU_ASSERT_PTR_NULL(strstr(buf, "after cse"));
    CU_ASSERT_PTR_NULL(strstr(buf + 1, "; ***"));   /* one dump only */
    /* the dump shows the linear before the loop */
    char *pre = strstr(buf, "pre:\n"), *step = strstr(buf, "step:\n"), *hc = strstr(buf, "%h.cur = linear");
    CU_ASSERT_TRUE(pre && step && hc && pre < hc && hc < step);
    free(buf);
    /* --print-after-all: one dump per pass that fired, after autodiff too */
    buf = NULL;
    out = open_memstream(&buf, &len);
    o = snn_pass_options_default();
    o.print_after_all = true;
    o.print_file = out;
    fired = 0;
    o.fired = &fired;
    CU_ASSERT_TRUE_FATAL(snn_autodiff(a, d, m));
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    fclose(out);
    int dumps = 0;
    for (char *p = buf; p && (p = strstr(p, "; *** IR after ")); p++) {
        dumps++;
        char name[32] = "", func[32] = "";
        CU_ASSERT_EQUAL(sscanf(p, "; *** IR after %31s on %31s ***\n", name, func), 2);
        CU_ASSERT_TRUE(snn_pass_lookup(name) >= 0);
        CU_ASSERT_STRING_EQUAL(func, "backward");
        CU_ASSERT_TRUE(strncmp(strchr(p, '\n'), "\nfunc backward reverse {\n", 25) == 0);
    }
    CU_ASSERT_EQUAL(dumps, __builtin_popcount(fired));
    CU_ASSERT_TRUE(dumps > 0);
    free(buf);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_flags_and_help(void) {
    snn_pass_options o = snn_pass_options_default();
    CU_ASSERT_EQUAL(o.opt_level, 1);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-O0"), 1);
    CU_ASSERT_EQUAL(o.opt_level, 0);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-O2"), 1);
    CU_ASSERT_EQUAL(o.opt_level, 2);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-O9"), -1);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-fno-hoist"), 1);
    CU_ASSERT_EQUAL(o.disabled, BIT(hoist));
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-fhoist"), 1);
    CU_ASSERT_EQUAL(o.disabled, 0);
    CU_ASSERT_EQUAL(o.enabled, BIT(hoist));
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-fno-nonesuch"), -1);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--print-after=nonesuch"), -1);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--print-after=dce"), 1);
    CU_ASSERT_EQUAL(o.print_after, BIT(dce));
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--print-after-all"), 1);
    CU_ASSERT_TRUE(o.print_after_all);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--verify-each"), 1);
    CU_ASSERT_TRUE(o.verify);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "--emit=ir"), 0);
    CU_ASSERT_EQUAL(snn_pass_parse_flag(&o, "-o"), 0);
    CU_ASSERT_EQUAL(snn_pass_lookup("cse"), SNN_PASS_ID_cse);
    CU_ASSERT_EQUAL(snn_pass_lookup("CSE"), -1);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    snn_pass_print_help(out);
    fclose(out);
    int lines = 0;
    for (char *p = buf; *p; p++) lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, SNN_PASS_COUNT_);
    for (int i = 0; i < SNN_PASS_COUNT_; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, snn_pass_table[i].name));
        CU_ASSERT_PTR_NOT_NULL(snn_pass_table[i].fn);
        CU_ASSERT_TRUE(snn_pass_table[i].where != 0);
        for (int j = 0; j < i; j++) CU_ASSERT_STRING_NOT_EQUAL(snn_pass_table[i].name, snn_pass_table[j].name);
    }
    free(buf);
}

/* A pass disabled with -fno-NAME does not run; the others still do. */
static void test_disable(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = lowered_t5(a, d, snn_fixture_defaults());
    snn_pass_options o = snn_pass_options_default();
    uint32_t fired = 0;
    o.fired = &fired;
    o.verify = true;
    snn_pass_parse_flag(&o, "-fno-hoist");
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, &o));
    CU_ASSERT_FALSE(fired & BIT(hoist));
    CU_ASSERT_EQUAL(count_ops(&m->forward, SNN_OP_LINEAR, SNN_REGION_STEP), 2);
    CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* With verification on, the manager stops at the first pass after which the module does not
 * verify, and says which pass. (The module here is broken from the start in a way no pass
 * touches: two parameters with one name.) */
static void test_verify_failure_stops(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = lowered_t5(a, d, snn_fixture_defaults());
    m->params[1].name = m->params[0].name;
    snn_pass_options o = snn_pass_options_default();
    uint32_t fired = 0;
    o.fired = &fired;
    o.verify = true;
    CU_ASSERT_FALSE(snn_run_passes(a, d, m, &o));
    CU_ASSERT_TRUE(snn_diag_error_count(d) > 0);
    CU_ASSERT_EQUAL(__builtin_popcount(fired), 1);   /* stopped after the first pass that changed something */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    snn_diag_print(d, out);
    fclose(out);
    int first = __builtin_ctz(fired);
    char want[96];
    snprintf(want, sizeof want, "the IR is malformed after pass %s on the forward function", snn_pass_table[first].name);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "internal error"));
    free(buf);
    /* without verification the passes run to the end */
    snn_diag *d2 = snn_diag_new(a);
    o.verify = false;
    CU_ASSERT_TRUE(snn_run_passes(a, d2, m, &o));
    CU_ASSERT_EQUAL(snn_diag_error_count(d2), 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* Golden text: the forward function of the lowered 7-5-3 network after -O1: the input and its
 * linear before the loop, reset * 1 simplified to the reset. */
static const char golden_t5_forward[] =
    "func forward {\n"
    "  state h.mem : f32[B,5] = 0 next %h.mem\n"
    "  state o.mem : f32[B,3] = 0 next %o.mem\n"
    "  state o.count : f32[B,3] = 0 next %o.count\n"
    "pre:\n"
    "  %x = input : f32[B,7]\n"
    "  %h.weight = param h.weight : f32[5,7]\n"
    "  %h.bias = param h.bias : f32[5]\n"
    "  %o.weight = param o.weight : f32[3,5]\n"
    "  %o.bias = param o.bias : f32[3]\n"
    "  %threshold = const 1 : f32[]\n"
    "  %beta = const 0.95 : f32[]\n"
    "  %h.cur = linear %x, %h.weight, %h.bias : f32[B,5]\n"
    "step:\n"
    "  %h.mem.prev = state h.mem : f32[B,5]\n"
    "  %h.over.prev = sub %h.mem.prev, %threshold : f32[B,5]\n"
    "  %h.fired.prev = heaviside %h.over.prev : f32[B,5]\n"
    "  %h.reset = detach %h.fired.prev : f32[B,5]\n"
    "  %h.decay = mul %beta, %h.mem.prev : f32[B,5]\n"
    "  %h.charged = add %h.decay, %h.cur : f32[B,5]\n"
    "  %h.mem = sub %h.charged, %h.reset : f32[B,5]\n"
    "  %h.v = sub %h.mem, %threshold : f32[B,5]\n"
    "  %h.spk = fire %h.v, surrogate=0 : f32[B,5]\n"
    "  %o.cur = linear %h.spk, %o.weight, %o.bias : f32[B,3]\n"
    "  %o.mem.prev = state o.mem : f32[B,3]\n"
    "  %o.over.prev = sub %o.mem.prev, %threshold : f32[B,3]\n"
    "  %o.fired.prev = heaviside %o.over.prev : f32[B,3]\n"
    "  %o.reset = detach %o.fired.prev : f32[B,3]\n"
    "  %o.decay = mul %beta, %o.mem.prev : f32[B,3]\n"
    "  %o.charged = add %o.decay, %o.cur : f32[B,3]\n"
    "  %o.mem = sub %o.charged, %o.reset : f32[B,3]\n"
    "  %o.v = sub %o.mem, %threshold : f32[B,3]\n"
    "  %o.spk = fire %o.v, surrogate=0 : f32[B,3]\n"
    "  %o.count.prev = state o.count : f32[B,3]\n"
    "  %o.count = add %o.count.prev, %o.spk : f32[B,3]\n"
    "  %ce = cross_entropy %o.mem : f32[]\n"
    "  %loss.ce = loss_add %ce, scale=1\n"
    "post:\n"
    "}\n";

/* The printed text without its "# file:line:col" comments (so a change of the fixture's
 * source lines does not break the golden text). */
static void strip_locations(char *text) {
    char *w = text;
    for (char *r = text; *r;) {
        char *eol = strchr(r, '\n');
        size_t len = eol ? (size_t)(eol - r) : strlen(r);
        char *hash = memchr(r, '#', len);
        size_t keep = hash ? (size_t)(hash - r) : len;
        while (keep > 0 && r[keep - 1] == ' ') keep--;
        memmove(w, r, keep);
        w += keep;
        if (eol) *w++ = '\n';
        r += len + (eol ? 1 : 0);
    }
    *w = 0;
}

static void test_golden_forward(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = lowered_t5(a, d, snn_fixture_defaults());
    CU_ASSERT_TRUE(snn_run_passes(a, d, m, NULL));
    char *text = print_forward(m);
    strip_locations(text);
    if (strcmp(text, golden_t5_forward) != 0) {
        printf("\n--- got:\n%s--- expected:\n%s", text, golden_t5_forward);
        CU_FAIL("golden forward text differs");
    }
    free(text);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

void test_passes_register(void) {
    CU_pSuite s = CU_add_suite("passes", NULL, NULL);
    CU_add_test(s, "rewrite: rebuild, failures, names, value_same", test_rewrite_basics);
    CU_add_test(s, "rewrite after autodiff: FWD ids, states, scores", test_rewrite_after_autodiff);
    CU_add_test(s, "hoist: tutorial5 variants, loss and gradients equal", test_hoist_tutorial5);
    CU_add_test(s, "hoist: rate stays, invariant state next, backward FWD", test_hoist_rate_and_state_next);
    CU_add_test(s, "dce: dead values and states", test_dce);
    CU_add_test(s, "cse: duplicates, commutative, backward", test_cse);
    CU_add_test(s, "cse: regions and state reads", test_cse_regions);
    CU_add_test(s, "simplify: identities and folding", test_simplify);
    CU_add_test(s, "simplify: unsafe rewrites not done", test_simplify_unsafe);
    CU_add_test(s, "remat: spikes leave the tape", test_remat);
    CU_add_test(s, "timesum: closed-form time sums of adjoint recurrences", test_timesum);
    CU_add_test(s, "spikes: binary values forward and backward", test_binary_values);
    CU_add_test(s, "fission: tutorial5 loops forward and backward", test_fission_tutorial5);
    CU_add_test(s, "fission: other modules, idempotent", test_fission_others);
    CU_add_test(s, "-O2 on every one-op module", test_o2_each_op);
    CU_add_test(s, "-O2 on all 32 tutorial5 variants", test_o2_tutorial5_variants);
    CU_add_test(s, "pipeline: -O0/-O1/-O2 on tutorial5", test_pipeline_tutorial5);
    CU_add_test(s, "pipeline: --print-after", test_print_after);
    CU_add_test(s, "pipeline: flags and --help", test_flags_and_help);
    CU_add_test(s, "pipeline: -fno-hoist", test_disable);
    CU_add_test(s, "pipeline: verification failure names the pass", test_verify_failure_stops);
    CU_add_test(s, "golden: tutorial5 forward after -O1", test_golden_forward);
}
