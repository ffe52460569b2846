/* test_codegen.c: codegen (compiler/codegen/) on small hand-built IR modules, checked by
 * running the generated code in process (snn_jit_compile) against values computed here in
 * double precision.
 *
 * - ops: every elementwise op (and broadcast, sum_to, linear, matmuls) on a [B, N] input
 *   against a [N] or [] operand, read back through the scores state;
 * - a recurrent module with a hand-written backward function (states in both directions, a
 *   taped forward state, FWD of pre/step/post values, init_from, sum over time, losses in the
 *   step and post regions), against a double-precision reference whose gradients are checked
 *   by central differences;
 * - rate encoding against snnrt_uniform; the descriptor fields; work_bytes; the LLVM text
 *   (names survive); object, assembly and executable emission, and the clear error when the
 *   runtime library is missing.
 * Every module goes through LLVMVerifyModule (options.verify).
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "snnrt.h"

/* ---- building modules ---- */

typedef struct {
    snn_arena *a;
    snn_ir_module *m;
    snn_ir_func *f;
    snn_region r;
} mb;

static int32_t put(mb *b, snn_ir_value v) {
    v.region = b->r;
    v.loc = (snn_loc){"test.snn", 1, 1};
    return snn_ir_append(b->a, b->f, v);
}
static snn_shape sh(mb *b, int32_t id) { return b->f->values[id].shape; }
static int32_t op1(mb *b, snn_op op, const char *name, int32_t x) {
    return put(b, (snn_ir_value){.op = op, .name = name, .nargs = 1, .args = {x}, .shape = sh(b, x)});
}
static int32_t op2(mb *b, snn_op op, const char *name, int32_t x, int32_t y) {
    snn_ir_value v = {.op = op, .name = name, .nargs = 2, .args = {x, y}};
    snn_shape_broadcast(sh(b, x), sh(b, y), &v.shape);
    return put(b, v);
}
static int32_t op3(mb *b, snn_op op, const char *name, int32_t x, int32_t y, int32_t z) {
    snn_ir_value v = {.op = op, .name = name, .nargs = 3, .args = {x, y, z}};
    snn_shape s;
    snn_shape_broadcast(sh(b, x), sh(b, y), &s);
    snn_shape_broadcast(s, sh(b, z), &v.shape);
    return put(b, v);
}
static int32_t opn(mb *b, snn_op op, const char *name, snn_shape s, int nargs, int32_t x,
                   int32_t y, int32_t z) {
    return put(b, (snn_ir_value){.op = op, .name = name, .nargs = nargs, .args = {x, y, z}, .shape = s});
}
static int32_t cst(mb *b, float v) {
    return put(b, (snn_ir_value){.op = SNN_OP_CONST, .name = "c", .fval = v, .shape = snn_shape_scalar()});
}
static int32_t leaf(mb *b, snn_op op, const char *name, int32_t ival, snn_shape s) {
    return put(b, (snn_ir_value){.op = op, .name = name, .ival = ival, .shape = s});
}
static int32_t state(mb *b, const char *name, snn_shape s, float init, int32_t init_from) {
    snn_ir_state st = {.name = snn_intern_cstr(b->a, name), .shape = s, .init = init,
                       .init_from = init_from, .next = -1};
    return snn_ir_add_state(b->f, st);
}
static int32_t param(snn_ir_module *m, snn_arena *a, const char *name, snn_shape s) {
    snn_ir_param p = {.name = snn_intern_cstr(a, name), .shape = s,
                      .init = SNN_PINIT_UNIFORM_FAN_IN, .fan_in = s.rank > 1 ? s.dim[1] : 1};
    return snn_ir_add_param(m, p);
}

static snn_codegen_options test_opts(void) {
    snn_codegen_options o;
    snn_codegen_options_default(&o);
    o.verify = true;
    return o;
}

static const snn_jit_symbol runtime_syms[] = {
    {"snnrt_sgemm", (void *)snnrt_sgemm},
    {"snnrt_sgemm_bias", (void *)snnrt_sgemm_bias},
    {"snnrt_transpose", (void *)snnrt_transpose},
    {"snnrt_uniform", (void *)snnrt_uniform},
    {"snnrt_uniform_fill", (void *)snnrt_uniform_fill},
};

static snn_jit *jit(snn_arena *a, snn_ir_module *m, int opt) {
    snn_diag *d = snn_diag_new(a);
    snn_codegen_options o = test_opts();
    o.opt_level = opt;
    snn_jit *j = snn_jit_compile(a, d, m, &o, runtime_syms,
                                  (int)(sizeof runtime_syms / sizeof runtime_syms[0]));
    if (!j) snn_diag_print(d, stderr);
    return j;
}

static double rnd(uint64_t *s) {   /* uniform [0, 1) */
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* ---- every elementwise op ---- */

#define NB 3
#define NN 5

/* scores[b, i] = OP(x[b, i], p[i]) (binary), OP(x) (unary), select(x > 0.5, x, p). */
static snn_ir_module *op_module(snn_arena *a, snn_op op, bool scalar_rhs) {
    snn_ir_module *m = snn_ir_module_new(a, "ops");
    m->n_inputs = NN;
    m->n_classes = NN;
    param(m, a, "p", snn_shape_1(NN));
    mb b = {a, m, &m->forward, SNN_REGION_STEP};
    int32_t s = state(&b, "out", snn_shape_2(SNN_DIM_B, NN), 0, -1);
    m->scores_state = s;
    int32_t x = leaf(&b, SNN_OP_INPUT, "x", 0, snn_shape_2(SNN_DIM_B, NN));
    int32_t p = scalar_rhs ? cst(&b, 0.75f) : leaf(&b, SNN_OP_PARAM, "p", 0, snn_shape_1(NN));
    int32_t y;
    int arity = snn_op_infos[op].arity;
    if (op == SNN_OP_SELECT) y = op3(&b, op, "y", op2(&b, SNN_OP_GT, "c", x, cst(&b, 0.5f)), x, p);
    else if (arity == 2) y = op2(&b, op, "y", x, p);
    else if (op == SNN_OP_BROADCAST) y = opn(&b, op, "y", snn_shape_2(SNN_DIM_B, NN), 1, p, 0, 0);
    else y = op1(&b, op, "y", x);
    /* a second fused use keeps y in a register and stores z = y * 1 */
    int32_t z = op2(&b, SNN_OP_MUL, "z", y, cst(&b, 1.0f));
    m->forward.states[s].next = z;
    return m;
}

static double ref_op(snn_op op, double x, double p) {
    switch (op) {
    case SNN_OP_NEG: return -x;
    case SNN_OP_EXP: return exp(x);
    case SNN_OP_LOG: return log(x);
    case SNN_OP_TANH: return tanh(x);
    case SNN_OP_ABS: return fabs(x);
    case SNN_OP_SQRT: return sqrt(x);
    case SNN_OP_SIGMOID: return 1 / (1 + exp(-x));
    case SNN_OP_HEAVISIDE: case SNN_OP_FIRE: return x > 0;
    case SNN_OP_DETACH: return x;
    case SNN_OP_ADD: return x + p;
    case SNN_OP_SUB: return x - p;
    case SNN_OP_MUL: return x * p;
    case SNN_OP_DIV: return x / p;
    case SNN_OP_POW: return pow(x, p);
    case SNN_OP_MIN: return x <= p ? x : p;
    case SNN_OP_MAX: return x >= p ? x : p;
    case SNN_OP_GT: return x > p;
    case SNN_OP_GE: return x >= p;
    case SNN_OP_LT: return x < p;
    case SNN_OP_LE: return x <= p;
    case SNN_OP_EQ: return x == p;
    case SNN_OP_NE: return x != p;
    case SNN_OP_SELECT: return x > 0.5 ? x : p;
    case SNN_OP_BROADCAST: return p;
    default: return NAN;
    }
}

static void test_elementwise_ops(void) {
    const snn_op ops[] = {SNN_OP_NEG, SNN_OP_EXP, SNN_OP_LOG, SNN_OP_TANH, SNN_OP_ABS,
                          SNN_OP_SQRT, SNN_OP_SIGMOID, SNN_OP_HEAVISIDE, SNN_OP_FIRE,
                          SNN_OP_DETACH, SNN_OP_ADD, SNN_OP_SUB, SNN_OP_MUL, SNN_OP_DIV,
                          SNN_OP_POW, SNN_OP_MIN, SNN_OP_MAX, SNN_OP_GT, SNN_OP_GE, SNN_OP_LT,
                          SNN_OP_LE, SNN_OP_EQ, SNN_OP_NE, SNN_OP_SELECT, SNN_OP_BROADCAST};
    float x[NB * NN], p[NN], scores[NB * NN];
    uint64_t seed = 7;
    for (int i = 0; i < NB * NN; i++) x[i] = (float)(0.05 + 1.5 * rnd(&seed));
    for (int i = 0; i < NN; i++) p[i] = (float)(0.1 + rnd(&seed));
    x[3] = p[3];   /* exercise equality */
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            if (scalar && snn_op_infos[ops[k]].arity != 2 && ops[k] != SNN_OP_SELECT) continue;
            snn_arena *a = snn_arena_new();
            snn_ir_module *m = op_module(a, ops[k], scalar);
            snn_jit *j = jit(a, m, k % 2 ? 3 : 0);
            CU_ASSERT_PTR_NOT_NULL_FATAL(j);
            const snn_model_desc *md = snn_jit_model(j);
            void *work = aligned_alloc(64, (size_t)md->work_bytes(NB, 1) + 64);
            const float *params[1] = {p};
            snn_batch bt = {NB, 1, x, (const int32_t[NB]){0}, 1, 0};
            snn_result res = {0, scores};
            CU_ASSERT_EQUAL(md->forward(params, &bt, work, &res), 0);
            int bad = 0;
            for (int i = 0; i < NB * NN; i++) {
                double pv = scalar ? 0.75f : p[i % NN];
                double want = ref_op(ops[k], x[i], ops[k] == SNN_OP_EQ ? (float)pv : pv);
                if (ops[k] == SNN_OP_BROADCAST) want = p[i % NN];
                if (fabs(scores[i] - want) > 1e-5 * (1 + fabs(want))) bad++;
            }
            if (bad) fprintf(stderr, "\nop %s (scalar %d): %d wrong\n",
                             snn_op_infos[ops[k]].mnemonic, scalar, bad);
            CU_ASSERT_EQUAL(bad, 0);
            free(work);
            snn_jit_free(j);
            snn_ir_module_free(m);
            snn_arena_free(a);
        }
    }
}

/* exp is generated inline (a polynomial, so it vectorizes): within 2 ulp of libm's expf over
 * the whole float range, exact at the specials. */
static int64_t ulp_dist(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return llabs((int64_t)ia - ib);
}

static void test_exp_accuracy(void) {
    enum { N = 64, B = 512 };
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = op_module(a, SNN_OP_EXP, false);
    m->n_inputs = m->n_classes = N;   /* op_module's [B, NN] with NN -> N below */
    for (int i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].shape.rank == 2) m->forward.values[i].shape.dim[1] = N;
    m->forward.states[0].shape.dim[1] = N;
    m->params[0].shape.dim[0] = N;
    for (int i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].op == SNN_OP_PARAM) m->forward.values[i].shape.dim[0] = N;
    snn_jit *j = jit(a, m, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const snn_model_desc *md = snn_jit_model(j);
    static float x[B * N], out[B * N], p[N];
    uint64_t seed = 99;
    for (int i = 0; i < B * N; i++) x[i] = (float)(-110.0 + 200.0 * rnd(&seed));
    for (int i = 0; i < 2000; i++) x[i] = (float)(-1.0 + 2.0 * rnd(&seed));      /* near 0 */
    for (int i = 2000; i < 3000; i++) x[i] = (float)(-88.0 - 16.0 * rnd(&seed)); /* denormals */
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.7f, 88.72f, 88.73f, 89.0f, -87.3f,
                             -103.0f, -103.3f, -104.0f, INFINITY, -INFINITY, NAN, 1e-30f};
    memcpy(x + 3000, special, sizeof special);
    void *work = aligned_alloc(64, (size_t)md->work_bytes(B, 1));
    const float *params[1] = {p};
    int32_t labels[B] = {0};
    snn_batch bt = {B, 1, x, labels, 1, 0};
    snn_result res = {0, out};
    md->forward(params, &bt, work, &res);
    int64_t worst = 0;
    int worst_i = 0;
    for (int i = 0; i < B * N; i++) {
        float want = expf(x[i]);
        int64_t d = isnan(want) ? (isnan(out[i]) ? 0 : 1000) : ulp_dist(out[i], want);
        if (d > worst) { worst = d; worst_i = i; }
    }
    if (worst > 2)
        fprintf(stderr, "\nexp: %lld ulp at x = %.9g: %.9g, expf %.9g\n", (long long)worst,
                (double)x[worst_i], (double)out[worst_i], (double)expf(x[worst_i]));
    CU_ASSERT(worst <= 2);
    free(work);
    snn_jit_free(j);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---- linear algebra and reductions ---- */

/* out[b, :] = linear(x, W, bias)[b, :] + broadcast(sum_to(x^T-ish)) ... checked piecewise:
 * scores = [B, 4] = x W^T + bias; loss = sum over matmul_nn(scores, W2)[B,3] via sum_to []. */
static void test_linalg(void) {
    enum { B = 4, I = 3, O = 4, K = 2 };
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = snn_ir_module_new(a, "linalg");
    m->n_inputs = I;
    m->n_classes = O;
    param(m, a, "W", snn_shape_2(O, I));
    param(m, a, "bias", snn_shape_1(O));
    param(m, a, "V", snn_shape_2(O, K));
    mb b = {a, m, &m->forward, SNN_REGION_PRE};
    int32_t x = leaf(&b, SNN_OP_INPUT, "x", 0, snn_shape_2(SNN_DIM_B, I));
    int32_t W = leaf(&b, SNN_OP_PARAM, "W", 0, snn_shape_2(O, I));
    int32_t bias = leaf(&b, SNN_OP_PARAM, "bias", 1, snn_shape_1(O));
    int32_t V = leaf(&b, SNN_OP_PARAM, "V", 2, snn_shape_2(O, K));
    int32_t y = opn(&b, SNN_OP_LINEAR, "y", snn_shape_2(SNN_DIM_B, O), 3, x, W, bias);
    int32_t yv = opn(&b, SNN_OP_MATMUL_NN, "yv", snn_shape_2(SNN_DIM_B, K), 2, y, V, 0);
    int32_t g = opn(&b, SNN_OP_MATMUL_TN, "g", snn_shape_2(O, K), 2, y, yv, 0); /* y^T yv */
    int32_t gs = opn(&b, SNN_OP_SUM_TO, "gs", snn_shape_1(K), 1, g, 0, 0);
    int32_t gsum = opn(&b, SNN_OP_SUM_TO, "gsum", snn_shape_scalar(), 1, gs, 0, 0);
    put(&b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .nargs = 1, .args = {gsum}, .fval = 0.5f});
    b.r = SNN_REGION_STEP;
    int32_t s = state(&b, "out", snn_shape_2(SNN_DIM_B, O), 0, -1);
    m->scores_state = s;
    int32_t ys = op1(&b, SNN_OP_DETACH, "ys", y);
    m->forward.states[s].next = ys;

    float xv[B * I], Wv[O * I], bv[O], Vv[O * K], scores[B * O];
    uint64_t seed = 3;
    for (int i = 0; i < B * I; i++) xv[i] = (float)(rnd(&seed) - 0.5);
    for (int i = 0; i < O * I; i++) Wv[i] = (float)(rnd(&seed) - 0.5);
    for (int i = 0; i < O; i++) bv[i] = (float)(rnd(&seed) - 0.5);
    for (int i = 0; i < O * K; i++) Vv[i] = (float)(rnd(&seed) - 0.5);
    double yr[B][O], yvr[B][K], total = 0;
    for (int r = 0; r < B; r++)
        for (int o = 0; o < O; o++) {
            yr[r][o] = bv[o];
            for (int i = 0; i < I; i++) yr[r][o] += (double)xv[r * I + i] * Wv[o * I + i];
        }
    for (int r = 0; r < B; r++)
        for (int k = 0; k < K; k++) {
            yvr[r][k] = 0;
            for (int o = 0; o < O; o++) yvr[r][k] += yr[r][o] * Vv[o * K + k];
        }
    for (int o = 0; o < O; o++)
        for (int k = 0; k < K; k++)
            for (int r = 0; r < B; r++) total += yr[r][o] * yvr[r][k];

    for (int opt = 0; opt <= 3; opt += 3) {
        snn_jit *j = jit(a, m, opt);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        const snn_model_desc *md = snn_jit_model(j);
        void *work = aligned_alloc(64, (size_t)md->work_bytes(B, 2));
        const float *params[3] = {Wv, bv, Vv};
        snn_batch bt = {B, 2, xv, (const int32_t[B]){0}, 1, 0};
        snn_result res = {0, scores};
        CU_ASSERT_EQUAL(md->forward(params, &bt, work, &res), 0);
        CU_ASSERT_DOUBLE_EQUAL(res.loss, 0.5 * total, 1e-5 * (1 + fabs(total)));
        for (int r = 0; r < B; r++)
            for (int o = 0; o < O; o++) CU_ASSERT_DOUBLE_EQUAL(scores[r * O + o], yr[r][o], 1e-5);
        free(work);
        snn_jit_free(j);
    }
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---- a recurrent module with a hand-written backward ----
 *
 * forward (per batch row, vectors of width H):
 *   pre   cur = x W^T + bias; th = tanh(cur)
 *   step  m (state mem, 0 at start):  mem = 0.9 m + 0.1 m^2 + th
 *         loss += 1.0 * cross_entropy(mem);  count += sigmoid(mem)   (scores = count)
 *   post  fm = final mem; loss += 0.5 * mse_onehot(fm; 1, 0)
 * backward:
 *   pre   dfin = mse_onehot_grad(fwd fm, 0.5)      (dm's init_from: adjoint of the final mem)
 *   step  g = state dm;  dmem = ce_grad(fwd mem, 1) + g
 *         dm.next = dmem * (0.9 + 0.2 * fwd m)      (fwd of a forward STATE: the tape)
 *         dth_acc.next = dth_acc + dmem
 *   post  dcur = dth_acc_final * (1 - fwd th^2);  grad W += dcur^T x;  grad bias += sum_to(dcur)
 */
#define RB 3
#define RI 4
#define RH 3
#define RT 5

static snn_ir_module *rnn_module(snn_arena *a) {
    snn_ir_module *m = snn_ir_module_new(a, "rnn");
    m->source_file = "rnn.snn";
    m->n_inputs = RI;
    m->n_classes = RH;
    m->loss_name = "ce_membrane";
    m->metric_name = "rate_accuracy";
    m->train.steps = RT; m->train.batch = 128; m->train.epochs = 2; m->train.seed = 42;
    m->train.optimizer = SNN_OPT_ADAM; m->train.lr = 5e-4f; m->train.beta1 = 0.9f;
    m->train.beta2 = 0.999f; m->train.eps = 1e-8f; m->train.data_dir = "/data";
    param(m, a, "h.weight", snn_shape_2(RH, RI));
    param(m, a, "h.bias", snn_shape_1(RH));
    m->params[1].fan_in = RI;
    snn_shape BH = snn_shape_2(SNN_DIM_B, RH);

    mb f = {a, m, &m->forward, SNN_REGION_PRE};
    int32_t x = leaf(&f, SNN_OP_INPUT, "x", 0, snn_shape_2(SNN_DIM_B, RI));
    int32_t W = leaf(&f, SNN_OP_PARAM, "h.weight", 0, snn_shape_2(RH, RI));
    int32_t bias = leaf(&f, SNN_OP_PARAM, "h.bias", 1, snn_shape_1(RH));
    int32_t cur = opn(&f, SNN_OP_LINEAR, "h.cur", BH, 3, x, W, bias);
    int32_t th = op1(&f, SNN_OP_TANH, "h.th", cur);
    f.r = SNN_REGION_STEP;
    int32_t s_mem = state(&f, "h.mem", BH, 0, -1);
    int32_t s_cnt = state(&f, "h.count", BH, 0, -1);
    m->scores_state = s_cnt;
    int32_t mprev = leaf(&f, SNN_OP_STATE, "h.mem.prev", s_mem, BH);
    int32_t dec = op2(&f, SNN_OP_MUL, "h.decay", cst(&f, 0.9f), mprev);
    int32_t sq = op2(&f, SNN_OP_MUL, "h.sq", mprev, mprev);
    int32_t sq1 = op2(&f, SNN_OP_MUL, "h.sq1", cst(&f, 0.1f), sq);
    int32_t mem = op2(&f, SNN_OP_ADD, "h.mem", op2(&f, SNN_OP_ADD, "h.lin", dec, sq1), th);
    int32_t ce = opn(&f, SNN_OP_CROSS_ENTROPY, "ce", snn_shape_scalar(), 1, mem, 0, 0);
    put(&f, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .nargs = 1, .args = {ce}, .fval = 1.0f});
    int32_t cprev = leaf(&f, SNN_OP_STATE, "h.count.prev", s_cnt, BH);
    int32_t cnt = op2(&f, SNN_OP_ADD, "h.count", cprev, op1(&f, SNN_OP_SIGMOID, "h.sig", mem));
    m->forward.states[s_mem].next = mem;
    m->forward.states[s_cnt].next = cnt;
    f.r = SNN_REGION_POST;
    int32_t fm = leaf(&f, SNN_OP_STATE, "h.mem.final", s_mem, BH);
    snn_ir_value mse = {.op = SNN_OP_MSE_ONEHOT, .name = "mse", .nargs = 1, .args = {fm},
                        .shape = snn_shape_scalar(), .attr = {1.0f, 0.0f}};
    int32_t msev = put(&f, mse);
    put(&f, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .nargs = 1, .args = {msev}, .fval = 0.5f});

    mb g = {a, m, &m->backward, SNN_REGION_PRE};
    int32_t ffm = leaf(&g, SNN_OP_FWD, "fm", fm, BH);
    snn_ir_value mg = {.op = SNN_OP_MSE_ONEHOT_GRAD, .name = "d.final", .nargs = 2,
                       .args = {ffm, cst(&g, 0.5f)}, .shape = BH, .attr = {1.0f, 0.0f}};
    int32_t dfin = put(&g, mg);
    g.r = SNN_REGION_STEP;
    int32_t s_dm = state(&g, "d.mem", BH, 0, dfin);
    int32_t s_acc = state(&g, "d.th", BH, 0, -1);
    int32_t gm = leaf(&g, SNN_OP_STATE, "d.mem.next", s_dm, BH);
    int32_t fmem = leaf(&g, SNN_OP_FWD, "mem", mem, BH);
    int32_t cg = opn(&g, SNN_OP_CE_GRAD, "d.ce", BH, 2, fmem, cst(&g, 1.0f), 0);
    int32_t dmem = op2(&g, SNN_OP_ADD, "d.mem", cg, gm);
    int32_t fmp = leaf(&g, SNN_OP_FWD, "mem.prev", mprev, BH);
    int32_t fac = op2(&g, SNN_OP_ADD, "d.fac", cst(&g, 0.9f), op2(&g, SNN_OP_MUL, "d.2m", cst(&g, 0.2f), fmp));
    int32_t dprev = op2(&g, SNN_OP_MUL, "d.mem.prev", dmem, fac);
    int32_t acc = leaf(&g, SNN_OP_STATE, "d.th.acc", s_acc, BH);
    int32_t acc2 = op2(&g, SNN_OP_ADD, "d.th.sum", acc, dmem);
    m->backward.states[s_dm].next = dprev;
    m->backward.states[s_acc].next = acc2;
    g.r = SNN_REGION_POST;
    int32_t dth = leaf(&g, SNN_OP_STATE, "d.th.final", s_acc, BH);
    int32_t fth = leaf(&g, SNN_OP_FWD, "th", th, BH);
    int32_t one_m = op2(&g, SNN_OP_SUB, "d.tanh", cst(&g, 1.0f), op2(&g, SNN_OP_MUL, "th2", fth, fth));
    int32_t dcur = op2(&g, SNN_OP_MUL, "d.cur", dth, one_m);
    int32_t fx = leaf(&g, SNN_OP_FWD, "x", x, snn_shape_2(SNN_DIM_B, RI));
    int32_t dW = opn(&g, SNN_OP_MATMUL_TN, "d.weight", snn_shape_2(RH, RI), 2, dcur, fx, 0);
    put(&g, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .nargs = 1, .args = {dW}, .ival = 0});
    int32_t db = opn(&g, SNN_OP_SUM_TO, "d.bias", snn_shape_1(RH), 1, dcur, 0, 0);
    put(&g, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .nargs = 1, .args = {db}, .ival = 1});
    return m;
}

/* The same computation in double; returns the loss, fills scores. */
static double rnn_ref(const double *W, const double *bias, const float *x, const int32_t *lab,
                      int T, double *scores) {
    double mem[RB][RH] = {{0}}, loss = 0;
    double th[RB][RH];
    for (int r = 0; r < RB; r++)
        for (int h = 0; h < RH; h++) {
            double c = bias[h];
            for (int i = 0; i < RI; i++) c += W[h * RI + i] * x[r * RI + i];
            th[r][h] = tanh(c);
            scores[r * RH + h] = 0;
        }
    for (int t = 0; t < T; t++) {
        double ce = 0;
        for (int r = 0; r < RB; r++) {
            double mx = -INFINITY, s = 0;
            for (int h = 0; h < RH; h++) {
                mem[r][h] = 0.9 * mem[r][h] + 0.1 * mem[r][h] * mem[r][h] + th[r][h];
                mx = fmax(mx, mem[r][h]);
                scores[r * RH + h] += 1 / (1 + exp(-mem[r][h]));
            }
            for (int h = 0; h < RH; h++) s += exp(mem[r][h] - mx);
            ce += mx + log(s) - mem[r][lab[r]];
        }
        loss += ce / RB;
    }
    double mse = 0;
    for (int r = 0; r < RB; r++)
        for (int h = 0; h < RH; h++) {
            double d = mem[r][h] - (h == lab[r] ? 1.0 : 0.0);
            mse += d * d;
        }
    return loss + 0.5 * mse / (RB * RH);
}

static void test_rnn_backward(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = rnn_module(a);
    float x[RB * RI], W[RH * RI], bias[RH];
    int32_t lab[RB] = {0, 2, 1};
    uint64_t seed = 11;
    for (int i = 0; i < RB * RI; i++) x[i] = (float)rnd(&seed);
    for (int i = 0; i < RH * RI; i++) W[i] = (float)(rnd(&seed) - 0.5);
    for (int i = 0; i < RH; i++) bias[i] = (float)(rnd(&seed) - 0.3);
    double Wd[RH * RI], bd[RH], sref[RB * RH], stmp[RB * RH];
    for (int i = 0; i < RH * RI; i++) Wd[i] = W[i];
    for (int i = 0; i < RH; i++) bd[i] = bias[i];
    double lref = rnn_ref(Wd, bd, x, lab, RT, sref);
    /* central differences of the double reference */
    double gW[RH * RI], gb[RH], eps = 1e-6;
    for (int i = 0; i < RH * RI; i++) {
        double keep = Wd[i];
        Wd[i] = keep + eps; double lp = rnn_ref(Wd, bd, x, lab, RT, stmp);
        Wd[i] = keep - eps; double lm = rnn_ref(Wd, bd, x, lab, RT, stmp);
        Wd[i] = keep;
        gW[i] = (lp - lm) / (2 * eps);
    }
    for (int i = 0; i < RH; i++) {
        double keep = bd[i];
        bd[i] = keep + eps; double lp = rnn_ref(Wd, bd, x, lab, RT, stmp);
        bd[i] = keep - eps; double lm = rnn_ref(Wd, bd, x, lab, RT, stmp);
        bd[i] = keep;
        gb[i] = (lp - lm) / (2 * eps);
    }
    for (int opt = 0; opt <= 3; opt += 3) {
        snn_jit *j = jit(a, m, opt);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        const snn_model_desc *md = snn_jit_model(j);
        int64_t wb = md->work_bytes(RB, RT);
        CU_ASSERT(wb > 0 && wb % 64 == 0);
        CU_ASSERT(md->work_bytes(RB, RT + 1) > wb);   /* the tape grows with T */
        CU_ASSERT(md->work_bytes(RB + 16, RT) > wb);
        void *work = aligned_alloc(64, (size_t)wb);
        memset(work, 0xff, (size_t)wb);            /* contents on entry must not matter */
        float gWf[RH * RI], gbf[RH], scores[RB * RH];
        for (int i = 0; i < RH * RI; i++) gWf[i] = NAN;
        for (int i = 0; i < RH; i++) gbf[i] = NAN;
        const float *params[2] = {W, bias};
        float *grads[2] = {gWf, gbf};
        snn_batch bt = {RB, RT, x, lab, 9, 0};
        snn_result res = {0, scores};
        CU_ASSERT_EQUAL(md->forward_backward(params, grads, &bt, work, &res), 0);
        CU_ASSERT_DOUBLE_EQUAL(res.loss, lref, 1e-5 * fabs(lref));
        for (int i = 0; i < RB * RH; i++) CU_ASSERT_DOUBLE_EQUAL(scores[i], sref[i], 1e-5 * RT);
        double worst = 0;
        for (int i = 0; i < RH * RI; i++) worst = fmax(worst, fabs(gWf[i] - gW[i]));
        for (int i = 0; i < RH; i++) worst = fmax(worst, fabs(gbf[i] - gb[i]));
        CU_ASSERT(worst < 2e-5);
        if (!(worst < 2e-5)) fprintf(stderr, "\nrnn gradient: worst abs error %g\n", worst);
        /* again: gradients are overwritten, not accumulated */
        CU_ASSERT_EQUAL(md->forward_backward(params, grads, &bt, work, &res), 0);
        CU_ASSERT_DOUBLE_EQUAL(gbf[0], gb[0], 2e-5);
        /* eval: same loss and scores, no tape */
        memset(scores, 0, sizeof scores);
        snn_result r2 = {0, scores};
        CU_ASSERT_EQUAL(md->forward(params, &bt, work, &r2), 0);
        CU_ASSERT_DOUBLE_EQUAL(r2.loss, lref, 1e-5 * fabs(lref));
        CU_ASSERT_DOUBLE_EQUAL(scores[4], sref[4], 1e-5 * RT);
        /* scores may be NULL */
        snn_result r3 = {0, NULL};
        CU_ASSERT_EQUAL(md->forward(params, &bt, work, &r3), 0);
        /* a non-finite loss is reported */
        float xbad[RB * RI];
        memcpy(xbad, x, sizeof x);
        xbad[0] = NAN;
        snn_batch bb = {RB, RT, xbad, lab, 9, 0};
        CU_ASSERT_NOT_EQUAL(md->forward_backward(params, grads, &bb, work, &r3), 0);
        /* no steps or no rows: an error, not a read before the buffers */
        snn_batch b0 = {RB, 0, x, lab, 9, 0}, b1 = {0, RT, x, lab, 9, 0};
        CU_ASSERT_NOT_EQUAL(md->forward_backward(params, grads, &b0, work, &r3), 0);
        CU_ASSERT(isnan(r3.loss));
        CU_ASSERT_NOT_EQUAL(md->forward(params, &b1, work, &r3), 0);
        free(work);
        snn_jit_free(j);
    }
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_descriptor(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = rnn_module(a);
    snn_jit *j = jit(a, m, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const snn_model_desc *md = snn_jit_model(j);
    CU_ASSERT_EQUAL(md->abi_version, SNN_ABI_VERSION);
    CU_ASSERT_STRING_EQUAL(md->model_name, "rnn");
    CU_ASSERT_STRING_EQUAL(md->source_file, "rnn.snn");
    CU_ASSERT_EQUAL(md->n_inputs, RI);
    CU_ASSERT_EQUAL(md->n_classes, RH);
    CU_ASSERT_EQUAL_FATAL(md->n_params, 2);
    CU_ASSERT_STRING_EQUAL(md->params[0].name, "h.weight");
    CU_ASSERT_EQUAL(md->params[0].rank, 2);
    CU_ASSERT_EQUAL(md->params[0].shape[0], RH);
    CU_ASSERT_EQUAL(md->params[0].shape[1], RI);
    CU_ASSERT_EQUAL(md->params[0].size, RH * RI);
    CU_ASSERT_EQUAL(md->params[0].init, SNN_INIT_UNIFORM_FAN_IN);
    CU_ASSERT_EQUAL(md->params[0].fan_in, RI);
    CU_ASSERT_STRING_EQUAL(md->params[1].name, "h.bias");
    CU_ASSERT_EQUAL(md->params[1].rank, 1);
    CU_ASSERT_EQUAL(md->params[1].size, RH);
    CU_ASSERT_EQUAL(md->params[1].fan_in, RI);
    CU_ASSERT_STRING_EQUAL(md->defaults.data_dir, "/data");
    CU_ASSERT_EQUAL(md->defaults.steps, RT);
    CU_ASSERT_EQUAL(md->defaults.batch, 128);
    CU_ASSERT_EQUAL(md->defaults.epochs, 2);
    CU_ASSERT_EQUAL(md->defaults.seed, 42);
    CU_ASSERT_EQUAL(md->defaults.optimizer, SNN_OPT_ADAM);
    CU_ASSERT_DOUBLE_EQUAL(md->defaults.lr, 5e-4, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(md->defaults.beta2, 0.999, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(md->defaults.eps, 1e-8, 1e-12);
    CU_ASSERT_STRING_EQUAL(md->loss_name, "ce_membrane");
    CU_ASSERT_STRING_EQUAL(md->metric_name, "rate_accuracy");
    CU_ASSERT_PTR_NOT_NULL(md->forward);
    CU_ASSERT_PTR_NOT_NULL(md->forward_backward);
    snn_jit_free(j);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* ---- rate encoding ---- */

/* Rows of N draws: the fused kernel fills a stack buffer per row with snnrt_uniform_fill when N
 * is at most CG_RATE_FILL_MAX (4096) and calls snnrt_uniform per element above it; both must
 * draw exactly snnrt_uniform(seed, t, row, i). */
static void rate_case(int N) {
    enum { B = 4, T = 3 };
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = snn_ir_module_new(a, "rate");
    m->n_inputs = N;
    m->n_classes = N;
    mb b = {a, m, &m->forward, SNN_REGION_STEP};
    int32_t s = state(&b, "count", snn_shape_2(SNN_DIM_B, N), 0, -1);
    m->scores_state = s;
    int32_t xin = leaf(&b, SNN_OP_INPUT, "x", 0, snn_shape_2(SNN_DIM_B, N));
    int32_t spk = op1(&b, SNN_OP_RATE, "spk", xin);
    int32_t prev = leaf(&b, SNN_OP_STATE, "count.prev", s, snn_shape_2(SNN_DIM_B, N));
    /* weight step t by 10^t so scores show which steps fired */
    int32_t w = op2(&b, SNN_OP_MUL, "w", spk, leaf(&b, SNN_OP_STEPS, "T", 0, snn_shape_scalar()));
    int32_t cnt = op2(&b, SNN_OP_ADD, "count", op2(&b, SNN_OP_MUL, "old", prev, cst(&b, 2.0f)), w);
    m->forward.states[s].next = cnt;
    float *x = malloc(sizeof(float) * (size_t)(B * N));
    float *scores = malloc(sizeof(float) * (size_t)(B * N));
    uint64_t sd = 5;
    for (int i = 0; i < B * N; i++) x[i] = (float)(1.4 * rnd(&sd) - 0.2);
    snn_jit *j = jit(a, m, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const snn_model_desc *md = snn_jit_model(j);
    void *work = aligned_alloc(64, (size_t)md->work_bytes(B, T));
    snn_batch bt = {B, T, x, (const int32_t[B]){0}, 1234, 0};
    snn_result res = {0, scores};
    CU_ASSERT_EQUAL(md->forward(NULL, &bt, work, &res), 0);
    int bad = 0;
    for (int r = 0; r < B; r++)
        for (int i = 0; i < N; i++) {
            double want = 0, p = fmin(fmax(x[r * N + i], 0), 1);
            for (int t = 0; t < T; t++)
                want = 2 * want + T * (snnrt_uniform(1234, (uint64_t)t, (uint64_t)r, (uint64_t)i) < p);
            bad += scores[r * N + i] != want;
        }
    CU_ASSERT_EQUAL(bad, 0);
    free(work);
    free(x);
    free(scores);
    snn_jit_free(j);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_rate(void) {
    rate_case(6);      /* one snnrt_uniform_fill per row */
    rate_case(4100);   /* wider than CG_RATE_FILL_MAX: snnrt_uniform per element */
}

/* ---- emission ---- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static void test_emit(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = rnn_module(a);
    snn_diag *d = snn_diag_new(a);
    snn_codegen_options o = test_opts();
    char dir[] = "/tmp/snnc-cgtest-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    const char *ll = snn_sprintf(a, "%s/m.ll", dir), *s = snn_sprintf(a, "%s/m.s", dir);
    const char *obj = snn_sprintf(a, "%s/m.o", dir), *exe = snn_sprintf(a, "%s/train", dir);
    o.opt_level = 0;
    CU_ASSERT(snn_codegen(a, d, m, &o, SNN_EMIT_LLVM, ll));
    char *text = slurp(ll);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "@snn_model = "));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "%h.mem = fadd"));        /* IR names survive */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "@fwd.h.mem("));           /* a fused kernel */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "ptr noalias"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "@snnrt_sgemm"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tape.h.mem"));
    free(text);
    o.opt_level = 3;
    CU_ASSERT(snn_codegen(a, d, m, &o, SNN_EMIT_ASM, s));
    CU_ASSERT(snn_codegen(a, d, m, &o, SNN_EMIT_OBJ, obj));
    CU_ASSERT(access(obj, R_OK) == 0);
    CU_ASSERT_FALSE(snn_codegen(a, d, m, &o, SNN_EMIT_OBJ, "-"));   /* no objects to stdout */
    /* a missing runtime library is a clear error, not a cc failure */
    o.runtime_dir = dir;
    int before = snn_diag_error_count(d);
    CU_ASSERT_FALSE(snn_codegen(a, d, m, &o, SNN_EMIT_EXE, exe));
    CU_ASSERT(snn_diag_error_count(d) > before);
    /* the real runtime, next to this test binary (build/) */
    o.runtime_dir = NULL;
    if (access("build/libsnnrt.a", R_OK) == 0) {
        o.runtime_dir = "build";
        CU_ASSERT(snn_codegen(a, d, m, &o, SNN_EMIT_EXE, exe));
        CU_ASSERT(access(exe, X_OK) == 0);
    }
    char *cmd = snn_sprintf(a, "rm -rf '%s'", dir);
    CU_ASSERT(system(cmd) == 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* snn_codegen_stats agrees with the generated work_bytes; the loop plan prints. */
static void test_plan_print(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = rnn_module(a);
    snn_diag *d = snn_diag_new(a);
    snn_jit *j = jit(a, m, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    for (int64_t B = 1; B < 300; B += 37)
        for (int64_t T = 1; T < 40; T += 13) {
            snn_codegen_sizes sz;
            CU_ASSERT_FATAL(snn_codegen_stats(a, d, m, B, T, &sz));
            CU_ASSERT_EQUAL(sz.work_bytes, snn_jit_model(j)->work_bytes(B, T));
            CU_ASSERT_EQUAL(sz.n_taped, 1);   /* h.mem (h.mem.prev is h.mem one step earlier) */
            CU_ASSERT(sz.tape_bytes > 0 && sz.tape_bytes < sz.work_bytes);
        }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT(snn_codegen_print_loops(a, d, m, f));
    fclose(f);
    /* h.count's update joins h.mem's loop across the cross_entropy between them */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "loop   [B,3] { %h.decay %h.sq %h.sq1 %h.lin %h.mem->tape "
                                        "%h.sig %h.count->mem }"));
    CU_ASSERT_PTR_NULL(strstr(text, "copy   state"));   /* every state rotates */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "sgemm  %h.cur = linear(%x, %h.weight, %h.bias)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "state  d.mem <- %d.mem.prev (updated in place"));
    free(text);
    snn_jit_free(j);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* A module codegen cannot lower is an internal error on the diagnostics, not a crash; every
 * LLVM object is released on that path too (LSan builds check). */
static void test_bad_module(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = snn_ir_module_new(a, "bad");
    m->n_inputs = m->n_classes = 2;
    mb b = {a, m, &m->forward, SNN_REGION_STEP};
    leaf(&b, SNN_OP_FWD, "f", 0, snn_shape_2(SNN_DIM_B, 2));   /* FWD in the forward function */
    snn_diag *d = snn_diag_new(a);
    snn_codegen_options o = test_opts();
    CU_ASSERT_FALSE(snn_codegen(a, d, m, &o, SNN_EMIT_LLVM, "/dev/null"));
    CU_ASSERT_PTR_NULL(snn_jit_compile(a, d, m, &o, NULL, 0));
    CU_ASSERT(snn_diag_error_count(d) >= 2);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_host_cpu(void) {
    snn_arena *a = snn_arena_new();
    const char *cpu = snn_codegen_host_cpu(a);
    CU_ASSERT_PTR_NOT_NULL(cpu);
    CU_ASSERT(strlen(cpu) > 0);
    CU_ASSERT(strcmp(cpu, "generic") != 0 || !strstr(snn_codegen_host_features(a), "+avx512f"));
    snn_arena_free(a);
}

void test_codegen_register(void) {
    CU_pSuite s = CU_add_suite("codegen", NULL, NULL);
    CU_add_test(s, "elementwise ops, fused, broadcast", test_elementwise_ops);
    CU_add_test(s, "inline exp within 2 ulp of expf", test_exp_accuracy);
    CU_add_test(s, "linear, matmuls, sum_to", test_linalg);
    CU_add_test(s, "recurrent forward + hand-written backward vs finite differences",
                test_rnn_backward);
    CU_add_test(s, "snn_model descriptor fields", test_descriptor);
    CU_add_test(s, "rate encoding and steps", test_rate);
    CU_add_test(s, "emit llvm/asm/obj/exe", test_emit);
    CU_add_test(s, "work area size and loop plan printout", test_plan_print);
    CU_add_test(s, "unlowerable module: internal error, no crash", test_bad_module);
    CU_add_test(s, "host cpu", test_host_cpu);
}
