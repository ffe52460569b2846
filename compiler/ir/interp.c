/* interp.c: the reference interpreter (see interp.h).
 *
 * Deliberately simple: every value of a function gets its own buffer of numel(shape) doubles,
 * every op is a plain loop, broadcasting is "operand index = output index mod operand size"
 * (which is exactly right-aligned broadcasting without size-1 stretching, the IR's rule).
 * The forward step values that the backward function reads (its FWD ops) are copied to a tape
 * after every step; forward pre and post values are kept until backward has run.
 */
#include "ir/interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const snn_ir_module *m;
    const double *const *params;
    double *const *grads;
    const snn_interp_batch *b;
    const snn_interp_opts *opts;
    double loss;
    /* forward results kept for the backward function */
    double **fvals;         /* forward value buffers (pre and post values are final) */
    double **tape;          /* [forward value id] -> T * numel, for taped step values, or NULL */
} run_ctx;

static double *xcalloc(int64_t n) {
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (!p) { fputs("snn_interp: out of memory\n", stderr); abort(); }
    return p;
}

static double r32(const run_ctx *c, double x) {
    return c->opts && c->opts->round_f32 ? (double)(float)x : x;
}

static double dclamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

static double unary(snn_op op, double a) {
    switch (op) {
    case SNN_OP_NEG: return -a;
    case SNN_OP_EXP: return exp(a);
    case SNN_OP_LOG: return log(a);
    case SNN_OP_TANH: return tanh(a);
    case SNN_OP_ABS: return fabs(a);
    case SNN_OP_SQRT: return sqrt(a);
    case SNN_OP_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case SNN_OP_HEAVISIDE: case SNN_OP_FIRE: return a > 0 ? 1.0 : 0.0;
    case SNN_OP_DETACH: case SNN_OP_BROADCAST: return a;
    default: return NAN;
    }
}

static double binary(snn_op op, double a, double b) {
    switch (op) {
    case SNN_OP_ADD: return a + b;
    case SNN_OP_SUB: return a - b;
    case SNN_OP_MUL: return a * b;
    case SNN_OP_DIV: return a / b;
    case SNN_OP_POW: return pow(a, b);
    case SNN_OP_MIN: return a <= b ? a : b;
    case SNN_OP_MAX: return a >= b ? a : b;
    case SNN_OP_GT: return a > b;
    case SNN_OP_GE: return a >= b;
    case SNN_OP_LT: return a < b;
    case SNN_OP_LE: return a <= b;
    case SNN_OP_EQ: return a == b;
    case SNN_OP_NE: return a != b;
    default: return NAN;
    }
}

/* Computes value id of f into vals[id] at step t (t = -1 outside the step region). */
static void compute(run_ctx *c, const snn_ir_func *f, double **vals, double **states, int32_t id,
                    int64_t t) {
    const snn_ir_module *m = c->m;
    const snn_ir_value *v = &f->values[id];
    const int64_t B = c->b->batch;
    const int64_t n = snn_shape_numel(v->shape, B);
    double *out = vals[id];
    const double *a = v->nargs > 0 ? vals[v->args[0]] : NULL;
    const double *bb = v->nargs > 1 ? vals[v->args[1]] : NULL;
    const double *cc = v->nargs > 2 ? vals[v->args[2]] : NULL;
    const int64_t na = v->nargs > 0 ? snn_shape_numel(f->values[v->args[0]].shape, B) : 0;
    const int64_t nb = v->nargs > 1 ? snn_shape_numel(f->values[v->args[1]].shape, B) : 0;
    const int64_t nc = v->nargs > 2 ? snn_shape_numel(f->values[v->args[2]].shape, B) : 0;
    switch (v->op) {
    case SNN_OP_CONST: out[0] = v->fval; break;
    case SNN_OP_PARAM: for (int64_t i = 0; i < n; i++) out[i] = c->params[v->ival][i]; break;
    case SNN_OP_INPUT: for (int64_t i = 0; i < n; i++) out[i] = c->b->x[i]; break;
    case SNN_OP_STEPS: out[0] = (double)c->b->steps; break;
    case SNN_OP_STEP: out[0] = (double)t; break;
    case SNN_OP_STATE: memcpy(out, states[v->ival], (size_t)n * sizeof *out); break;
    case SNN_OP_ARG: for (int64_t i = 0; i < n; i++) out[i] = NAN; break;
    case SNN_OP_FWD: {
        const snn_ir_value *fv = &m->forward.values[v->ival];
        const double *src = fv->region == SNN_REGION_STEP ? c->tape[v->ival] + t * n : c->fvals[v->ival];
        memcpy(out, src, (size_t)n * sizeof *out);
        break;
    }
    case SNN_OP_RATE: {
        int64_t per_row = v->shape.rank >= 1 && v->shape.dim[0] == SNN_DIM_B ? n / (B > 0 ? B : 1) : n;
        if (per_row <= 0) per_row = 1;
        for (int64_t i = 0; i < n; i++) {
            float u = snnrt_uniform(c->b->seed, (uint64_t)(t < 0 ? 0 : t), (uint64_t)(i / per_row), (uint64_t)(i % per_row));
            out[i] = (double)u < dclamp01(a[i % na]) ? 1.0 : 0.0;
        }
        break;
    }
    case SNN_OP_SELECT:
        for (int64_t i = 0; i < n; i++) out[i] = a[i % na] != 0 ? bb[i % nb] : cc[i % nc];
        break;
    case SNN_OP_LINEAR: {   /* x[M,K] W[N,K] (b[N]) -> [M,N] */
        const snn_shape xs = f->values[v->args[0]].shape, ws = f->values[v->args[1]].shape;
        int64_t M = snn_shape_dim(xs, 0, B), K = xs.dim[1], N = ws.dim[0];
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = cc ? cc[j] : 0.0;
                for (int64_t k = 0; k < K; k++) s += a[i * K + k] * bb[j * K + k];
                out[i * N + j] = s;
            }
        break;
    }
    case SNN_OP_MATMUL_NN: {  /* a[M,K] b[K,N] */
        const snn_shape as = f->values[v->args[0]].shape, bs = f->values[v->args[1]].shape;
        int64_t M = snn_shape_dim(as, 0, B), K = snn_shape_dim(as, 1, B);
        int64_t N = snn_shape_dim(bs, 1, B);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += a[i * K + k] * bb[k * N + j];
                out[i * N + j] = s;
            }
        break;
    }
    case SNN_OP_MATMUL_TN: {  /* a[K,M]^T b[K,N] */
        const snn_shape as = f->values[v->args[0]].shape, bs = f->values[v->args[1]].shape;
        int64_t K = snn_shape_dim(as, 0, B), M = snn_shape_dim(as, 1, B);
        int64_t N = snn_shape_dim(bs, 1, B);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += a[k * M + i] * bb[k * N + j];
                out[i * N + j] = s;
            }
        break;
    }
    case SNN_OP_SUM_TO:
        for (int64_t i = 0; i < n; i++) out[i] = 0;
        for (int64_t i = 0; i < na; i++) out[i % n] += a[i];
        break;
    case SNN_OP_CROSS_ENTROPY: case SNN_OP_CE_GRAD:
    case SNN_OP_MSE_ONEHOT: case SNN_OP_MSE_ONEHOT_GRAD: {
        const snn_shape ls = f->values[v->args[0]].shape;
        int64_t C = ls.dim[1];
        double total = 0;
        double dl = bb ? bb[0] : 0;
        for (int64_t r = 0; r < B; r++) {
            const double *x = a + r * C;
            int32_t lab = c->b->labels[r];
            if (v->op == SNN_OP_CROSS_ENTROPY || v->op == SNN_OP_CE_GRAD) {
                double mx = x[0];
                for (int64_t k = 1; k < C; k++) if (x[k] > mx) mx = x[k];
                double se = 0;
                for (int64_t k = 0; k < C; k++) se += exp(x[k] - mx);
                if (v->op == SNN_OP_CROSS_ENTROPY) total += mx + log(se) - x[lab];
                else
                    for (int64_t k = 0; k < C; k++)
                        out[r * C + k] = dl * (exp(x[k] - mx) / se - (k == lab ? 1.0 : 0.0)) / (double)B;
            } else {
                for (int64_t k = 0; k < C; k++) {
                    double tg = k == lab ? v->attr[0] : v->attr[1];
                    if (v->attr[2] != 0) tg = floor((double)c->b->steps * tg + 1e-3);
                    if (v->op == SNN_OP_MSE_ONEHOT) total += (x[k] - tg) * (x[k] - tg);
                    else out[r * C + k] = dl * 2.0 * (x[k] - tg) / (double)(B * C);
                }
            }
        }
        if (v->op == SNN_OP_CROSS_ENTROPY) out[0] = total / (double)B;
        if (v->op == SNN_OP_MSE_ONEHOT) out[0] = total / (double)(B * C);
        break;
    }
    case SNN_OP_LOSS_ADD: c->loss += (double)v->fval * a[0]; break;
    case SNN_OP_GRAD_ACC:
        if (c->grads) {
            int64_t np = snn_shape_numel(m->params[v->ival].shape, B);
            for (int64_t i = 0; i < np; i++) c->grads[v->ival][i] = r32(c, c->grads[v->ival][i] + a[i]);
        }
        break;
    default:
        if (v->nargs == 1) for (int64_t i = 0; i < n; i++) out[i] = unary(v->op, a[i % na]);
        else if (v->nargs == 2) for (int64_t i = 0; i < n; i++) out[i] = binary(v->op, a[i % na], bb[i % nb]);
        else for (int64_t i = 0; i < n; i++) out[i] = NAN;     /* not an op this interpreter knows */
        break;
    }
    if (snn_op_infos[v->op].cls != SNN_CLASS_SINK)
        for (int64_t i = 0; i < n; i++) out[i] = r32(c, out[i]);
    if (c->opts && c->opts->observe && snn_op_infos[v->op].cls != SNN_CLASS_SINK)
        c->opts->observe(c->opts->ctx, f, id, v->region == SNN_REGION_STEP ? t : -1, out, n);
}

/* Runs f over all regions. vals (n_values buffers) are allocated by the caller; taped marks the
 * forward step values to copy into c->tape after each step (NULL: none). Returns the final
 * state buffers through *final_states (caller frees). */
static void exec_func(run_ctx *c, const snn_ir_func *f, double **vals, const bool *taped,
                      double ***final_states) {
    const int64_t B = c->b->batch, T = c->b->steps;
    double **st = calloc((size_t)(f->n_states > 0 ? f->n_states : 1), sizeof *st);
    if (!st) { fputs("snn_interp: out of memory\n", stderr); abort(); }
    int32_t i = 0;
    for (; i < f->n_values && f->values[i].region == SNN_REGION_PRE; i++) compute(c, f, vals, st, i, -1);
    int32_t step_begin = i;
    for (int s = 0; s < f->n_states; s++) {
        int64_t n = snn_shape_numel(f->states[s].shape, B);
        st[s] = xcalloc(n);
        if (f->states[s].init_from >= 0) memcpy(st[s], vals[f->states[s].init_from], (size_t)n * sizeof(double));
        else for (int64_t k = 0; k < n; k++) st[s][k] = f->states[s].init;
    }
    int32_t step_end = step_begin;
    while (step_end < f->n_values && f->values[step_end].region == SNN_REGION_STEP) step_end++;
    for (int64_t k = 0; k < T; k++) {
        int64_t t = f->time_dir < 0 ? T - 1 - k : k;
        for (int32_t j = step_begin; j < step_end; j++) compute(c, f, vals, st, j, t);
        for (int s = 0; s < f->n_states; s++)
            memcpy(st[s], vals[f->states[s].next], (size_t)snn_shape_numel(f->states[s].shape, B) * sizeof(double));
        if (taped)
            for (int32_t j = step_begin; j < step_end; j++)
                if (taped[j]) {
                    int64_t n = snn_shape_numel(f->values[j].shape, B);
                    memcpy(c->tape[j] + t * n, vals[j], (size_t)n * sizeof(double));
                }
    }
    for (int32_t j = step_end; j < f->n_values; j++) compute(c, f, vals, st, j, -1);
    *final_states = st;
}

static double **alloc_vals(const snn_ir_func *f, int64_t B) {
    double **vals = calloc((size_t)(f->n_values > 0 ? f->n_values : 1), sizeof *vals);
    if (!vals) { fputs("snn_interp: out of memory\n", stderr); abort(); }
    for (int32_t i = 0; i < f->n_values; i++) vals[i] = xcalloc(snn_shape_numel(f->values[i].shape, B));
    return vals;
}

static void free_bufs(double **p, int32_t n) {
    if (!p) return;
    for (int32_t i = 0; i < n; i++) free(p[i]);
    free(p);
}

int snn_interp_run_f64(const snn_ir_module *m, const double *const *params, double *const *grads,
                       const snn_interp_batch *b, double *loss, double *scores,
                       const snn_interp_opts *opts) {
    if (grads && m->backward.n_values == 0) return -1;
    run_ctx c = {.m = m, .params = params, .grads = grads, .b = b, .opts = opts};
    const snn_ir_func *fw = &m->forward, *bw = &m->backward;
    bool *taped = NULL;
    if (grads) {
        taped = calloc((size_t)(fw->n_values > 0 ? fw->n_values : 1), sizeof *taped);
        c.tape = calloc((size_t)(fw->n_values > 0 ? fw->n_values : 1), sizeof *c.tape);
        if (!taped || !c.tape) { fputs("snn_interp: out of memory\n", stderr); abort(); }
        for (int32_t i = 0; i < bw->n_values; i++) {
            const snn_ir_value *v = &bw->values[i];
            if (v->op == SNN_OP_FWD && fw->values[v->ival].region == SNN_REGION_STEP && !taped[v->ival]) {
                taped[v->ival] = true;
                c.tape[v->ival] = xcalloc(b->steps * snn_shape_numel(fw->values[v->ival].shape, b->batch));
            }
        }
    }
    c.fvals = alloc_vals(fw, b->batch);
    double **fst = NULL;
    exec_func(&c, fw, c.fvals, taped, &fst);
    if (opts && opts->round_f32) c.loss = (double)(float)c.loss;
    *loss = c.loss;
    if (scores && m->scores_state >= 0)
        memcpy(scores, fst[m->scores_state], (size_t)(b->batch * m->n_classes) * sizeof(double));
    free_bufs(fst, fw->n_states);
    if (grads) {
        for (int i = 0; i < m->n_params; i++)
            memset(grads[i], 0, (size_t)snn_shape_numel(m->params[i].shape, b->batch) * sizeof(double));
        double **bvals = alloc_vals(bw, b->batch), **bst = NULL;
        exec_func(&c, bw, bvals, NULL, &bst);
        free_bufs(bst, bw->n_states);
        free_bufs(bvals, bw->n_values);
        free_bufs(c.tape, fw->n_values);
    }
    free(taped);
    free_bufs(c.fvals, fw->n_values);
    return isfinite(*loss) ? 0 : 1;
}

static int32_t run_float(const snn_ir_module *m, const float *const *params, float *const *grads,
                         const snn_batch *batch, snn_result *res) {
    int64_t B = batch->batch;
    double **p = calloc((size_t)(m->n_params + 1), sizeof *p), **g = NULL;
    if (!p) { fputs("snn_interp: out of memory\n", stderr); abort(); }
    for (int i = 0; i < m->n_params; i++) {
        int64_t n = snn_shape_numel(m->params[i].shape, B);
        p[i] = xcalloc(n);
        for (int64_t k = 0; k < n; k++) p[i][k] = params[i][k];
    }
    if (grads) {
        g = calloc((size_t)(m->n_params + 1), sizeof *g);
        if (!g) { fputs("snn_interp: out of memory\n", stderr); abort(); }
        for (int i = 0; i < m->n_params; i++) g[i] = xcalloc(snn_shape_numel(m->params[i].shape, B));
    }
    double *x = xcalloc(B * m->n_inputs);
    for (int64_t k = 0; k < B * m->n_inputs; k++) x[k] = batch->x[k];
    double *scores = xcalloc(B * (m->n_classes > 0 ? m->n_classes : 1));
    snn_interp_batch ib = {B, batch->steps, x, batch->labels, batch->seed};
    snn_interp_opts o = {.round_f32 = true};
    double loss = 0;
    int rc = snn_interp_run_f64(m, (const double *const *)p, g, &ib, &loss, scores, &o);
    if (rc >= 0) {
        res->loss = (float)loss;
        if (res->scores && m->scores_state >= 0)
            for (int64_t k = 0; k < B * m->n_classes; k++) res->scores[k] = (float)scores[k];
        if (grads)
            for (int i = 0; i < m->n_params; i++) {
                int64_t n = snn_shape_numel(m->params[i].shape, B);
                for (int64_t k = 0; k < n; k++) grads[i][k] = (float)g[i][k];
            }
    }
    free_bufs(p, m->n_params);
    free_bufs(g, m->n_params);
    free(x);
    free(scores);
    return rc;
}

int32_t snn_interp_forward_backward(const snn_ir_module *m, const float *const *params,
                                    float *const *grads, const snn_batch *batch, snn_result *res) {
    return run_float(m, params, grads, batch, res);
}

int32_t snn_interp_forward(const snn_ir_module *m, const float *const *params,
                           const snn_batch *batch, snn_result *res) {
    return run_float(m, params, NULL, batch, res);
}
