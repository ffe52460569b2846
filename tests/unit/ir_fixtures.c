/* ir_fixtures.c: hand-built IR modules for tests (see ir_fixtures.h). Not a test file itself (no
 * test_ prefix): tests of the IR, autodiff, codegen and passes include ir_fixtures.h. */
#include "ir_fixtures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tiny builder: appends values of one function, in one region at a time, inferring
 * elementwise shapes by broadcasting. */
typedef struct {
    snn_arena *a;
    snn_ir_module *m;
    snn_ir_func *f;
    snn_region r;
    int line;
} bld;

static snn_loc here(bld *b) { return (snn_loc){"fixture.snn", ++b->line, 5}; }

static int32_t put(bld *b, snn_ir_value v) {
    v.region = b->r;
    v.loc = here(b);
    return snn_ir_append(b->a, b->f, v);
}

static snn_shape shape_of(bld *b, int32_t id) { return b->f->values[id].shape; }

static int32_t ew(bld *b, snn_op op, const char *name, int32_t x, int32_t y) {
    snn_ir_value v = {.op = op, .name = name, .nargs = y >= 0 ? 2 : 1, .args = {x, y}};
    v.shape = shape_of(b, x);
    if (y >= 0) snn_shape_broadcast(shape_of(b, x), shape_of(b, y), &v.shape);
    return put(b, v);
}

static int32_t ew3(bld *b, snn_op op, const char *name, int32_t x, int32_t y, int32_t z) {
    snn_ir_value v = {.op = op, .name = name, .nargs = 3, .args = {x, y, z}};
    snn_shape s;
    snn_shape_broadcast(shape_of(b, x), shape_of(b, y), &s);
    snn_shape_broadcast(s, shape_of(b, z), &v.shape);
    return put(b, v);
}

static int32_t cnst(bld *b, const char *name, float val) {
    return put(b, (snn_ir_value){.op = SNN_OP_CONST, .name = name, .fval = val, .shape = snn_shape_scalar()});
}

static int32_t param(bld *b, int32_t idx) {
    return put(b, (snn_ir_value){.op = SNN_OP_PARAM, .name = b->m->params[idx].name, .ival = idx,
                                 .shape = b->m->params[idx].shape});
}

static int32_t state_rd(bld *b, int32_t s, const char *name) {
    return put(b, (snn_ir_value){.op = SNN_OP_STATE, .name = name, .ival = s, .shape = b->f->states[s].shape});
}

static int32_t linear(bld *b, const char *name, int32_t x, int32_t w, int32_t bias) {
    snn_ir_value v = {.op = SNN_OP_LINEAR, .name = name, .nargs = 3, .args = {x, w, bias},
                      .shape = snn_shape_2(shape_of(b, x).dim[0], shape_of(b, w).dim[0])};
    return put(b, v);
}

static int32_t add_param(snn_ir_module *m, snn_arena *a, const char *name, snn_shape s,
                         snn_param_init init, float value, int64_t fan_in, int line) {
    snn_ir_param p = {.name = snn_intern_cstr(a, name), .shape = s, .init = init, .init_value = value,
                      .fan_in = fan_in, .loc = {"fixture.snn", line, 3}};
    return snn_ir_add_param(m, p);
}

static int32_t add_state(bld *b, const char *name, snn_shape s) {
    snn_ir_state st = {.name = snn_intern_cstr(b->a, name), .shape = s, .init = 0, .init_from = -1,
                       .next = -1, .loc = here(b)};
    return snn_ir_add_state(b->f, st);
}

int32_t snn_fixture_add_atan(snn_arena *a, snn_ir_module *m, float alpha) {
    snn_ir_func tmp = {.name = "surrogate"};
    bld b = {a, m, &tmp, SNN_REGION_PRE, 100};
    int32_t x = put(&b, (snn_ir_value){.op = SNN_OP_ARG, .name = "x", .shape = snn_shape_scalar()});
    int32_t k = cnst(&b, "k", (float)(M_PI / 2 * alpha));
    int32_t kx = ew(&b, SNN_OP_MUL, "kx", k, x);
    int32_t two = cnst(&b, "two", 2.0f);
    int32_t sq = ew(&b, SNN_OP_POW, "sq", kx, two);
    int32_t one = cnst(&b, "one", 1.0f);
    int32_t den = ew(&b, SNN_OP_ADD, "den", one, sq);
    int32_t num = cnst(&b, "half_alpha", alpha / 2);
    int32_t g = ew(&b, SNN_OP_DIV, "grad", num, den);
    snn_ir_surrogate s = {.name = snn_sprintf(a, "atan(alpha=%g)", (double)alpha), .values = tmp.values,
                          .n_values = tmp.n_values, .cap_values = tmp.cap_values, .ret = g};
    free(tmp.states);
    SNN_PUSH(m->surrogates, m->n_surrogates, m->cap_surrogates, s);
    return m->n_surrogates - 1;
}

snn_fixture_opts snn_fixture_defaults(void) {
    return (snn_fixture_opts){.n_in = 7, .n_hidden = 5, .n_out = 3, .beta = 0.95f, .threshold = 1.0f,
                              .alpha = 2.0f, .syn_alpha = 0.8f, .smooth_k = 4.0f};
}

/* One leaky (or synaptic) layer's step equations. Returns the spike value; *mem_out the membrane.
 * beta: a [] const or the clamped [N] param. */
static int32_t layer_step(bld *b, const snn_fixture_opts *o, const char *l, int32_t cur, int32_t beta,
                          int32_t thr, int32_t syn_alpha, int32_t s_mem, int32_t s_syn, int32_t sg,
                          int32_t smooth_k, int32_t s_spk, int32_t rW, int32_t rb, int32_t *mem_out) {
    char n[64];
#define N(s) (snprintf(n, sizeof n, "%s.%s", l, s), n)
    int32_t input = cur;
    if (s_spk >= 0) {   /* RLeaky: + linear(spk[t-1]) */
        int32_t spk_prev = state_rd(b, s_spk, N("spk.prev"));
        int32_t rec = linear(b, N("rec"), spk_prev, rW, rb);
        input = ew(b, SNN_OP_ADD, N("input"), cur, rec);
    }
    if (s_syn >= 0) {
        int32_t syn_prev = state_rd(b, s_syn, N("syn.prev"));
        int32_t syn_decay = ew(b, SNN_OP_MUL, N("syn.decay"), syn_alpha, syn_prev);
        input = ew(b, SNN_OP_ADD, N("syn"), syn_decay, input);
        b->f->states[s_syn].next = input;
    }
    int32_t mem_prev = state_rd(b, s_mem, N("mem.prev"));
    int32_t over = ew(b, SNN_OP_SUB, N("over.prev"), mem_prev, thr);
    int32_t hv = ew(b, SNN_OP_HEAVISIDE, N("fired.prev"), over, -1);
    int32_t r = ew(b, SNN_OP_DETACH, N("reset"), hv, -1);
    int32_t decay = ew(b, SNN_OP_MUL, N("decay"), beta, mem_prev);
    int32_t in = ew(b, SNN_OP_ADD, N("charged"), decay, input);
    int32_t sub = ew(b, SNN_OP_MUL, N("reset.amount"), r, thr);
    int32_t mem = ew(b, SNN_OP_SUB, N("mem"), in, sub);
    b->f->states[s_mem].next = mem;
    int32_t v = ew(b, SNN_OP_SUB, N("v"), mem, thr);
    int32_t spk;
    if (o->smooth) {
        int32_t kv = ew(b, SNN_OP_MUL, N("kv"), smooth_k, v);
        spk = ew(b, SNN_OP_SIGMOID, N("spk"), kv, -1);
    } else {
        snn_ir_value fv = {.op = SNN_OP_FIRE, .name = N("spk"), .nargs = 1, .args = {v}, .ival = sg,
                           .shape = shape_of(b, v)};
        spk = put(b, fv);
    }
    if (s_spk >= 0) b->f->states[s_spk].next = spk;
#undef N
    *mem_out = mem;
    return spk;
}

snn_ir_module *snn_fixture_tutorial5(snn_arena *a, const snn_fixture_opts *o) {
    snn_ir_module *m = snn_ir_module_new(a, snn_intern_cstr(a, "tutorial5_small"));
    m->source_file = snn_intern_cstr(a, "fixture.snn");
    m->n_inputs = o->n_in;
    m->n_classes = o->n_out;
    m->loss_name = "ce_membrane";
    m->metric_name = "rate_accuracy";
    m->train.data_dir = "/usr/share/datasets/fashion-mnist";
    m->train.steps = 25; m->train.batch = 128; m->train.epochs = 1; m->train.seed = 0;
    m->train.lr = 5e-4f; m->train.beta1 = 0.9f; m->train.beta2 = 0.999f; m->train.eps = 1e-8f;
    const int64_t I = o->n_in, H = o->n_hidden, O = o->n_out;
    int32_t pW1 = add_param(m, a, "h.weight", snn_shape_2(H, I), SNN_PINIT_UNIFORM_FAN_IN, 0, I, 2);
    int32_t pb1 = add_param(m, a, "h.bias", snn_shape_1(H), SNN_PINIT_UNIFORM_FAN_IN, 0, I, 2);
    int32_t pW2 = add_param(m, a, "o.weight", snn_shape_2(O, H), SNN_PINIT_UNIFORM_FAN_IN, 0, H, 3);
    int32_t pb2 = add_param(m, a, "o.bias", snn_shape_1(O), SNN_PINIT_UNIFORM_FAN_IN, 0, H, 3);
    int32_t pbh = -1, pbo = -1;
    if (o->learn_beta) {
        pbh = add_param(m, a, "h.beta", snn_shape_1(H), SNN_PINIT_CONST, o->beta, 0, 2);
        pbo = add_param(m, a, "o.beta", snn_shape_1(O), SNN_PINIT_CONST, o->beta, 0, 3);
    }
    int32_t prW = -1, prb = -1;
    if (o->recurrent) {
        prW = add_param(m, a, "h.rweight", snn_shape_2(H, H), SNN_PINIT_UNIFORM_FAN_IN, 0, H, 2);
        prb = add_param(m, a, "h.rbias", snn_shape_1(H), SNN_PINIT_UNIFORM_FAN_IN, 0, H, 2);
    }
    int32_t sg = snn_fixture_add_atan(a, m, o->alpha);

    bld b = {a, m, &m->forward, SNN_REGION_PRE, 10};
    int32_t s_hsyn = o->synaptic ? add_state(&b, "h.syn", snn_shape_2(SNN_DIM_B, H)) : -1;
    int32_t s_hmem = add_state(&b, "h.mem", snn_shape_2(SNN_DIM_B, H));
    int32_t s_hspk = o->recurrent ? add_state(&b, "h.spk", snn_shape_2(SNN_DIM_B, H)) : -1;
    int32_t s_omem = add_state(&b, "o.mem", snn_shape_2(SNN_DIM_B, O));
    int32_t s_cnt = add_state(&b, "o.count", snn_shape_2(SNN_DIM_B, O));
    m->scores_state = s_cnt;

    /* pre */
    int32_t x = put(&b, (snn_ir_value){.op = SNN_OP_INPUT, .name = "x", .shape = snn_shape_2(SNN_DIM_B, I)});
    int32_t W1 = param(&b, pW1), b1 = param(&b, pb1), W2 = param(&b, pW2), b2 = param(&b, pb2);
    int32_t thr = cnst(&b, "threshold", o->threshold);
    int32_t beta_h, beta_o;
    if (o->learn_beta) {
        int32_t zero = cnst(&b, "zero", 0.0f), one = cnst(&b, "one", 1.0f);
        int32_t bh = param(&b, pbh), bh_lo = ew(&b, SNN_OP_MAX, "h.beta.lo", bh, zero);
        beta_h = ew(&b, SNN_OP_MIN, "h.beta.clamped", bh_lo, one);
        int32_t bo = param(&b, pbo), bo_lo = ew(&b, SNN_OP_MAX, "o.beta.lo", bo, zero);
        beta_o = ew(&b, SNN_OP_MIN, "o.beta.clamped", bo_lo, one);
    } else {
        beta_h = beta_o = cnst(&b, "beta", o->beta);
    }
    int32_t syn_alpha = o->synaptic ? cnst(&b, "syn.alpha", o->syn_alpha) : -1;
    int32_t smooth_k = o->smooth ? cnst(&b, "smooth.k", o->smooth_k) : -1;
    int32_t h_cur = o->hoisted ? linear(&b, "h.cur", x, W1, b1) : -1;
    int32_t rW = o->recurrent ? param(&b, prW) : -1, rb = o->recurrent ? param(&b, prb) : -1;

    /* step */
    b.r = SNN_REGION_STEP;
    if (!o->hoisted) h_cur = linear(&b, "h.cur", x, W1, b1);
    int32_t h_mem, o_mem;
    int32_t h_spk = layer_step(&b, o, "h", h_cur, beta_h, thr, syn_alpha, s_hmem, s_hsyn, sg, smooth_k, s_hspk, rW,
                               rb, &h_mem);
    int32_t o_cur = linear(&b, "o.cur", h_spk, W2, b2);
    int32_t o_spk = layer_step(&b, o, "o", o_cur, beta_o, thr, -1, s_omem, -1, sg, smooth_k, -1, -1, -1, &o_mem);
    int32_t cnt_prev = state_rd(&b, s_cnt, "o.count.prev");
    m->forward.states[s_cnt].next = ew(&b, SNN_OP_ADD, "o.count", cnt_prev, o_spk);
    int32_t ce = put(&b, (snn_ir_value){.op = SNN_OP_CROSS_ENTROPY, .name = "ce", .nargs = 1, .args = {o_mem},
                                        .shape = snn_shape_scalar()});
    put(&b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "loss.ce", .nargs = 1, .args = {ce}, .fval = 1.0f});

    /* post */
    b.r = SNN_REGION_POST;
    if (o->final_loss) {
        int32_t fin = state_rd(&b, s_omem, "o.mem.final");
        snn_ir_value mse = {.op = SNN_OP_MSE_ONEHOT, .name = "mse", .nargs = 1, .args = {fin},
                            .shape = snn_shape_scalar(), .attr = {1.0f, 0.0f}};
        int32_t ms = put(&b, mse);
        put(&b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "loss.mse", .nargs = 1, .args = {ms}, .fval = 0.5f});
        int32_t sq = ew(&b, SNN_OP_MUL, "o.weight.sq", W2, W2);
        int32_t l2 = put(&b, (snn_ir_value){.op = SNN_OP_SUM_TO, .name = "l2", .nargs = 1, .args = {sq},
                                            .shape = snn_shape_scalar()});
        put(&b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "loss.l2", .nargs = 1, .args = {l2}, .fval = 1e-3f});
    }
    return m;
}

snn_ir_module *snn_fixture_op(snn_arena *a, snn_op op) {
    snn_ir_module *m = snn_ir_module_new(a, snn_sprintf(a, "op_%s", snn_op_infos[op].mnemonic));
    m->source_file = "op.snn";
    m->n_inputs = 3;
    m->n_classes = 3;
    int32_t pp = add_param(m, a, "p", snn_shape_1(3), SNN_PINIT_CONST, 0.5f, 0, 1);
    int32_t pq = add_param(m, a, "q", snn_shape_1(3), SNN_PINIT_CONST, 0.5f, 0, 1);
    int32_t pP = add_param(m, a, "P", snn_shape_2(3, 3), SNN_PINIT_UNIFORM_FAN_IN, 0, 3, 1);
    int32_t pQ = add_param(m, a, "Q", snn_shape_2(3, 3), SNN_PINIT_UNIFORM_FAN_IN, 0, 3, 1);
    int32_t sg = snn_fixture_add_atan(a, m, 2.0f);
    bld b = {a, m, &m->forward, SNN_REGION_PRE, 0};
    int32_t x = put(&b, (snn_ir_value){.op = SNN_OP_INPUT, .name = "x", .shape = snn_shape_2(SNN_DIM_B, 3)});
    int32_t p = param(&b, pp), q = param(&b, pq), P = param(&b, pP), Q = param(&b, pQ);
    b.r = SNN_REGION_STEP;
    int32_t xp = ew(&b, SNN_OP_MUL, "xp", x, p), half = cnst(&b, "half", 0.5f);
    int32_t u = ew(&b, SNN_OP_ADD, "u", xp, half);
    int32_t xq = ew(&b, SNN_OP_MUL, "xq", x, q), quarter = cnst(&b, "quarter", 0.25f);
    int32_t w = ew(&b, SNN_OP_ADD, "w", xq, quarter);
    int32_t y;
    const snn_op_info *oi = &snn_op_infos[op];
    switch (op) {
    case SNN_OP_SELECT: y = ew3(&b, op, "y", ew(&b, SNN_OP_GT, "c", x, cnst(&b, "mid", 0.5f)), u, w); break;
    case SNN_OP_FIRE: {
        snn_ir_value fv = {.op = SNN_OP_FIRE, .name = "y", .nargs = 1, .args = {u}, .ival = sg, .shape = shape_of(&b, u)};
        y = put(&b, fv);
        break;
    }
    case SNN_OP_POW:  /* u^w (general exponent) + w^3 (const exponent) */
        y = ew(&b, op, "y", u, w);
        y = ew(&b, SNN_OP_ADD, "y2", y, ew(&b, op, "ycube", w, cnst(&b, "three", 3.0f)));
        break;
    case SNN_OP_LINEAR: y = linear(&b, "y", u, P, q); break;
    case SNN_OP_MATMUL_NN:
        y = put(&b, (snn_ir_value){.op = op, .name = "y", .nargs = 2, .args = {u, P}, .shape = snn_shape_2(SNN_DIM_B, 3)});
        break;
    case SNN_OP_MATMUL_TN: {
        int32_t pq2 = put(&b, (snn_ir_value){.op = op, .name = "PtQ", .nargs = 2, .args = {P, Q}, .shape = snn_shape_2(3, 3)});
        y = ew(&b, SNN_OP_ADD, "y", u, linear(&b, "uPtQ", w, pq2, p));
        break;
    }
    case SNN_OP_SUM_TO: {
        int32_t s = put(&b, (snn_ir_value){.op = op, .name = "s", .nargs = 1, .args = {u}, .shape = snn_shape_1(3)});
        int32_t s0 = put(&b, (snn_ir_value){.op = op, .name = "s0", .nargs = 1, .args = {w}, .shape = snn_shape_scalar()});
        y = ew(&b, SNN_OP_MUL, "y", ew(&b, SNN_OP_MUL, "ws", w, s), s0);
        break;
    }
    case SNN_OP_STEPS: {  /* u * T / w: a leaf without gradient inside a differentiable path */
        int32_t T = put(&b, (snn_ir_value){.op = op, .name = "T", .shape = snn_shape_scalar()});
        int32_t uT = ew(&b, SNN_OP_MUL, "uT", u, T);
        y = ew(&b, SNN_OP_DIV, "y", uT, w);
        break;
    }
    case SNN_OP_STEP: {   /* u * (t + 1) / w: the step index, different at every step */
        int32_t t = put(&b, (snn_ir_value){.op = op, .name = "t", .shape = snn_shape_scalar()});
        int32_t t1 = ew(&b, SNN_OP_ADD, "t1", t, cnst(&b, "one", 1.0f));
        y = ew(&b, SNN_OP_DIV, "y", ew(&b, SNN_OP_MUL, "ut", u, t1), w);
        break;
    }
    case SNN_OP_BROADCAST: {
        int32_t s = put(&b, (snn_ir_value){.op = op, .name = "pb", .nargs = 1, .args = {p}, .shape = snn_shape_2(SNN_DIM_B, 3)});
        y = ew(&b, SNN_OP_MUL, "y", s, u);
        break;
    }
    default:
        if (oi->cls != SNN_CLASS_ELEMWISE || op == SNN_OP_RATE) return snn_ir_module_free(m), NULL;
        y = ew(&b, op, "y", u, oi->arity == 2 ? w : -1);
        break;
    }
    int32_t z = ew(&b, SNN_OP_ADD, "z", y, x);
    int32_t ce = put(&b, (snn_ir_value){.op = SNN_OP_CROSS_ENTROPY, .name = "ce", .nargs = 1, .args = {z}, .shape = snn_shape_scalar()});
    put(&b, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "loss", .nargs = 1, .args = {ce}, .fval = 1.0f});
    /* a state so the step region carries something across time */
    int32_t s = add_state(&b, "acc", snn_shape_2(SNN_DIM_B, 3));
    b.f->states[s].next = z;
    return m;
}

static double lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

void snn_fixture_params(const snn_ir_module *m, uint64_t seed, double scale, double *const *out) {
    uint64_t s = seed * 2654435761u + 12345;
    for (int i = 0; i < m->n_params; i++) {
        const snn_ir_param *p = &m->params[i];
        int64_t n = snn_shape_numel(p->shape, 1);
        for (int64_t k = 0; k < n; k++) {
            double u = lcg(&s);
            if (p->init == SNN_PINIT_UNIFORM_FAN_IN) out[i][k] = scale * (2 * u - 1) / sqrt((double)p->fan_in);
            else if (p->init_value != 0) out[i][k] = p->init_value + 0.05 * (2 * u - 1);
            else out[i][k] = 0.1 + 0.8 * u;
        }
    }
}

void snn_fixture_inputs(const snn_ir_module *m, int64_t batch, uint64_t seed, double lo, double hi,
                        double *x, int32_t *labels) {
    uint64_t s = seed * 40503u + 777;
    for (int64_t k = 0; k < batch * m->n_inputs; k++) x[k] = lo + (hi - lo) * lcg(&s);
    for (int64_t k = 0; k < batch; k++) labels[k] = (int32_t)(lcg(&s) * (double)m->n_classes) % (int32_t)m->n_classes;
}
