/* test_autodiff.c: autodiff (compiler/autodiff) checked three ways, all through the reference
 * interpreter (compiler/ir/interp.c):
 *   - central finite differences of the interpreted forward loss, in double, for every op rule
 *     (one-op modules) and for the Tutorial 5 network variants with fire replaced by a smooth
 *     op (the surrogate makes finite differences meaningless through fire); inputs are chosen
 *     so that neurons reset (spike) but no membrane sits near the threshold;
 *   - the true network (fire with the atan surrogate) against a hand-written BPTT;
 *   - structure: the backward function verifies, the metric's counter is pruned, a hoisted
 *     linear gives the same gradients with one matmul in the backward post region;
 *   - on what the real front end and lowering (compiler/lower.c) produce for small .snn
 *     programs (every stdlib neuron, the losses, a learnable beta), with and without the
 *     forward passes: finite differences with fire made smooth, and for Tutorial 5 the same
 *     loss and gradients as the hand-built fixture.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "ir/interp.h"
#include "ir/ir.h"
#include "ir_fixtures.h"
#include "lower.h"
#include "passes/passes.h"
#include "sema.h"

/* ---- helpers ---- */

typedef struct {
    const snn_ir_module *m;
    int64_t B, T;
    double **p, **g;
    double *x;
    int32_t *labels;
    uint64_t seed;
} case_t;

static void case_init(case_t *c, const snn_ir_module *m, int64_t B, int64_t T, uint64_t seed, double scale,
                      double lo, double hi) {
    c->m = m; c->B = B; c->T = T; c->seed = seed;
    c->p = calloc((size_t)m->n_params + 1, sizeof *c->p);
    c->g = calloc((size_t)m->n_params + 1, sizeof *c->g);
    for (int i = 0; i < m->n_params; i++) {
        c->p[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
        c->g[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
    }
    snn_fixture_params(m, seed, scale, c->p);
    c->x = calloc((size_t)(B * m->n_inputs), sizeof(double));
    c->labels = calloc((size_t)B, sizeof(int32_t));
    snn_fixture_inputs(m, B, seed, lo, hi, c->x, c->labels);
}

static void case_free(case_t *c) {
    for (int i = 0; i < c->m->n_params; i++) { free(c->p[i]); free(c->g[i]); }
    free(c->p); free(c->g); free(c->x); free(c->labels);
}

static double case_loss(case_t *c, bool grads, const snn_interp_opts *o) {
    snn_interp_batch b = {c->B, c->T, c->x, c->labels, c->seed};
    double loss = NAN;
    int rc = snn_interp_run_f64(c->m, (const double *const *)c->p, grads ? c->g : NULL, &b, &loss, NULL, o);
    CU_ASSERT_EQUAL(rc, 0);
    return loss;
}

/* Max over all param elements of |autodiff - central difference| / max(|fd|, |ad|, floor). */
static double fd_max_err(case_t *c, double eps, double floor, int *n_checked) {
    case_loss(c, true, NULL);
    double worst = 0;
    int n = 0;
    for (int i = 0; i < c->m->n_params; i++) {
        int64_t ne = snn_shape_numel(c->m->params[i].shape, 1);
        for (int64_t k = 0; k < ne; k++) {
            double keep = c->p[i][k];
            c->p[i][k] = keep + eps;
            double lp = case_loss(c, false, NULL);
            c->p[i][k] = keep - eps;
            double lm = case_loss(c, false, NULL);
            c->p[i][k] = keep;
            double fd = (lp - lm) / (2 * eps), ad = c->g[i][k];
            double den = fmax(floor, fmax(fabs(fd), fabs(ad)));
            double err = fabs(fd - ad) / den;
            if (err > worst) worst = err;
            if (err > 1e-5) printf("\n  %s[%lld]: autodiff %.10g, finite difference %.10g", c->m->params[i].name, (long long)k, ad, fd);
            n++;
        }
    }
    if (n_checked) *n_checked = n;
    return worst;
}

/* Watches the operands of every HEAVISIDE in the forward function: the smallest |value| (how
 * close a membrane came to the threshold) and, per watched value, whether it was ever > 0. */
typedef struct {
    const snn_ir_module *m;
    bool *watch;
    double min_abs;
    int64_t *pos, *tot;         /* per forward value */
} watch_t;

static void watch_cb(void *ctx, const snn_ir_func *f, int32_t id, int64_t t, const double *data, int64_t n) {
    watch_t *w = ctx;
    if (f != &w->m->forward || !w->watch[id]) return;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(data[i]) < w->min_abs) w->min_abs = fabs(data[i]);
        w->pos[id] += data[i] > 0;
        w->tot[id]++;
    }
}

/* Finds a seed whose inputs make every watched value positive somewhere (neurons reset) but
 * not everywhere, with no value within margin of 0. Returns the seed, or -1. */
static int pick_seed(const snn_ir_module *m, int64_t B, int64_t T, double scale, double margin) {
    watch_t w = {.m = m};
    size_t nv = (size_t)m->forward.n_values;
    w.watch = calloc(nv, 1);
    w.pos = calloc(nv, sizeof *w.pos);
    w.tot = calloc(nv, sizeof *w.tot);
    for (int32_t i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].op == SNN_OP_HEAVISIDE) w.watch[m->forward.values[i].args[0]] = true;
    int found = -1;
    for (int seed = 1; seed < 300 && found < 0; seed++) {
        case_t c;
        case_init(&c, m, B, T, (uint64_t)seed, scale, 0.0, 1.0);
        w.min_abs = INFINITY;
        memset(w.pos, 0, nv * sizeof *w.pos);
        memset(w.tot, 0, nv * sizeof *w.tot);
        snn_interp_opts o = {.observe = watch_cb, .ctx = &w};
        case_loss(&c, false, &o);
        bool ok = w.min_abs > margin;
        for (size_t i = 0; i < nv; i++)
            if (w.watch[i] && (w.pos[i] == 0 || w.pos[i] == w.tot[i])) ok = false;
        if (ok) found = seed;
        case_free(&c);
    }
    free(w.watch);
    free(w.pos);
    free(w.tot);
    return found;
}

static int count_op(const snn_ir_func *f, snn_op op) {
    int n = 0;
    for (int32_t i = 0; i < f->n_values; i++) n += f->values[i].op == op;
    return n;
}

static snn_ir_module *build(snn_arena *a, snn_diag *d, const snn_fixture_opts *o) {
    snn_ir_module *m = snn_fixture_tutorial5(a, o);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    CU_ASSERT_TRUE(snn_autodiff(a, d, m));
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
    return m;
}

/* ---- tests ---- */

static void test_every_variant_verifies(void) {
    for (int bits = 0; bits < 64; bits++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_fixture_opts o = snn_fixture_defaults();
        o.learn_beta = bits & 1; o.synaptic = bits & 2; o.smooth = bits & 4; o.hoisted = bits & 8;
        o.final_loss = bits & 16; o.recurrent = bits & 32;
        snn_ir_module *m = build(a, d, &o);
        CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
        CU_ASSERT_TRUE(m->backward.n_values > 0);
        CU_ASSERT_EQUAL(count_op(&m->backward, SNN_OP_GRAD_ACC), m->n_params);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* The metric's spike counter does not reach the loss: no backward state, no tape of it. */
static void test_pruning(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = build(a, d, &o);
    for (int32_t s = 0; s < m->backward.n_states; s++) CU_ASSERT_PTR_NULL(strstr(m->backward.states[s].name, "count"));
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        CU_ASSERT_PTR_NULL(strstr(v->name, "count"));
        if (v->op == SNN_OP_FWD) {   /* the tape: only what the rules read */
            const char *fn = m->forward.values[v->ival].name;
            CU_ASSERT_TRUE(strcmp(fn, "h.spk") == 0 || strcmp(fn, "h.v") == 0 || strcmp(fn, "o.mem") == 0);
        }
    }
    /* backward states: d.h.mem and d.o.mem, plus the four time accumulators of the params */
    CU_ASSERT_EQUAL(m->backward.n_states, 6);
    CU_ASSERT_EQUAL(count_op(&m->backward, SNN_OP_FWD), 3);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void fd_variant(snn_fixture_opts o, const char *what) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    o.smooth = true;
    snn_ir_module *m = build(a, d, &o);
    const int64_t B = 4, T = 8;
    int seed = pick_seed(m, B, T, 2.0, 2e-4);
    CU_ASSERT_TRUE_FATAL(seed > 0);
    case_t c;
    case_init(&c, m, B, T, (uint64_t)seed, 2.0, 0.0, 1.0);
    int n = 0;
    double err = fd_max_err(&c, 1e-6, 1e-3, &n);
    if (err > 1e-5) printf("\n  %s: max relative error %.3g over %d elements\n", what, err, n);
    CU_ASSERT_TRUE(err < 1e-5);
    CU_ASSERT_TRUE(n >= 66 - (o.learn_beta ? 0 : 8));
    case_free(&c);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_fd_leaky(void) { fd_variant(snn_fixture_defaults(), "leaky"); }

static void test_fd_learnable_beta(void) {
    snn_fixture_opts o = snn_fixture_defaults();
    o.learn_beta = true;
    fd_variant(o, "learnable beta");
}

static void test_fd_synaptic(void) {
    snn_fixture_opts o = snn_fixture_defaults();
    o.synaptic = true;
    fd_variant(o, "synaptic");
}

static void test_fd_recurrent(void) {
    snn_fixture_opts o = snn_fixture_defaults();
    o.recurrent = true;
    fd_variant(o, "recurrent (RLeaky)");
}

static void test_fd_hoisted_final_loss(void) {
    snn_fixture_opts o = snn_fixture_defaults();
    o.hoisted = o.final_loss = o.learn_beta = o.synaptic = o.recurrent = true;
    fd_variant(o, "hoisted, post-region losses, learnable beta, synaptic, recurrent");
}

/* Every differentiable op's rule, by finite differences on a one-op module. */
static void test_fd_each_op(void) {
    static const snn_op ops[] = {SNN_OP_NEG, SNN_OP_EXP, SNN_OP_LOG, SNN_OP_TANH, SNN_OP_ABS, SNN_OP_SQRT,
                                 SNN_OP_SIGMOID, SNN_OP_ADD, SNN_OP_SUB, SNN_OP_MUL, SNN_OP_DIV, SNN_OP_POW,
                                 SNN_OP_MIN, SNN_OP_MAX, SNN_OP_SELECT, SNN_OP_LINEAR, SNN_OP_MATMUL_NN,
                                 SNN_OP_MATMUL_TN, SNN_OP_SUM_TO, SNN_OP_BROADCAST, SNN_OP_STEPS,
                                 SNN_OP_STEP};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m = snn_fixture_op(a, ops[k]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        CU_ASSERT_TRUE(snn_autodiff(a, d, m));
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
        case_t c;
        case_init(&c, m, 3, 3, 7, 1.0, 0.05, 0.95);
        double err = fd_max_err(&c, 1e-6, 1e-3, NULL);
        if (err > 1e-6) printf("\n  op %s: max relative error %.3g\n", snn_op_infos[ops[k]].mnemonic, err);
        CU_ASSERT_TRUE(err < 1e-6);
        case_free(&c);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* Ops without a gradient: the params do not reach the loss, so nothing is accumulated. */
static void test_cut_ops(void) {
    static const snn_op ops[] = {SNN_OP_HEAVISIDE, SNN_OP_DETACH, SNN_OP_GT, SNN_OP_GE, SNN_OP_LT,
                                 SNN_OP_LE, SNN_OP_EQ, SNN_OP_NE};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m = snn_fixture_op(a, ops[k]);
        CU_ASSERT_TRUE(snn_autodiff(a, d, m));
        CU_ASSERT_EQUAL(count_op(&m->backward, SNN_OP_GRAD_ACC), 0);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* FIRE alone: the gradient of u is upstream * atan surrogate(u), checked against the formula. */
static void test_fire_rule(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = snn_fixture_op(a, SNN_OP_FIRE);
    CU_ASSERT_TRUE(snn_autodiff(a, d, m));
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    /* the loss is sum_t ce(y + x) with y = H(u), u = x p + 0.5: d/dp = sum_t sum_b dce[b] * sg(u) * x */
    case_t c;
    const int64_t B = 2, T = 3;
    case_init(&c, m, B, T, 3, 1.0, 0.05, 0.95);
    case_loss(&c, true, NULL);
    double want[3] = {0, 0, 0};
    for (int64_t b = 0; b < B; b++) {
        double z[3], mx = -INFINITY, se = 0;
        for (int k = 0; k < 3; k++) {
            double u = c.x[b * 3 + k] * c.p[0][k] + 0.5;
            z[k] = (u > 0 ? 1.0 : 0.0) + c.x[b * 3 + k];
            mx = fmax(mx, z[k]);
        }
        for (int k = 0; k < 3; k++) se += exp(z[k] - mx);
        for (int k = 0; k < 3; k++) {
            double u = c.x[b * 3 + k] * c.p[0][k] + 0.5;
            double dz = (exp(z[k] - mx) / se - (k == c.labels[b])) / (double)B;
            double sg = 1.0 / (1.0 + (M_PI * u) * (M_PI * u));
            want[k] += (double)T * dz * sg * c.x[b * 3 + k];
        }
    }
    for (int k = 0; k < 3; k++) CU_ASSERT_DOUBLE_EQUAL(c.g[0][k], want[k], 1e-6 * (1 + fabs(want[k])));
    case_free(&c);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* The true network (fire + atan surrogate, Leaky as snn.Leaky) against BPTT written by hand. */
static void hand_bptt(const case_t *c, float beta, float thr, double *loss, double **g) {
    enum { I = 7, H = 5, O = 3 };
    const int64_t B = c->B, T = c->T;
    const double *W1 = c->p[0], *b1 = c->p[1], *W2 = c->p[2], *b2 = c->p[3];
    double *mem1 = calloc((size_t)(T * B * H), sizeof(double)), *spk1 = calloc((size_t)(T * B * H), sizeof(double));
    double *mem2 = calloc((size_t)(T * B * O), sizeof(double));
    double m1[64] = {0}, m2[64] = {0};
    *loss = 0;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                double cur = b1[h];
                for (int i = 0; i < I; i++) cur += c->x[b * I + i] * W1[h * I + i];
                double r = m1[b * H + h] - thr > 0 ? 1 : 0;
                m1[b * H + h] = beta * m1[b * H + h] + cur - r * thr;
                mem1[(t * B + b) * H + h] = m1[b * H + h];
                spk1[(t * B + b) * H + h] = m1[b * H + h] - thr > 0 ? 1 : 0;
            }
            for (int o = 0; o < O; o++) {
                double cur = b2[o];
                for (int h = 0; h < H; h++) cur += spk1[(t * B + b) * H + h] * W2[o * H + h];
                double r = m2[b * O + o] - thr > 0 ? 1 : 0;
                m2[b * O + o] = beta * m2[b * O + o] + cur - r * thr;
                mem2[(t * B + b) * O + o] = m2[b * O + o];
            }
            double mx = -INFINITY, se = 0;
            for (int o = 0; o < O; o++) mx = fmax(mx, m2[b * O + o]);
            for (int o = 0; o < O; o++) se += exp(m2[b * O + o] - mx);
            *loss += (mx + log(se) - m2[b * O + c->labels[b]]) / (double)B;
        }
    }
    for (int i = 0; i < 4; i++) memset(g[i], 0, sizeof(double) * (size_t)(i == 0 ? H * I : i == 1 ? H : i == 2 ? O * H : O));
    double d1[64] = {0}, d2[64] = {0};    /* adjoint of mem[t] carried from step t+1 */
    for (int64_t t = T - 1; t >= 0; t--) {
        for (int64_t b = 0; b < B; b++) {
            const double *z = mem2 + (t * B + b) * O;
            double mx = -INFINITY, se = 0, dm2[O], dspk1[H];
            for (int o = 0; o < O; o++) mx = fmax(mx, z[o]);
            for (int o = 0; o < O; o++) se += exp(z[o] - mx);
            for (int o = 0; o < O; o++)
                dm2[o] = (exp(z[o] - mx) / se - (o == c->labels[b])) / (double)B + d2[b * O + o];
            for (int o = 0; o < O; o++) {
                g[3][o] += dm2[o];
                for (int h = 0; h < H; h++) g[2][o * H + h] += dm2[o] * spk1[(t * B + b) * H + h];
                d2[b * O + o] = beta * dm2[o];
            }
            for (int h = 0; h < H; h++) {
                dspk1[h] = 0;
                for (int o = 0; o < O; o++) dspk1[h] += dm2[o] * W2[o * H + h];
                double u = mem1[(t * B + b) * H + h] - thr;
                const double pi = (double)(float)M_PI;   /* the IR's constants are float */
                double dm1 = dspk1[h] / (1 + (pi * u) * (pi * u)) + d1[b * H + h];
                g[1][h] += dm1;
                for (int i = 0; i < I; i++) g[0][h * I + i] += dm1 * c->x[b * I + i];
                d1[b * H + h] = beta * dm1;
            }
        }
    }
    free(mem1); free(spk1); free(mem2);
}

static void test_true_network_vs_hand_bptt(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = build(a, d, &o);
    const int64_t B = 4, T = 6;
    int seed = pick_seed(m, B, T, 2.0, 1e-6);
    CU_ASSERT_TRUE_FATAL(seed > 0);
    case_t c;
    case_init(&c, m, B, T, (uint64_t)seed, 2.0, 0.0, 1.0);
    double loss = case_loss(&c, true, NULL), hloss;
    double *hg[4];
    for (int i = 0; i < 4; i++) hg[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
    hand_bptt(&c, o.beta, o.threshold, &hloss, hg);
    CU_ASSERT_DOUBLE_EQUAL(loss, hloss, 1e-12 * (1 + fabs(hloss)));
    double worst = 0, gmax = 0;
    for (int i = 0; i < 4; i++)
        for (int64_t k = 0; k < snn_shape_numel(m->params[i].shape, 1); k++) {
            worst = fmax(worst, fabs(c.g[i][k] - hg[i][k]));
            gmax = fmax(gmax, fabs(hg[i][k]));
        }
    CU_ASSERT_TRUE(gmax > 1e-3);     /* the surrogate path carries gradient */
    if (worst >= 1e-12 * (1 + gmax)) printf("\n  hand BPTT: max abs difference %.3g (max |g| %.3g)\n", worst, gmax);
    CU_ASSERT_TRUE(worst < 1e-12 * (1 + gmax));
    /* the float32 entry point agrees to float rounding */
    float *fp[4], *fg[4];
    for (int i = 0; i < 4; i++) {
        int64_t n = snn_shape_numel(m->params[i].shape, 1);
        fp[i] = calloc((size_t)n, sizeof(float));
        fg[i] = calloc((size_t)n, sizeof(float));
        for (int64_t k = 0; k < n; k++) fp[i][k] = (float)c.p[i][k];
    }
    float *fx = calloc((size_t)(B * m->n_inputs), sizeof(float)), scores[64];
    for (int64_t k = 0; k < B * m->n_inputs; k++) fx[k] = (float)c.x[k];
    snn_batch fb = {B, T, fx, c.labels, 0, 0};
    snn_result res = {0, scores};
    CU_ASSERT_EQUAL(snn_interp_forward_backward(m, (const float *const *)fp, fg, &fb, &res), 0);
    CU_ASSERT_DOUBLE_EQUAL(res.loss, hloss, 1e-4 * (1 + fabs(hloss)));
    for (int i = 0; i < 4; i++)
        for (int64_t k = 0; k < snn_shape_numel(m->params[i].shape, 1); k++)
            CU_ASSERT_DOUBLE_EQUAL(fg[i][k], hg[i][k], 1e-4 * (1 + gmax));
    /* scores = output spike counts */
    for (int k = 0; k < B * 3; k++) CU_ASSERT_TRUE(scores[k] >= 0 && scores[k] <= T);
    CU_ASSERT_EQUAL(snn_interp_forward(m, (const float *const *)fp, &fb, &res), 0);
    CU_ASSERT_DOUBLE_EQUAL(res.loss, hloss, 1e-4 * (1 + fabs(hloss)));
    for (int i = 0; i < 4; i++) { free(hg[i]); free(fp[i]); free(fg[i]); }
    free(fx);
    case_free(&c);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* A hoisted linear (in the pre region) computes the same loss and gradients, and its weight
 * gradient is one matmul in the backward post region on the time-summed adjoint. */
static void test_hoisted_equals_unhoisted(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m1 = build(a, d, &o);
    o.hoisted = true;
    snn_ir_module *m2 = build(a, d, &o);
    case_t c1, c2;
    case_init(&c1, m1, 4, 7, 5, 2.0, 0.0, 1.0);
    case_init(&c2, m2, 4, 7, 5, 2.0, 0.0, 1.0);
    double l1 = case_loss(&c1, true, NULL), l2 = case_loss(&c2, true, NULL);
    CU_ASSERT_DOUBLE_EQUAL(l1, l2, 1e-12);
    for (int i = 0; i < m1->n_params; i++)
        for (int64_t k = 0; k < snn_shape_numel(m1->params[i].shape, 1); k++)
            CU_ASSERT_DOUBLE_EQUAL(c1.g[i][k], c2.g[i][k], 1e-10);
    int post_tn = 0, step_tn = 0;
    for (int32_t i = 0; i < m2->backward.n_values; i++) {
        const snn_ir_value *v = &m2->backward.values[i];
        if (v->op == SNN_OP_MATMUL_TN && v->region == SNN_REGION_POST) post_tn++;
        if (v->op == SNN_OP_MATMUL_TN && v->region == SNN_REGION_STEP) step_tn++;
    }
    CU_ASSERT_EQUAL(post_tn, 1);   /* dW of h: once, on the summed gradient */
    CU_ASSERT_EQUAL(step_tn, 1);   /* dW of o: its input (spikes) changes every step */
    case_free(&c1);
    case_free(&c2);
    snn_ir_module_free(m1);
    snn_ir_module_free(m2);
    snn_arena_free(a);
}

/* State corner cases: a state initialised from a param-dependent pre value (its adjoint
 * leaves through init_from), read twice per step and also at the end; a state read only at the
 * end (its backward state is zero before the last step). */
static snn_ir_module *states_module(snn_arena *a) {
    snn_ir_module *m = snn_ir_module_new(a, "states");
    m->n_inputs = 3;
    m->n_classes = 3;
    snn_ir_param pp = {.name = "p", .shape = snn_shape_1(3), .init = SNN_PINIT_CONST, .init_value = 0.5f};
    snn_ir_param pq = {.name = "q", .shape = snn_shape_1(3), .init = SNN_PINIT_CONST, .init_value = 0.5f};
    snn_ir_add_param(m, pp);
    snn_ir_add_param(m, pq);
    snn_ir_func *f = &m->forward;
    const snn_shape S = snn_shape_2(SNN_DIM_B, 3);
    int32_t sm = snn_ir_add_state(f, (snn_ir_state){.name = "m", .shape = S, .init_from = -1, .next = -1});
    int32_t sl = snn_ir_add_state(f, (snn_ir_state){.name = "last", .shape = S, .init = 0.25f, .init_from = -1, .next = -1});
#define V(...) snn_ir_append(a, f, (snn_ir_value){__VA_ARGS__})
    int32_t x = V(.op = SNN_OP_INPUT, .name = "x", .shape = S);
    int32_t p = V(.op = SNN_OP_PARAM, .name = "p", .ival = 0, .shape = snn_shape_1(3));
    int32_t q = V(.op = SNN_OP_PARAM, .name = "q", .ival = 1, .shape = snn_shape_1(3));
    f->states[sm].init_from = V(.op = SNN_OP_MUL, .name = "m.init", .nargs = 2, .args = {x, q}, .shape = S);
    int32_t ma = V(.op = SNN_OP_STATE, .name = "m.a", .region = SNN_REGION_STEP, .ival = sm, .shape = S);
    int32_t k = V(.op = SNN_OP_CONST, .name = "k", .region = SNN_REGION_STEP, .fval = 0.9f);
    int32_t u = V(.op = SNN_OP_MUL, .name = "u", .region = SNN_REGION_STEP, .nargs = 2, .args = {ma, k}, .shape = S);
    int32_t mb = V(.op = SNN_OP_STATE, .name = "m.b", .region = SNN_REGION_STEP, .ival = sm, .shape = S);
    int32_t v = V(.op = SNN_OP_MUL, .name = "v", .region = SNN_REGION_STEP, .nargs = 2, .args = {mb, p}, .shape = S);
    int32_t uv = V(.op = SNN_OP_ADD, .name = "uv", .region = SNN_REGION_STEP, .nargs = 2, .args = {u, v}, .shape = S);
    int32_t mn = V(.op = SNN_OP_SUB, .name = "m.new", .region = SNN_REGION_STEP, .nargs = 2, .args = {uv, x}, .shape = S);
    f->states[sm].next = mn;
    int32_t y = V(.op = SNN_OP_TANH, .name = "y", .region = SNN_REGION_STEP, .nargs = 1, .args = {mn}, .shape = S);
    f->states[sl].next = y;
    int32_t ce = V(.op = SNN_OP_CROSS_ENTROPY, .name = "ce", .region = SNN_REGION_STEP, .nargs = 1, .args = {y});
    V(.op = SNN_OP_LOSS_ADD, .name = "l1", .region = SNN_REGION_STEP, .nargs = 1, .args = {ce}, .fval = 0.5f);
    int32_t fl = V(.op = SNN_OP_STATE, .name = "last.final", .region = SNN_REGION_POST, .ival = sl, .shape = S);
    int32_t ce2 = V(.op = SNN_OP_CROSS_ENTROPY, .name = "ce2", .region = SNN_REGION_POST, .nargs = 1, .args = {fl});
    V(.op = SNN_OP_LOSS_ADD, .name = "l2", .region = SNN_REGION_POST, .nargs = 1, .args = {ce2}, .fval = 1.0f);
    int32_t fm = V(.op = SNN_OP_STATE, .name = "m.final", .region = SNN_REGION_POST, .ival = sm, .shape = S);
    int32_t ms = V(.op = SNN_OP_MSE_ONEHOT, .name = "mse", .region = SNN_REGION_POST, .nargs = 1, .args = {fm}, .attr = {1.0f, -1.0f});
    V(.op = SNN_OP_LOSS_ADD, .name = "l3", .region = SNN_REGION_POST, .nargs = 1, .args = {ms}, .fval = 0.1f);
#undef V
    return m;
}

static void test_fd_state_corners(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = states_module(a);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    CU_ASSERT_TRUE(snn_autodiff(a, d, m));
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    if (snn_diag_error_count(d)) snn_diag_print(d, stdout);
    /* d.m starts from the final read's adjoint and flows out to m.init; d.last is zero before
     * the last step */
    const snn_ir_func *g = &m->backward;
    bool m_init = false, last_zero = false;
    for (int32_t s = 0; s < g->n_states; s++) {
        if (strcmp(g->states[s].name, "d.m") == 0) m_init = g->states[s].init_from >= 0;
        if (strcmp(g->states[s].name, "d.last") == 0) last_zero = g->values[g->states[s].next].op == SNN_OP_BROADCAST;
    }
    CU_ASSERT_TRUE(m_init);
    CU_ASSERT_TRUE(last_zero);
    for (int T = 1; T <= 5; T += 2) {
        case_t c;
        case_init(&c, m, 3, T, 11, 1.0, 0.05, 0.95);
        double err = fd_max_err(&c, 1e-6, 1e-3, NULL);
        if (err > 1e-6) printf("\n  T=%d: max relative error %.3g\n", T, err);
        CU_ASSERT_TRUE(err < 1e-6);
        case_free(&c);
    }
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* min/max ties: the whole gradient goes to the first operand. y = op(x * p, x * q) with p == q:
 * p gets everything, q nothing. */
static void test_min_max_ties(void) {
    for (int k = 0; k < 2; k++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m = snn_ir_module_new(a, "ties");
        m->n_inputs = 3;
        m->n_classes = 3;
        snn_ir_add_param(m, (snn_ir_param){.name = "p", .shape = snn_shape_1(3)});
        snn_ir_add_param(m, (snn_ir_param){.name = "q", .shape = snn_shape_1(3)});
        snn_ir_func *f = &m->forward;
        const snn_shape S = snn_shape_2(SNN_DIM_B, 3);
#define V(...) snn_ir_append(a, f, (snn_ir_value){__VA_ARGS__})
        int32_t x = V(.op = SNN_OP_INPUT, .name = "x", .shape = S);
        int32_t p = V(.op = SNN_OP_PARAM, .name = "p", .ival = 0, .shape = snn_shape_1(3));
        int32_t q = V(.op = SNN_OP_PARAM, .name = "q", .ival = 1, .shape = snn_shape_1(3));
        int32_t xp = V(.op = SNN_OP_MUL, .name = "xp", .region = SNN_REGION_STEP, .nargs = 2, .args = {x, p}, .shape = S);
        int32_t xq = V(.op = SNN_OP_MUL, .name = "xq", .region = SNN_REGION_STEP, .nargs = 2, .args = {x, q}, .shape = S);
        int32_t y = V(.op = k ? SNN_OP_MAX : SNN_OP_MIN, .name = "y", .region = SNN_REGION_STEP, .nargs = 2, .args = {xp, xq}, .shape = S);
        int32_t ce = V(.op = SNN_OP_CROSS_ENTROPY, .name = "ce", .region = SNN_REGION_STEP, .nargs = 1, .args = {y});
        V(.op = SNN_OP_LOSS_ADD, .name = "l", .region = SNN_REGION_STEP, .nargs = 1, .args = {ce}, .fval = 1.0f);
#undef V
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        CU_ASSERT_TRUE(snn_autodiff(a, d, m));
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        case_t c;
        case_init(&c, m, 2, 2, 5, 1.0, 0.1, 0.9);
        for (int i = 0; i < 3; i++) c.p[1][i] = c.p[0][i];
        case_loss(&c, true, NULL);
        double gp = 0, gq = 0;
        for (int i = 0; i < 3; i++) { gp += fabs(c.g[0][i]); gq += fabs(c.g[1][i]); }
        CU_ASSERT_TRUE(gp > 1e-3);
        CU_ASSERT_EQUAL(gq, 0.0);
        case_free(&c);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* Ops autodiff cannot differentiate on a loss path, and a second run, are reported. */
static void test_errors(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = build(a, d, &o);
    CU_ASSERT_FALSE(snn_autodiff(a, d, m));      /* already has a backward function */
    CU_ASSERT_TRUE(snn_diag_error_count(d) > 0);
    snn_ir_module_free(m);
    snn_diag *d2 = snn_diag_new(a);
    m = snn_fixture_op(a, SNN_OP_NEG);
    /* turn y = neg(u) into y = ce_grad(u, c) : not differentiable */
    for (int32_t i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].op == SNN_OP_NEG) {
            snn_ir_value *v = &m->forward.values[i];
            v->op = SNN_OP_CE_GRAD;
            v->nargs = 2;
            v->args[1] = 0;
            for (int32_t j = 0; j < i; j++)
                if (m->forward.values[j].op == SNN_OP_CONST) v->args[1] = j;
        }
    CU_ASSERT_FALSE(snn_autodiff(a, d2, m));
    CU_ASSERT_TRUE(snn_diag_error_count(d2) > 0);
    snn_ir_module_free(m);
    /* a malformed module is refused, not crashed on */
    snn_diag *d3 = snn_diag_new(a);
    m = snn_fixture_op(a, SNN_OP_NEG);
    m->forward.states[0].next = -1;
    CU_ASSERT_FALSE(snn_autodiff(a, d3, m));
    CU_ASSERT_EQUAL(snn_diag_error_count(d3), 1);
    snn_ir_module_free(m);
    snn_diag *d4 = snn_diag_new(a);
    m = snn_fixture_op(a, SNN_OP_NEG);
    m->forward.values[m->forward.n_values - 1].args[0] = 999;
    CU_ASSERT_FALSE(snn_autodiff(a, d4, m));
    CU_ASSERT_EQUAL(snn_diag_error_count(d4), 1);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---- programs through the real front end ---- */

static const char *program(snn_arena *a, const char *hidden, const char *loss, const char *extra, const char *enc) {
    return snn_sprintf(a,
        "%s\n"
        "model m {\n"
        "    input  x[7]\n"
        "    encode x = %s\n"
        "    h = %s\n"
        "    o = leaky(linear(h, 3), beta = 0.95)\n"
        "    output o\n"
        "}\n"
        "train m {\n"
        "    data idx(\"/nonexistent\"); steps 6; batch 4; epochs 1\n"
        "    loss %s\n"
        "    optimizer adam(lr = 5e-4)\n"
        "    metric rate_accuracy(o)\n"
        "}\n", extra, enc, hidden, loss);
}

/* Loads, checks and lowers src; runs the forward passes if opt; with smooth, every FIRE becomes
 * SIGMOID first (same operand, same shape). Then autodiff. NULL (with a printed reason) on
 * failure. */
static snn_ir_module *lower_src(snn_arena *a, snn_diag *d, const char *src, bool opt, bool smooth) {
    snn_program *prog = snn_load_program(a, d, snn_intern_cstr(a, "t.snn"), src, strlen(src), NULL);
    snn_ir_module *m = prog && snn_sema(a, d, prog) ? snn_lower(a, d, prog) : NULL;
    if (m && opt) {
        snn_pass_options po = snn_pass_options_default();
        po.verify = true;
        if (!snn_run_passes(a, d, m, &po)) { snn_ir_module_free(m); m = NULL; }
    }
    if (m && smooth)
        for (int32_t i = 0; i < m->forward.n_values; i++)
            if (m->forward.values[i].op == SNN_OP_FIRE) m->forward.values[i].op = SNN_OP_SIGMOID;
    if (m && !(snn_ir_verify(m, d) && snn_autodiff(a, d, m) && snn_ir_verify(m, d))) { snn_ir_module_free(m); m = NULL; }
    if (!m) snn_diag_print(d, stdout);
    return m;
}

static void test_lowered_programs(void) {
    static const char *lif_learn =
        "neuron lif_learn(learn[n] beta = 0.9, threshold = 1.0, surrogate = atan()) {\n"
        "    state mem = 0\n"
        "    step(input) {\n"
        "        let r = detach(heaviside(mem - threshold))\n"
        "        mem = clamp(beta, 0, 1) * mem + input - r * threshold\n"
        "        let spk = fire(mem - threshold)\n"
        "    }\n"
        "    out spk, mem\n"
        "}\n";
    static const struct { const char *hidden, *loss, *extra, *enc; } cases[] = {
        {"leaky(linear(x, 5), beta = 0.95)", "ce_membrane(o)", "", "direct"},
        {"leaky(linear(x, 5), beta = 0.9)", "ce_rate(o)", "", "direct"},
        {"synaptic(linear(x, 5), alpha = 0.8, beta = 0.9)", "ce_count(o)", "", "direct"},
        {"rleaky(linear(x, 5), beta = 0.9)", "ce_membrane(o)", "", "direct"},
        {"leaky(linear(x, 5), beta = 0.9, reset = zero)", "ce_max_membrane(o)", "", "direct"},
        {"synaptic(linear(x, 5), alpha = 0.7, beta = 0.8, reset = zero)", "mse_membrane(o)", "", "direct"},
        {"lif_learn(linear(x, 5))", "ce_membrane(o)", NULL, "direct"},
        {"leaky(linear(x, 5), beta = 0.9)", "ce_rate(o) + l1_rate_sparsity(h, lambda = 1e-2)", "", "rate()"},
        {"rleaky(linear(x, 5), beta = 0.9, reset = zero)", "ce_count(o) + 0.5 * ce_membrane(o)", "", "rate(gain = 2.0)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int opt = 0; opt < 2; opt++) {
            snn_arena *a = snn_arena_new();
            snn_diag *d = snn_diag_new(a);
            const char *src = program(a, cases[k].hidden, cases[k].loss, cases[k].extra ? cases[k].extra : lif_learn,
                                      cases[k].enc);
            snn_ir_module *m = lower_src(a, d, src, opt, true);
            if (!m) printf("\n  case %zu (%s, %s) did not lower\n", k, cases[k].hidden, cases[k].loss);
            CU_ASSERT_PTR_NOT_NULL(m);
            if (m) {
                int seed = pick_seed(m, 4, 6, 2.0, 2e-4);
                CU_ASSERT_TRUE(seed > 0);
                case_t c;
                case_init(&c, m, 4, 6, (uint64_t)(seed > 0 ? seed : 1), 2.0, 0.0, 1.0);
                int n = 0;
                double err = fd_max_err(&c, 1e-6, 1e-3, &n);
                if (err > 1e-5) printf("\n  case %zu (%s, %s, passes %d): max relative error %.3g\n", k, cases[k].hidden,
                                       cases[k].loss, opt, err);
                CU_ASSERT_TRUE(err < 1e-5);
                CU_ASSERT_TRUE(n >= 58);
                if (getenv("SNN_VERBOSE")) printf("\n  case %zu passes %d: seed %d, %d elements, max err %.3g", k, opt, seed, n, err);
                case_free(&c);
                snn_ir_module_free(m);
            }
            snn_arena_free(a);
        }
}

/* Tutorial 5 in small size, lowered from .snn (with and without the passes), computes the
 * same loss and gradients as the hand-built fixture, fire and all. */
static void test_lowered_tutorial5_equals_fixture(void) {
    for (int opt = 0; opt < 2; opt++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m = lower_src(a, d, program(a, "leaky(linear(x, 5), beta = 0.95)", "ce_membrane(o)", "", "direct"),
                                     opt, false);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        snn_fixture_opts o = snn_fixture_defaults();
        snn_ir_module *f = build(a, d, &o);
        CU_ASSERT_EQUAL_FATAL(m->n_params, f->n_params);
        for (int i = 0; i < m->n_params; i++) {
            CU_ASSERT_STRING_EQUAL(m->params[i].name, f->params[i].name);
            CU_ASSERT_TRUE(snn_shape_eq(m->params[i].shape, f->params[i].shape));
        }
        case_t cm, cf;
        case_init(&cm, m, 4, 9, 3, 2.0, 0.0, 1.0);
        case_init(&cf, f, 4, 9, 3, 2.0, 0.0, 1.0);
        double lm = case_loss(&cm, true, NULL), lf = case_loss(&cf, true, NULL);
        CU_ASSERT_DOUBLE_EQUAL(lm, lf, 1e-12 * (1 + fabs(lf)));
        double worst = 0;
        for (int i = 0; i < m->n_params; i++)
            for (int64_t k = 0; k < snn_shape_numel(m->params[i].shape, 1); k++)
                worst = fmax(worst, fabs(cm.g[i][k] - cf.g[i][k]));
        if (worst > 1e-10) printf("\n  passes %d: gradients differ by %.3g\n", opt, worst);
        CU_ASSERT_TRUE(worst < 1e-10);
        case_free(&cm);
        case_free(&cf);
        snn_ir_module_free(m);
        snn_ir_module_free(f);
        snn_arena_free(a);
    }
}

void test_autodiff_register(void) {
    CU_pSuite s = CU_add_suite("autodiff", NULL, NULL);
    CU_add_test(s, "every Tutorial 5 variant differentiates and verifies", test_every_variant_verifies);
    CU_add_test(s, "the metric's counter is pruned; the tape is minimal", test_pruning);
    CU_add_test(s, "finite differences: leaky (smooth fire)", test_fd_leaky);
    CU_add_test(s, "finite differences: learnable per-neuron beta", test_fd_learnable_beta);
    CU_add_test(s, "finite differences: synaptic", test_fd_synaptic);
    CU_add_test(s, "finite differences: recurrent (RLeaky, spikes through a state)", test_fd_recurrent);
    CU_add_test(s, "finite differences: hoisted linear, post-region losses", test_fd_hoisted_final_loss);
    CU_add_test(s, "finite differences: every op rule", test_fd_each_op);
    CU_add_test(s, "detach, heaviside, comparisons cut the gradient", test_cut_ops);
    CU_add_test(s, "fire: upstream times the inlined surrogate", test_fire_rule);
    CU_add_test(s, "finite differences: init_from, two reads, end-only state", test_fd_state_corners);
    CU_add_test(s, "true network against hand-written BPTT", test_true_network_vs_hand_bptt);
    CU_add_test(s, "hoisted linear: same gradients, one matmul", test_hoisted_equals_unhoisted);
    CU_add_test(s, "min/max ties route to the first operand", test_min_max_ties);
    CU_add_test(s, "errors are reported", test_errors);
    CU_add_test(s, "lowered programs: finite differences (smooth fire), with and without passes", test_lowered_programs);
    CU_add_test(s, "lowered Tutorial 5 equals the hand-built fixture", test_lowered_tutorial5_equals_fixture);
}
